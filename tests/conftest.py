"""Fixtures shared by the whole suite.

``database_url`` yields a fresh, empty database for each test that asks for it: a
SQLite file always, and a throwaway PostgreSQL database too when
``SEALBOT_TEST_DATABASE_URL`` is set (CI sets it). Tests parametrised this way run
once per backend. ``migrated_database_url`` is the same at the newest schema.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pyotp
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

from sealbot.custody import totp
from sealbot.store import upgrade

# The suite runs two workers on two cores beside heavy integration tests (and CI's machine
# may be shared): how fast Hypothesis draws inputs or runs one example there says nothing
# about the code, whose speed is measured in bench/. A test may still set its own limits.
settings.register_profile("sealbot", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("sealbot")

PG_URL = os.environ.get("SEALBOT_TEST_DATABASE_URL", "")

# CI sets these so that a missing package fails the run instead of skipping its tests.
_REQUIRED = {
    "SEALBOT_TEST_REQUIRE_SOFTHSM": ("/usr/lib/softhsm/libsofthsm2.so", "SoftHSM2 (Debian package softhsm2)"),
    "SEALBOT_TEST_REQUIRE_BROWSER": ("/usr/bin/chromium", "Chromium (Debian package chromium)"),
}


def pytest_sessionstart(session: pytest.Session) -> None:
    for variable, (path, what) in _REQUIRED.items():
        if os.environ.get(variable) == "1" and not Path(path).exists():
            pytest.exit(f"{variable}=1 but {what} is not installed ({path} missing)", returncode=1)

# The two chaos tests (1.5-2 minutes each, several processes busy) start first, one after
# the other on one worker, so that neither lands at the end of the run nor runs beside the
# other; the other worker takes the rest meanwhile.
_FIRST = ("tests/engine/test_engine_crash.py", "tests/scaleout/test_scaleout_chaos.py")
# xdist's default hands a worker up to a quarter of the pending tests at once; a chunk with
# several slow tests left the other worker idle for 42 s at the end of a run. Chunks of 8
# keep the two busy to the end (a command line's --maxschedchunk still wins).
_SCHED_CHUNK = 8


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "maxschedchunk", "") is None and getattr(config.option, "dist", "no") == "load":
        config.option.maxschedchunk = _SCHED_CHUNK


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    first = [item for name in _FIRST for item in items if item.nodeid.split("::")[0] == name]
    items[:] = first + [item for item in items if item not in first]


_BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def _pg_admin_url() -> str:
    # psycopg 3 driver; the admin connection uses the given database to CREATE/DROP.
    return PG_URL.replace("postgresql://", "postgresql+psycopg://", 1) if PG_URL.startswith(
        "postgresql://"
    ) else PG_URL


class _PgDatabases:
    """This process's throwaway PostgreSQL databases.

    ``DROP DATABASE`` (the server removes the files, after a checkpoint) took 0.05-2 s on
    the loaded two-core machine, often as long as the test that used the database: the
    drops run on a thread of their own while the next tests run, and the session waits
    for them at its end. The template at the newest schema is migrated once per process;
    a copy of it (``CREATE DATABASE ... TEMPLATE``) plus the code's own ``upgrade`` took
    0.15 s (median of 8) where an empty database plus the migrations took 0.4-1 s.
    """

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self._admin: sa.engine.Engine | None = None
        self._template: str | None = None
        self._drops: queue.Queue[str | None] = queue.Queue()
        self._dropper: threading.Thread | None = None
        self.failed: list[str] = []

    def admin(self) -> sa.engine.Engine:
        if self._admin is None:
            self._admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        return self._admin

    def url(self, name: str) -> str:
        return sa.engine.make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def create(self, *, migrated: bool) -> str:
        name = f"sealbot_t_{uuid.uuid4().hex[:12]}"
        template = f' TEMPLATE "{self.template()}"' if migrated else ""
        with self.admin().connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"{template}'))
        return name

    def template(self) -> str:
        if self._template is None:
            name = self.create(migrated=False)
            upgrade(self.url(name))  # disposes its engine: a template must have no connection
            self._template = name
        return self._template

    def drop_later(self, name: str) -> None:
        if self._dropper is None:
            self._dropper = threading.Thread(target=self._drop_queued, name="drop test databases", daemon=True)
            self._dropper.start()
        self._drops.put(name)

    def _drop_queued(self) -> None:
        while (name := self._drops.get()) is not None:
            self._drop(name)

    def _drop(self, name: str) -> None:
        try:
            with self.admin().connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except sa.exc.SQLAlchemyError as exc:
            self.failed.append(f"{name}: {type(exc).__name__}")

    def close(self) -> None:
        """Wait for the queued drops, then drop the template."""
        if self._dropper is not None:
            self._drops.put(None)
            self._dropper.join(timeout=300)
        if self._template is not None:
            self._drop(self._template)
        if self._admin is not None:
            self._admin.dispose()


_PG_SERVERS: dict[str, _PgDatabases] = {}  # admin URL -> its databases
_SQLITE_TEMPLATE: list[Path] = []  # this process's SQLite file at the newest schema, made once


def _pg_databases(admin_url: str) -> _PgDatabases:
    if admin_url not in _PG_SERVERS:
        _PG_SERVERS[admin_url] = _PgDatabases(admin_url)
    return _PG_SERVERS[admin_url]


@pytest.fixture(scope="session")
def pg_databases() -> Callable[[str], _PgDatabases]:
    """The throwaway databases on the PostgreSQL server of an admin URL
    (``postgresql+psycopg://``): ``create(migrated=...)``, ``url(name)``, ``drop_later(name)``."""
    return _pg_databases


def pytest_sessionfinish(session: pytest.Session) -> None:
    for databases in _PG_SERVERS.values():
        databases.close()
        if databases.failed:
            print(f"\nthese test databases could not be dropped: {', '.join(databases.failed)}")


def _sqlite_at_newest_schema(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not _SQLITE_TEMPLATE:
        path = tmp_path_factory.mktemp("template") / "sealbot.db"
        upgrade(f"sqlite:///{path}")
        assert not path.with_name("sealbot.db-wal").exists()  # the whole database is in the file
        _SQLITE_TEMPLATE.append(path)
    return _SQLITE_TEMPLATE[0]


def _database(backend: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, *,
              migrated: bool) -> Iterator[str]:
    if backend == "sqlite":
        path = tmp_path / "sealbot.db"
        if migrated:
            shutil.copyfile(_sqlite_at_newest_schema(tmp_path_factory), path)
        yield f"sqlite:///{path}"
        return
    databases = _pg_databases(_pg_admin_url())
    name = databases.create(migrated=migrated)
    try:
        yield databases.url(name)
    finally:
        databases.drop_later(name)


@pytest.fixture(params=_BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database on each configured backend, dropped afterwards."""
    yield from _database(request.param, tmp_path, tmp_path_factory, migrated=False)


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """The test's database: empty here; the web and services conftests serve
    ``migrated_database_url`` under this name (a module that tests the migrations there
    takes ``empty_database_url`` back)."""
    return empty_database_url


@pytest.fixture(params=_BACKENDS)
def migrated_database_url(request: pytest.FixtureRequest, tmp_path: Path,
                          tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """For tests that do not test the migrations: a fresh database on each configured
    backend already at the newest schema (a copy of one migrated once per process), so
    the ``upgrade`` the code under test runs finds nothing to do. The web and services
    conftests serve it as their ``database_url``."""
    yield from _database(request.param, tmp_path, tmp_path_factory, migrated=True)


@pytest.fixture
def isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``load_settings`` sees no ``SEALBOT_*`` variable of the machine (the tests' own
    ``SEALBOT_TEST_*`` stay) and an empty config file: only what the test sets."""
    for name in list(os.environ):
        if name.startswith("SEALBOT_") and not name.startswith("SEALBOT_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SEALBOT_CONFIG", str(tmp_path / "absent.toml"))
    (tmp_path / "absent.toml").write_text("")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sealbot.db'}"


class TotpClock:
    """The signer's clock for two-factor codes (``custody.totp.wall_clock``), moved by the
    test: a code is good once, so a test that needs a second code takes the next step's
    (``tick``) instead of sleeping 30 s."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def tick(self, steps: int = 1) -> None:
        self.now += totp.STEP_SECONDS * steps

    def code(self, secret: str) -> str:
        """What an authenticator app shows now for ``secret``."""
        return pyotp.TOTP(secret).at(int(self.now))


@pytest.fixture
def totp_clock(monkeypatch: pytest.MonkeyPatch) -> TotpClock:
    """Every signer in this process (in process or a socket server in a thread) checks codes
    against this clock; it starts 5 s into the current real step and moves only when told."""
    clock = TotpClock(float(totp.time_step(time.time()) * totp.STEP_SECONDS + 5))
    monkeypatch.setattr(totp, "wall_clock", clock)
    return clock
