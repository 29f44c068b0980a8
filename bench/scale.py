"""Scale-out engine on the real RabbitMQ and PostgreSQL of this machine (loopback).

    .venv/bin/python bench/scale.py [--rate 200] [--seconds 10] [--accounts 200] [--partitions 16]
                                    [--workers 1 2 3] [--burst 4000] [--settle 3]

For each worker count N: a fresh PostgreSQL database, 200 accounts, N ``sealbot worker``
subprocesses (each one the real CLI), a fresh queue prefix.

* latency: ``--settle`` seconds after the workers hold a fair share (their first upkeep
  pass, which runs the watchdog over every owned account, is over by then), signals at
  ``--rate``/s (each published with a publisher confirm) for
  ``--seconds``; signal-to-worker (publish -> delivery at the owning worker) and
  signal-to-commit (publish -> the fenced, de-duplicated transaction committed) p50/p99;
* throughput: ``--burst`` signals published at once (confirmed in batches), then
  applied/s = burst / (last commit - first commit) from the ledger in PostgreSQL;
* takeover (N = 3 only): while signals flow, SIGKILL the worker owning the most
  partitions; the time until the last of its partitions was claimed at a new epoch
  (``claimed_at`` in PostgreSQL: when the claim got the partition row's lock).

The machine's load average is printed before and after each measurement: on a shared
machine the figures mean little without it.

Each signal's effect is its ledger row (accounts have no bots), so this measures the
engine's distribution path (broker, fence, ledger), not bot or exchange work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import sqlalchemy as sa

from sealbot.custody.kek_file import create_kek_file
from sealbot.engine.scaleout.broker import Publisher, Signal, Topology, delete
from sealbot.engine.scaleout.partitions import default_partition
from sealbot.store import make_session_factory
from sealbot.store.migrate import upgrade
from sealbot.store.models import EngineMessage, EnginePartition, ExchangeAccount, User


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


class Run:
    def __init__(self, args: argparse.Namespace, workers: int) -> None:
        self.args, self.n = args, workers
        self.topology = Topology(f"sbbench{uuid.uuid4().hex[:8]}", args.partitions)
        self.tmp = Path(tempfile.mkdtemp(prefix="sbscale"))
        self.admin = sa.create_engine(args.database_url.replace("postgresql://", "postgresql+psycopg://", 1),
                                      isolation_level="AUTOCOMMIT")
        self.db = f"sealbot_bench_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.db}"'))
        self.url = sa.engine.make_url(str(self.admin.url)).set(database=self.db).render_as_string(hide_password=False)
        upgrade(self.url)
        self.factory = make_session_factory(self.url)
        with self.factory.begin() as session:
            user = User(email="bench@example.test", password_hash="x")
            session.add(user)
            session.flush()
            rows = [ExchangeAccount(owner_id=user.id, exchange="binance", label=f"a{i}") for i in range(args.accounts)]
            session.add_all(rows)
            session.flush()
            self.accounts = [str(r.id) for r in rows]
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.kek = create_kek_file(self.tmp / "kek.key")

    def spawn(self, name: str) -> None:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("SEALBOT_")},
               "SEALBOT_DATABASE_URL": self.url, "SEALBOT_BROKER_URL": self.args.broker_url,
               "SEALBOT_ENGINE": "rabbitmq", "SEALBOT_KEK_FILE": str(self.kek), "SEALBOT_LOG_LEVEL": "WARNING",
               "SEALBOT_DATA_DIR": str(self.tmp / "data"), "SEALBOT_CONFIG_DIR": str(self.tmp)}
        stats = self.tmp / f"{name}.json"
        proc = subprocess.Popen([sys.executable, "-m", "sealbot.cli", "worker", "--partitions",
                                 str(self.topology.partitions), "--prefix", self.topology.prefix, "--stats-file",
                                 str(stats), "--worker-id", name, "--record-latencies"],
                                env=env, stdout=(self.tmp / f"{name}.log").open("wb"), stderr=subprocess.STDOUT)
        self.procs.append((proc, stats))

    def stats(self) -> list[dict[str, object]]:
        found = []
        for _, path in self.procs:
            try:
                found.append(json.loads(path.read_text()))
            except (FileNotFoundError, json.JSONDecodeError):
                found.append({})
        return found

    def owned(self, i: int) -> set[int]:
        owned = self.stats()[i].get("owned", {})
        assert isinstance(owned, dict)
        return {int(p) for p in owned}

    def wait_fair(self, timeout: float = 60) -> None:
        share = -(-self.topology.partitions // self.n)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alive = [i for i, (p, _) in enumerate(self.procs) if p.poll() is None]
            owned = [self.owned(i) for i in alive]
            if (sum(len(o) for o in owned) == self.topology.partitions
                    and all(0 < len(o) <= share for o in owned)):
                return
            time.sleep(0.1)
        raise SystemExit("workers did not settle on a fair share")

    def committed(self) -> int:
        with self.factory() as session:
            return int(session.scalar(sa.select(sa.func.count()).select_from(EngineMessage)) or 0)

    def wait_committed(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.committed() < count and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.committed() < count:
            raise SystemExit(f"only {self.committed()} of {count} signals committed")

    async def publish(self, rate: float, seconds: float, tag: str) -> int:
        publisher = Publisher(self.args.broker_url, self.topology)
        await publisher.open()
        n = 0
        try:
            start = time.monotonic()
            while time.monotonic() - start < seconds:
                account = self.accounts[n % len(self.accounts)]
                await publisher.publish(default_partition(account, self.topology.partitions),
                                        Signal(f"{tag}-{n}", account, None, "note", {}, n, datetime.now(UTC)))
                n += 1
                delay = start + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
        finally:
            await publisher.close()
        return n

    async def burst(self, count: int) -> None:
        publisher = Publisher(self.args.broker_url, self.topology)
        await publisher.open()
        try:
            for base in range(0, count, 200):
                await asyncio.gather(*[
                    publisher.publish(default_partition(self.accounts[i % len(self.accounts)],
                                                        self.topology.partitions),
                                      Signal(f"burst-{i}", self.accounts[i % len(self.accounts)], None, "note", {},
                                             i, datetime.now(UTC)))
                    for i in range(base, min(count, base + 200))])
        finally:
            await publisher.close()

    def burst_rate(self) -> float:
        with self.factory() as session:
            first, last, n = session.execute(sa.select(sa.func.min(EngineMessage.committed_at),
                                                       sa.func.max(EngineMessage.committed_at), sa.func.count())
                                             .where(EngineMessage.message_id.like("burst-%"))).one()
        return float(n) / max(1e-6, (last - first).total_seconds())

    def takeover(self) -> float:
        victim = max(range(self.n), key=self.owned)
        lost = self.owned(victim)
        with self.factory() as session:
            epochs = {r.partition: r.epoch for r in session.scalars(sa.select(EnginePartition))}
        killed = time.time()
        self.procs[victim][0].send_signal(signal.SIGKILL)
        pending, seen = set(lost), killed
        while pending and time.time() - killed < 30:
            with self.factory() as session:
                for partition, epoch, claimed in session.execute(
                        sa.select(EnginePartition.partition, EnginePartition.epoch, EnginePartition.claimed_at)
                        .where(EnginePartition.partition.in_(pending))):
                    if epoch > epochs[partition]:
                        pending.discard(partition)
                        seen = max(seen, claimed.timestamp() if claimed else time.time())
            time.sleep(0.02)
        return seen - killed

    def close(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(15)

        async def cleanup() -> None:
            connection = await aio_pika.connect(self.args.broker_url)
            async with connection:
                await delete(await connection.channel(), self.topology)

        asyncio.run(cleanup())
        self.factory.kw["bind"].dispose()
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)'))
        self.admin.dispose()


def measure(args: argparse.Namespace, workers: int) -> None:
    run = Run(args, workers)
    try:
        for i in range(workers):
            run.spawn(f"w{i}")
        run.wait_fair()
        time.sleep(args.settle)
        print(f"workers={workers}  ({_load()})", flush=True)
        sent = asyncio.run(run.publish(args.rate, args.seconds, "lat"))
        run.wait_committed(sent)
        time.sleep(0.5)  # one more stats round
        to_worker = [float(x) for s in run.stats() for x in s.get("to_worker", [])]  # type: ignore[attr-defined]
        to_commit = [float(x) for s in run.stats() for x in s.get("to_commit", [])]  # type: ignore[attr-defined]
        print(f"workers={workers}  {sent} signals at {args.rate}/s: signal-to-worker p50 {_pct(to_worker, .5):.1f} ms "
              f"p99 {_pct(to_worker, .99):.1f} ms; signal-to-commit p50 {_pct(to_commit, .5):.1f} ms "
              f"p99 {_pct(to_commit, .99):.1f} ms", flush=True)
        asyncio.run(run.burst(args.burst))
        run.wait_committed(sent + args.burst)
        print(f"workers={workers}  throughput: {run.burst_rate():.0f} signals/s applied ({args.burst} burst)",
              flush=True)
        if workers == 3:
            import threading

            flow = threading.Thread(target=lambda: asyncio.run(run.publish(args.rate, 4, "kill")))
            flow.start()
            time.sleep(1.5)
            took = run.takeover()
            flow.join()
            print(f"workers=3  takeover after SIGKILL of the busiest worker: {took * 1000:.0f} ms", flush=True)
        print(f"workers={workers}  done ({_load()})", flush=True)
    finally:
        run.close()


async def broker_alone(url: str, rate: float, seconds: float) -> tuple[list[float], list[float]]:
    """The floor under the engine's figures: publish (confirmed) -> delivery to a bare
    consumer on one quorum single-active-consumer queue, and on a classic queue."""
    results = []
    kinds: list[dict[str, Any]] = [{"x-queue-type": "quorum", "x-single-active-consumer": True},
                                   {"x-queue-type": "classic", "x-single-active-consumer": True}]
    for arguments in kinds:
        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            name = f"sbbench.floor.{uuid.uuid4().hex[:8]}"
            queue = await channel.declare_queue(name, durable=True, arguments=arguments)
            delays: list[float] = []

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage, into: list[float] = delays) -> None:
                into.append(time.time() - float(message.body))
                await message.ack()

            tag = await queue.consume(on_message)
            start, n = time.monotonic(), 0
            while time.monotonic() - start < seconds:
                await channel.default_exchange.publish(
                    aio_pika.Message(str(time.time()).encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=name)
                n += 1
                delay = start + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await asyncio.sleep(1.0)
            await queue.cancel(tag)
            await queue.delete(if_unused=False, if_empty=False)
            results.append(delays)
    return results[0], results[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--broker-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--burst", type=int, default=4000)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--settle", type=float, default=3.0)
    args = parser.parse_args()
    quorum, classic = asyncio.run(broker_alone(args.broker_url, args.rate, 5))
    print(f"broker alone, {args.rate}/s persistent + confirm -> bare consumer: quorum queue p50 "
          f"{_pct(quorum, .5):.1f} ms p99 {_pct(quorum, .99):.1f} ms; classic queue p50 {_pct(classic, .5):.1f} ms "
          f"p99 {_pct(classic, .99):.1f} ms", flush=True)
    for n in args.workers:
        measure(args, n)


if __name__ == "__main__":
    main()
