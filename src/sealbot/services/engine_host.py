"""The embedded engine: the scale-out worker's code on the in-process transport.

``EngineHost`` runs ``engine.scaleout.worker.Worker`` (the code ``sealbot worker`` runs)
on ``engine.scaleout.local.LocalTransport``, which owns every partition in this process;
``EngineLock`` keeps it to one engine per database. So the embedded engine claims each
partition with a new epoch, reconciles each account before its bots act, fences every
write by the epoch and records each message it applies in the partition ledger
(``engine_messages``), exactly as a worker does. What differs from ``sealbot worker``
is only the transport (``SEALBOT_ENGINE=in-process`` or ``rabbitmq``, docs/deploy.md).

The web process and the engine share only the database: the web tier stores what a
user asked for (a bot started, paused, stopped or re-configured; a signal or a
close-at-market in the bot inbox). The worker's upkeep (services/worker_upkeep.py)
brings the accounts in line with the stored bots every ``sync_interval`` seconds, runs
the watchdog and values the accounts; the transport reads the inbox (``InboxSource``)
at once when an item is posted in this process (``sealbot serve``, ``sealbot demo``),
and every ``sync_interval`` seconds for a web tier in another process.

``EngineHost.sync_once`` runs one upkeep pass at once and waits until every inbox item
waiting was applied; its ``SyncReport`` tells what changed since the previous report
(the start's, or the previous ``sync_once``'s), whichever pass did it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

import sqlalchemy as sa

from sealbot.domain import Refused
from sealbot.engine.app import EngineOptions
from sealbot.engine.clock import Clock
from sealbot.engine.notify import Notifier
from sealbot.engine.runner import InProcessRunner
from sealbot.engine.scaleout.broker import Topology
from sealbot.engine.scaleout.local import LocalTransport
from sealbot.engine.scaleout.partitions import PartitionStore
from sealbot.engine.scaleout.worker import Worker, WorkerOptions, new_worker_id
from sealbot.services import inbox
from sealbot.services.engine_sync import SyncReport
from sealbot.services.platform import Platform
from sealbot.services.worker_upkeep import WorkerUpkeep

log = logging.getLogger(__name__)

__all__ = ["EngineHost", "EngineLock", "SyncReport"]

HEARTBEAT = 1.0  # seconds between the embedded worker's heartbeat rounds (fenced partition heartbeats)


class EngineLock:
    """One embedded engine per database: two would both run every bot (twice the
    orders). PostgreSQL: a session-level advisory lock held on its own connection;
    SQLite: an exclusive ``flock`` on a file next to the database. Both vanish with the
    process, so a killed engine never leaves a stale lock behind."""

    PG_KEY = 0x5EA1B07  # the advisory lock's key: "sealbot engine"

    def __init__(self, bind: sa.Engine) -> None:
        self._bind = bind
        self._connection: sa.Connection | None = None
        self._file: IO[bytes] | None = None

    def acquire(self) -> None:
        url = self._bind.url
        if url.get_backend_name() == "postgresql":
            connection = self._bind.connect()
            if not connection.execute(sa.text("select pg_try_advisory_lock(:k)"), {"k": self.PG_KEY}).scalar():
                connection.close()
                raise Refused("engine", "another sealbot engine already runs on this database")
            connection.commit()
            self._connection = connection
        elif url.database and url.database != ":memory:":
            handle = open(f"{url.database}.engine-lock", "ab")  # noqa: SIM115 - held until release()
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                raise Refused("engine", "another sealbot engine already runs on this database") from None
            self._file = handle

    def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                self._connection.execute(sa.text("select pg_advisory_unlock(:k)"), {"k": self.PG_KEY})
            self._connection.close()
            self._connection = None
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None


class EngineHost:
    """Runs the worker code over every partition of the platform's database, in this
    process (see the module docstring)."""

    def __init__(self, platform: Platform, *, options: EngineOptions | None = None, clock: Clock | None = None,
                 notifier_factory: Callable[[Platform], Notifier] | None = None,
                 sync_interval: float = 1.0) -> None:
        self.platform = platform
        self.sync_interval = sync_interval
        options = options or EngineOptions()
        settings = platform.settings
        partitions = settings.engine_partitions
        factory = platform.session_factory
        # alerts go to the channels each user configured (docs/notifications.md)
        self.upkeep = WorkerUpkeep(platform, partitions, options=options, notifier_factory=notifier_factory,
                              sync_interval=sync_interval, clock=clock)
        self.transport = LocalTransport(PartitionStore(factory, partitions), source=inbox.InboxSource(platform),
                                        poll=sync_interval, tick=HEARTBEAT)
        worker_options = WorkerOptions(topology=Topology(settings.broker_prefix, partitions),
                                       worker_id=f"embedded:{new_worker_id()}", tick=HEARTBEAT,
                                       live_within=5 * HEARTBEAT, stale_after=3 * HEARTBEAT,
                                       idle_transaction_timeout=0,  # the web tier shares these connections
                                       log_partitions=False,  # every partition, every start: one line below
                                       runner=options.runner)
        self.worker = Worker(factory, platform.venue_for, inbox.decode, worker_options, guard=options.guard,
                             upkeep=self.upkeep, transport=self.transport, clock=clock)
        self._lock = EngineLock(factory.kw["bind"])
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._reported = _Mark()

    @property
    def runner(self) -> InProcessRunner:
        return self.worker.runner

    async def start(self) -> SyncReport:
        """Take the database's engine lock (``Refused`` if another engine holds it), claim
        every partition and start its accounts with running or paused bots (each
        reconciles first); the report names the accounts started."""
        self._lock.acquire()
        try:
            self.upkeep.limits.reload()  # users' stored guard limits apply from the first order
            self._unsubscribe = inbox.subscribe(self.transport.wake_threadsafe)
            self._stop.clear()
            self._task = asyncio.create_task(self.worker.run(self._stop), name="embedded engine")
            ready = asyncio.ensure_future(self.transport.ready.wait())
            await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if self._task.done():
                self._task.result()  # raises what ended it
                raise RuntimeError("the embedded engine stopped while starting")
        except BaseException:
            await self.stop()
            raise
        report = await self.sync_once()
        report.started_accounts[:0] = [a for p in sorted(self.worker.accounts) for a in self.worker.accounts[p]
                                       if a not in report.started_accounts]
        log.info("embedded engine %s: %s partitions claimed, %s accounts started", self.worker.id,
                 len(self.worker.owned), len(report.started_accounts))
        return report

    async def stop(self) -> None:
        """Release every partition, stop the accounts, release the lock (also after a
        failed ``start``)."""
        try:
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
            task, self._task = self._task, None
            if task is not None:
                self._stop.set()
                await asyncio.wait({task})
                if not task.cancelled() and task.exception() is not None:
                    log.error("embedded engine ended with an error", exc_info=task.exception())
            await self.upkeep.stop()
            await self.runner.stop()
        finally:
            self._lock.release()

    async def run_until(self, stop: asyncio.Event) -> None:
        """Start, run until ``stop`` is set, then stop (and release the lock)."""
        try:
            await self.start()
            await self.sync_until(stop)
        finally:
            await self.stop()

    async def sync_until(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (after ``start``): the upkeep and the transport keep
        the engine in step by themselves. Raises what ended the engine, if it ended first."""
        task = self._task  # kept: ``stop`` (e.g. after the web server failed to start) clears ``_task``
        if task is None:
            raise RuntimeError("sync_until before start")
        waiting = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({waiting, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
        if not stop.is_set() and task.done() and not task.cancelled():
            task.result()

    async def sync_once(self) -> SyncReport:
        """One upkeep pass now, and every inbox item waiting applied; what changed since
        the previous report."""
        await self.upkeep.pass_once()
        await self.transport.drain()
        return self._reported.since(self.upkeep.stats.sync, self.transport.stats.acknowledged)


@dataclass
class _Mark:
    """How far the previous report read the upkeep's running totals."""

    started: int = 0
    stopped: int = 0
    status: int = 0
    reloaded: int = 0
    cancelled: int = 0
    delivered: int = 0

    def since(self, total: SyncReport, delivered: int) -> SyncReport:
        report = SyncReport(started_accounts=total.started_accounts[self.started:],
                            stopped_accounts=total.stopped_accounts[self.stopped:],
                            status_changes=total.status_changes[self.status:], reloaded=total.reloaded[self.reloaded:],
                            cancelled_orders=total.cancelled_orders - self.cancelled,
                            delivered=delivered - self.delivered)
        self.started, self.stopped = len(total.started_accounts), len(total.stopped_accounts)
        self.status, self.reloaded = len(total.status_changes), len(total.reloaded)
        self.cancelled, self.delivered = total.cancelled_orders, delivered
        return report
