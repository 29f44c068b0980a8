"""What a scale-out worker keeps doing for the partitions it owns (``sealbot worker``).

The embedded engine follows the database once a second, runs the watchdog over every
account and values every account's balances. A worker owns only some partitions, so it
does the same for exactly their accounts, and each account is looked after by exactly
one process, its partition's owner:

* every ``sync_interval`` seconds, per owned partition, ``engine_sync.AccountSync``
  (the embedded engine's own code) brings the runner in line with the partition's stored
  accounts and bots: a bot started, stopped or re-configured later, a kill switch (open
  orders cancelled; a kill taken before the claim left its cancels journalled, and an
  account with cancels outstanding is started, running bot or not, to send them), an
  account linked after the claim (started when it has a running bot), an account
  revoked or deleted (stopped). Stored per-account guard limits are reloaded on the
  same pass;
* the watchdog checks each account of the owned partitions every
  ``options.watchdog_interval`` seconds. When the worker takes a partition over, each
  account is due at its last check as stored in the database (``permission_checked_at``)
  plus the interval, the stored permission report is the baseline and the stored flags
  (``watchdog_flags``) say what was reported already, so the new owner continues where
  the old one stopped;
* the portfolio refresher values the owned accounts every ``options.portfolio_interval``;
* alerts (the watchdog's and the bots') go to each user's notification channels.

Everything that writes runs under the partition's fenced scope (``fence.CURRENT``): a
worker that lost the partition cannot commit a status, a cancel, a pause, an alert or a
snapshot for it. The worker calls ``claimed`` after a claim and ``left`` before it stops
a partition's accounts; ``left`` cancels the partition's work in flight first, so no
work of an old epoch overlaps the step-down or a later claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from sealbot.domain import Refused
from sealbot.domain.errors import SealbotError
from sealbot.engine.app import AccountVenues, EngineOptions, StoredLimits
from sealbot.engine.clock import Clock, SystemClock
from sealbot.engine.journal import AccountRecord, AlertRecord
from sealbot.engine.notify import Notifier
from sealbot.engine.portfolio import PortfolioRefresher, StorePortfolio, Valuation
from sealbot.engine.runner import InProcessRunner
from sealbot.engine.scaleout.fence import CURRENT, Scope
from sealbot.engine.scaleout.partitions import Fenced, PartitionStore, default_partition
from sealbot.engine.store_journal import ACTIVE_ACCOUNTS, StoreJournal
from sealbot.engine.watchdog import Watchdog
from sealbot.services.engine_sync import AccountSync, SyncReport
from sealbot.services.notifications import build_notifier
from sealbot.services.platform import Platform
from sealbot.store import UnitOfWork
from sealbot.store.models import Bot, EngineAccountPartition, ExchangeAccount
from sealbot.store.repositories.portfolio import PortfolioRepository, SnapshotLine
from sealbot.venues.base import Venue
from sealbot.venues.errors import VenueError

log = logging.getLogger(__name__)


@dataclass
class UpkeepStats:
    """Counters since the worker started (tests and the log read them)."""

    passes: int = 0
    sync: SyncReport = field(default_factory=SyncReport)
    watchdog_checks: int = 0
    checked: dict[str, int] = field(default_factory=dict)  # watchdog checks per account
    slowest_check: float = 0.0  # seconds the longest watchdog check of one account took
    findings: int = 0
    fenced: int = 0  # work refused by the fence (the partition was taken over meanwhile)


@dataclass
class _Owned:
    """One owned partition, as the upkeep sees it."""

    epoch: int
    running: set[str]  # its accounts this worker started (the claim's and the upkeep's)
    accounts: dict[str, AccountRecord] = field(default_factory=dict)  # its active accounts, as of the last pass
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class WorkerUpkeep:
    """The ``engine.scaleout.upkeep.PartitionUpkeep`` of ``sealbot worker``."""

    def __init__(self, platform: Platform, partitions: int, *, options: EngineOptions | None = None,
                 notifier_factory: Callable[[Platform], Notifier] | None = None, sync_interval: float = 1.0,
                 clock: Clock | None = None) -> None:
        self.platform, self.sync_interval = platform, sync_interval
        self.options = options or EngineOptions()
        self.clock: Clock = clock or SystemClock()
        self.store = PartitionStore(platform.session_factory, partitions)
        self.notifier = (notifier_factory or build_notifier)(platform)
        self.stats = UpkeepStats()
        self._owned: dict[int, _Owned] = {}
        # account -> when the watchdog looks at it next, on ``clock.monotonic()``: request
        # weight is spent in real seconds, also when ``clock.now()`` runs faster (the demo's
        # replayed exchange time), which would check an account on every pass
        self._next_check: dict[str, float] = {}
        self._pass = asyncio.Lock()  # one pass at a time: a host's ``sync_once`` may run beside the loop's
        self._checking: set[str] = set()
        self._unchecked: set[str] = set()  # accounts whose last check failed (logged once)
        self._task: asyncio.Task[None] | None = None
        self._runner: InProcessRunner | None = None

    # -- the hook ------------------------------------------------------------------------
    def attach(self, runner: InProcessRunner) -> None:
        self._runner = runner
        runner.alert_sink = self._deliver  # the bots' alerts reach the users' channels too
        self.limits = StoredLimits(self.platform.session_factory, runner.guard)
        self.sync = AccountSync(runner, StoreJournal(self.platform.session_factory))
        self.venues = AccountVenues(runner, runner.venue_factory)
        self.watchdog = Watchdog(runner.journal, self.venues, runner.pause_account, alert_sink=self._deliver,
                                 policy=self.options.watchdog, clock=self.clock,
                                 interval=self.options.watchdog_interval)
        self.portfolio = PortfolioRefresher(self._owned_accounts, self._portfolio_venue,
                                            FencedPortfolio(self.platform.session_factory, self.store, self._scope_of),
                                            interval=self.options.portfolio_interval or 0.0, clock=self.clock,
                                            full_history_days=self.options.portfolio_full_history_days,
                                            prices=runner.prices)

    @property
    def runner(self) -> InProcessRunner:
        if self._runner is None:
            raise RuntimeError("WorkerUpkeep used before a worker attached its runner")
        return self._runner

    async def claimed(self, partition: int, epoch: int, accounts: Sequence[str]) -> None:
        self._owned[partition] = _Owned(epoch, set(accounts))
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="worker upkeep")

    async def left(self, partition: int) -> None:
        owned = self._owned.pop(partition, None)
        if owned is None:
            return
        for task in list(owned.tasks):
            task.cancel()
        await asyncio.gather(*owned.tasks, return_exceptions=True)
        mine = owned.running | set(owned.accounts)
        for account_id in [a for a in self.runner.accounts if a in mine]:
            with contextlib.suppress(Exception):
                await self.runner.stop_account(account_id)
        with contextlib.suppress(Exception):
            await self.venues.close(owned.accounts)
        for account_id in owned.accounts:
            self._next_check.pop(account_id, None)
        if not self._owned:
            await self.stop()

    async def stop(self) -> None:
        """End the periodic work (the worker left its last partition)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.portfolio.stop()
        with contextlib.suppress(Exception):
            await self.venues.close()

    # -- every sync_interval ----------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            try:
                await self.pass_once()
            except Exception:  # one bad pass must not end the upkeep; the next one retries
                log.exception("worker upkeep: pass failed")
            if self.options.portfolio_interval is not None and self._owned:
                self.portfolio.start()  # after the first pass: it knows the owned accounts by then
            await asyncio.sleep(max(0.0, self.sync_interval - (loop.time() - began)))

    async def pass_once(self) -> None:
        """Sync every owned partition (one after the other), and start the watchdog's
        checks that are due (they run beside the next passes: a slow exchange must not
        hold back the sync of the others)."""
        async with self._pass:
            await self._pass_once()

    async def _pass_once(self) -> None:
        partitions = list(self._owned)  # the query below reads exactly these (no await in between)
        self.limits.reload()
        active, with_bots = self._active_by_partition()
        now = self.clock.monotonic()
        for partition in partitions:
            owned = self._owned.get(partition)
            if owned is None:
                continue
            owned.accounts = active.get(partition, {})
            report = SyncReport()
            await self._within(partition, self._sync(owned, report, with_bots))
            self.stats.sync.add(report)
            due = [a for a in owned.accounts.values() if a.id not in self._checking and self._due(a.id, now)]
            if due:
                self._spawn(partition, self._watch(due))
        self.stats.passes += 1
        await self.venues.close([a for a in self.venues.idle if a in self.runner.accounts])

    async def _sync(self, owned: _Owned, report: SyncReport, with_bots: set[str]) -> None:
        running = [a for a in owned.running if a in self.runner.accounts]
        try:
            await self.sync.sync(owned.accounts, running, report, with_bots=with_bots)
        finally:  # also when cancelled half way: what was started is stopped by ``left``
            owned.running.update(report.started_accounts)
            owned.running.difference_update(report.stopped_accounts)

    def _due(self, account_id: str, now: float) -> bool:
        return self._next_check.get(account_id, now) <= now

    async def _watch(self, accounts: list[AccountRecord]) -> None:
        loop = asyncio.get_running_loop()
        for account in accounts:
            self._checking.add(account.id)
            self._next_check[account.id] = self.clock.monotonic() + self.options.watchdog_interval
            began = loop.time()
            try:
                findings = await self.watchdog.check(account)
            except (VenueError, SealbotError) as exc:  # exchange away, no key to sign with: next interval
                if account.id not in self._unchecked:
                    log.warning("watchdog %s: %s", account.id, exc)
                self._unchecked.add(account.id)
                continue
            finally:
                self._checking.discard(account.id)
            self._unchecked.discard(account.id)
            self.stats.slowest_check = max(self.stats.slowest_check, loop.time() - began)
            self.stats.watchdog_checks += 1
            self.stats.checked[account.id] = self.stats.checked.get(account.id, 0) + 1
            self.stats.findings += len(findings)

    # -- partitions, scopes and tasks ---------------------------------------------------------
    def _active_by_partition(self) -> tuple[dict[int, dict[str, AccountRecord]], set[str]]:
        """The owned partitions' active accounts, and the accounts that have any bot (three
        queries for all of them). An account seen for the first time is due for the
        watchdog at its stored last check plus the interval: a takeover continues the old
        owner's schedule."""
        partitions = self.store.partitions
        with self.platform.session_factory() as session:
            pinned = {str(r.account_id): r.partition for r in session.scalars(sa.select(EngineAccountPartition))}
            with_bots = {str(a) for a in session.scalars(sa.select(Bot.account_id).distinct())}
            rows = session.execute(sa.select(ExchangeAccount.id, ExchangeAccount.owner_id, ExchangeAccount.exchange,
                                             ExchangeAccount.label, ExchangeAccount.permission_checked_at)
                                   .where(ExchangeAccount.status.in_(ACTIVE_ACCOUNTS)).order_by(ExchangeAccount.id))
            found: dict[int, dict[str, AccountRecord]] = {}
            interval = timedelta(seconds=self.options.watchdog_interval)
            for account_id, owner, exchange, label, checked_at in rows:
                key = str(account_id)
                partition = pinned.get(key, default_partition(key, partitions))
                if partition not in self._owned:
                    continue
                found.setdefault(partition, {})[key] = AccountRecord(key, str(owner), exchange, label)
                if key not in self._next_check:  # the stored check's schedule, moved onto the monotonic clock
                    wait = (_utc(checked_at) + interval - self.clock.now()).total_seconds() if checked_at else 0.0
                    self._next_check[key] = self.clock.monotonic() + max(0.0, wait)
        return found, with_bots

    def _scope_of(self, account_id: str) -> Scope | None:
        for partition, owned in self._owned.items():
            if account_id in owned.accounts:
                return Scope(partition, owned.epoch)
        return None

    def _owned_accounts(self) -> list[AccountRecord]:
        return [a for owned in self._owned.values() for a in owned.accounts.values()]

    async def _portfolio_venue(self, account: AccountRecord) -> Venue:
        if self._scope_of(account.id) is None:
            raise Refused("partition", f"account {account.id} is no longer owned by this worker")
        return await self.venues(account)

    def _spawn(self, partition: int, work: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
        """Run ``work`` as a task of ``partition`` under its fenced scope (tasks it starts,
        such as an account's event worker, inherit the scope)."""
        owned = self._owned.get(partition)
        if owned is None:
            work.close()
            return None
        token = CURRENT.set(Scope(partition, owned.epoch))
        try:
            task = asyncio.create_task(work, name=f"upkeep partition {partition}")
        finally:
            CURRENT.reset(token)
        owned.tasks.add(task)
        task.add_done_callback(lambda t: self._done(owned, partition, t))
        return task

    def _done(self, owned: _Owned, partition: int, task: asyncio.Task[None]) -> None:
        owned.tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, Fenced):  # taken over: the worker's next heartbeat steps it down
            self.stats.fenced += 1
            log.warning("worker upkeep: partition %s: %s", partition, exc)
        elif exc is not None:
            log.error("worker upkeep: partition %s failed", partition, exc_info=exc)

    async def _within(self, partition: int, work: Coroutine[Any, Any, None]) -> None:
        task = self._spawn(partition, work)
        if task is not None:
            await asyncio.wait({task})

    async def _deliver(self, alert: AlertRecord) -> None:
        await self.notifier.deliver(alert)


class FencedPortfolio(StorePortfolio):
    """Balance snapshots of a partition's accounts, committed only by its current owner:
    the snapshot's transaction checks the partition's epoch first."""

    def __init__(self, session_factory: sessionmaker[Session], partitions: PartitionStore,
                 scope_of: Callable[[str], Scope | None]) -> None:
        super().__init__(session_factory)
        self.partitions, self.scope_of = partitions, scope_of

    def save(self, account: AccountRecord, taken_at: datetime, valuation: Valuation) -> None:
        scope = self.scope_of(account.id)
        if scope is None:
            raise Refused("partition", f"account {account.id} is no longer owned by this worker")
        lines = [SnapshotLine(x.asset, x.free, x.used, x.total, x.price, x.value, x.route) for x in valuation.lines]
        try:
            with UnitOfWork(self.session_factory) as uow:
                self.partitions.fence(uow.session, scope.partition, scope.epoch)
                PortfolioRepository(uow.session).add_snapshot(int(account.user), int(account.id), taken_at,
                                                              valuation.currency, valuation.total,
                                                              valuation.unvalued, lines)
        except Fenced as exc:
            raise Refused("partition", str(exc)) from exc


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
