"""Fixtures for the scale-out tests: the real RabbitMQ and PostgreSQL on this machine.

They are skipped when either is unreachable, unless ``SEALBOT_TEST_REQUIRE_BROKER=1``
(CI), which turns a missing broker or database into a failure. RabbitMQ's management API
(``SEALBOT_TEST_BROKER_ADMIN_URL``, default guest on 127.0.0.1:15672; the plugin
``rabbitmq_management``) lets the spawned workers evict a hung peer; the tests that need
it (``broker_admin``) are skipped without it, or failed when the broker is required. Each test gets a fresh
PostgreSQL database and its own queue-name prefix; its queues are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sealbot.engine.scaleout.broker import Topology, delete
from sealbot.store import make_session_factory
from sealbot.store.models import ExchangeAccount, User

BROKER_URL = os.environ.get("SEALBOT_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
PG_URL = os.environ.get("SEALBOT_TEST_DATABASE_URL", "") or "postgresql://postgres@127.0.0.1:5432/test"
ADMIN_URL = os.environ.get("SEALBOT_TEST_BROKER_ADMIN_URL", "http://guest:guest@127.0.0.1:15672")
REQUIRED = os.environ.get("SEALBOT_TEST_REQUIRE_BROKER") == "1"
PARTITIONS = 16
_admin_problem: list[str | None] = []  # the answer of the one check, once asked


def admin_problem() -> str | None:
    """Why the management API cannot serve (None: it answers), asked once per session."""
    if not _admin_problem:
        import httpx

        url = httpx.URL(ADMIN_URL)
        base = str(url.copy_with(username=None, password=None)).rstrip("/")  # no credentials in the message
        try:
            response = httpx.get(f"{base}/api/overview", auth=(url.username, url.password), timeout=3)
            problem = None if response.status_code == 200 else f"answered HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            problem = type(exc).__name__
        _admin_problem.append(None if problem is None else
                              f"RabbitMQ management API at {base} unusable ({problem}); "
                              "enable it: rabbitmq-plugins enable rabbitmq_management")
    return _admin_problem[0]


def _reachable() -> str | None:
    import aio_pika

    async def amqp() -> None:
        connection = await aio_pika.connect(BROKER_URL, timeout=3)
        await connection.close()

    try:
        asyncio.run(amqp())
    except Exception as exc:
        return f"RabbitMQ at {BROKER_URL} unreachable: {exc}"
    try:
        engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL at {PG_URL} unreachable: {exc}"
    return None


@pytest.fixture(scope="session")
def services() -> None:
    problem = _reachable()
    if problem is not None:
        if REQUIRED:
            pytest.fail(f"SEALBOT_TEST_REQUIRE_BROKER=1 but {problem}")
        pytest.skip(problem)


@pytest.fixture
def broker_admin(services: None) -> str:
    """The management API URL (workers spawned in this test evict hung peers through it)."""
    problem = admin_problem()
    if problem is not None:
        if REQUIRED:
            pytest.fail(f"SEALBOT_TEST_REQUIRE_BROKER=1 but {problem}")
        pytest.skip(problem)
    return ADMIN_URL


@pytest.fixture
def database_url(migrated_database_url: str) -> str:
    """The scale-out tests do not test the migrations: their database starts at the newest
    schema (tests/conftest.py), so the ``upgrade`` they run first finds nothing to do."""
    return migrated_database_url


@pytest.fixture
def pg_url(services: None, pg_databases: Callable[[str], Any]) -> Iterator[str]:
    """A fresh PostgreSQL database at the newest schema (a copy of one migrated once per
    process), dropped afterwards (on a background thread: tests/conftest.py)."""
    databases = pg_databases(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    name = databases.create(migrated=True)
    try:
        yield databases.url(name)
    finally:
        databases.drop_later(name)


@pytest.fixture
def topology(services: None) -> Iterator[Topology]:
    """A queue-name prefix of this test alone; its exchange and queues are deleted afterwards."""
    topo = Topology(f"sbtest{uuid.uuid4().hex[:10]}", PARTITIONS)
    yield topo
    import aio_pika

    async def cleanup() -> None:
        connection = await aio_pika.connect(BROKER_URL)
        async with connection:
            await delete(await connection.channel(), topo)

    asyncio.run(cleanup())


def seed_accounts(url: str, count: int) -> list[str]:
    """``count`` active accounts of one user (no bots: each signal's effect is its ledger row)."""
    factory = make_session_factory(url)
    with factory.begin() as session:
        user = User(email=f"u{uuid.uuid4().hex[:8]}@example.test", password_hash="x")
        session.add(user)
        session.flush()
        accounts = [ExchangeAccount(owner_id=user.id, exchange="binance", label=f"acc {i}") for i in range(count)]
        session.add_all(accounts)
        session.flush()
        ids = [str(a.id) for a in accounts]
    factory.kw["bind"].dispose()
    return ids


@dataclass
class WorkerProcess:
    """``sealbot worker`` in a subprocess, with its JSON stats file."""

    proc: subprocess.Popen[bytes]
    stats_file: Path
    log: Path

    def stats(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.stats_file.read_text()))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def owned(self) -> set[int]:
        return {int(p) for p in self.stats().get("owned", {})}

    def signal(self, signum: int) -> float:
        self.proc.send_signal(signum)
        return time.time()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def spawn(pg_url: str, topology: Topology, tmp_path: Path) -> Iterator[Any]:
    """Start a worker subprocess: ``spawn(name)``; every one is stopped afterwards. The
    workers get the management API (``SEALBOT_BROKER_ADMIN_URL``: they evict hung peers)
    when it answers."""
    from sealbot.custody.kek_file import create_kek_file

    (tmp_path / "config").mkdir(exist_ok=True)
    kek = create_kek_file(tmp_path / "config" / "kek.key")
    started: list[WorkerProcess] = []

    def start(name: str, *extra: str) -> WorkerProcess:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("SEALBOT_")},
               "SEALBOT_DATABASE_URL": pg_url, "SEALBOT_ENGINE": "rabbitmq", "SEALBOT_BROKER_URL": BROKER_URL,
               "SEALBOT_KEK_FILE": str(kek), "SEALBOT_DATA_DIR": str(tmp_path / "data"),
               "SEALBOT_CONFIG_DIR": str(tmp_path / "config"), "SEALBOT_LOG_LEVEL": "INFO"}
        if admin_problem() is None:
            env["SEALBOT_BROKER_ADMIN_URL"] = ADMIN_URL
        stats = tmp_path / f"{name}.json"
        log = tmp_path / f"{name}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "sealbot.cli", "worker", "--partitions", str(topology.partitions),
             "--prefix", topology.prefix, "--stats-file", str(stats), "--worker-id", name, *extra],
            env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        worker = WorkerProcess(proc, stats, log)
        started.append(worker)
        return worker

    yield start
    for worker in started:  # all asked to stop at once: each takes about a second to close
        if worker.proc.poll() is None:
            worker.proc.send_signal(signal.SIGCONT)
            worker.proc.terminate()
    for worker in started:
        try:
            worker.proc.wait(10)
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            worker.proc.wait(5)
