"""The engine inside the serving process (the embedded deployment).

The web process and the engine share only the database: the web tier stores what a
user asked for (a bot started, paused, stopped or re-configured; a signal or a
close-at-market in the bot inbox) and the engine picks it up here, once per
``sync_interval``. The engine never takes a request from the web tier directly, so the
same database rows drive a worker on another machine (docs/deploy.md).

``EngineHost.sync_once`` is the whole contract:

* per-account guard limits users stored are reloaded;
* every account of the database is brought in line with its stored bots
  (``engine_sync.AccountSync``, the same code a scale-out worker runs for the
  partitions it owns): started, bots started/paused/stopped/reloaded, a kill switch's
  open orders cancelled, revoked and deleted accounts stopped;
* waiting inbox items are delivered, oldest first, to the bots this engine runs; items
  of bots it does not run stay in the inbox. (Workers get them from the broker.)
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
from collections.abc import Callable
from typing import IO

import sqlalchemy as sa

from sealbot.domain import Event, Refused
from sealbot.engine.app import Engine, EngineOptions
from sealbot.engine.clock import Clock
from sealbot.engine.notify import Notifier
from sealbot.services import inbox
from sealbot.services.engine_sync import AccountSync, SyncReport
from sealbot.services.notifications import build_notifier
from sealbot.services.platform import Platform

log = logging.getLogger(__name__)

__all__ = ["EngineHost", "EngineLock", "SyncReport"]


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
    """Runs ``Engine`` for every active account on the platform's database and keeps it in
    step with what users change through the web tier."""

    def __init__(self, platform: Platform, *, options: EngineOptions | None = None, clock: Clock | None = None,
                 notifier_factory: Callable[[Platform], Notifier] | None = None,
                 sync_interval: float = 1.0) -> None:
        self.platform = platform
        self.sync_interval = sync_interval
        self.engine = Engine(platform.session_factory, platform.venue_for, options=options, clock=clock)
        # alerts go to the channels each user configured (docs/notifications.md)
        self.engine.notifier = (notifier_factory or build_notifier)(platform)
        self.sync = AccountSync(self.engine.runner, self.engine.journal)
        bind = platform.session_factory.kw["bind"]
        self._lock = EngineLock(bind)

    async def start(self) -> SyncReport:
        """Take the database's engine lock (``Refused`` if another engine holds it), then
        start every account with running bots."""
        self._lock.acquire()
        started = await self.engine.start()
        report = await self.sync_once()
        report.started_accounts[:0] = started
        return report

    async def stop(self) -> None:
        try:
            await self.engine.stop()
        finally:
            self._lock.release()

    async def run_until(self, stop: asyncio.Event) -> None:
        """Start, keep in step until ``stop`` is set, then stop (and release the lock)."""
        try:
            await self.start()
            await self.sync_until(stop)
        finally:
            await self.stop()

    async def sync_until(self, stop: asyncio.Event) -> None:
        """One ``sync_once`` per ``sync_interval`` until ``stop`` is set (after ``start``)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.sync_interval)
            if not stop.is_set():
                try:
                    await self.sync_once()
                except Exception:  # one bad pass must not end the engine; the next pass retries
                    log.exception("engine sync pass failed")

    async def sync_once(self) -> SyncReport:
        self.engine.load_account_limits()  # a user's new per-account guard limits apply from this pass
        active = {account.id: account for account in self.engine.journal.accounts()}
        report = await self.sync.sync(active, list(self.engine.runner.accounts))
        report.delivered = await self._deliver_inbox()
        return report

    async def _deliver_inbox(self) -> int:
        runners = {bot_id: account_runner for account_runner in self.engine.runner.accounts.values()
                   for bot_id in account_runner.bots}
        if not runners:
            return 0

        async def deliver(bot_id: str, event: Event) -> None:
            await runners[bot_id].deliver(bot_id, event)

        return await inbox.deliver_pending(self.platform, deliver, bot_ids=[int(b) for b in runners])

