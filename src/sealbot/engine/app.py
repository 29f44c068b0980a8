"""The engine as one object the CLI, the demo and the services start and stop.

``Engine`` runs, in this process: an ``InProcessRunner`` with every active account on
the database, the watchdog over every linked account, and alert delivery. The services
layer supplies the two things the engine must not build itself: ``venue_factory``
(custody's signer-bound venue for a live account, a ``PaperVenue`` for a paper one) and,
optionally, ``revoke`` (destroy an account's sealed key when the watchdog says so). It also runs the
portfolio refresher (``engine.portfolio``: balance snapshots every
``portfolio_interval`` seconds, ``None`` turns it off) and applies per-account guard
limits stored in ``account_guard_limits`` (loaded on start and when a bot starts; limits
given in ``EngineOptions.guard.accounts`` take precedence).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from sealbot.engine.clock import Clock, SystemClock
from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.guard_store import load_account_limits, load_user_limits
from sealbot.engine.journal import AccountRecord, AlertRecord
from sealbot.engine.notify import Notifier
from sealbot.engine.portfolio import PortfolioRefresher, StorePortfolio
from sealbot.engine.runner import InProcessRunner, RunnerSettings, VenueFactory
from sealbot.engine.store_journal import StoreJournal
from sealbot.engine.watchdog import Revoke, Watchdog, WatchdogPolicy
from sealbot.venues.base import Venue
from sealbot.venues.errors import VenueError

log = logging.getLogger(__name__)


@dataclass
class EngineOptions:
    runner: RunnerSettings = field(default_factory=RunnerSettings)
    guard: GuardPolicy = field(default_factory=GuardPolicy)
    watchdog: WatchdogPolicy = field(default_factory=WatchdogPolicy)
    watchdog_interval: float = 30.0  # seconds between two watchdog passes over every account
    portfolio_interval: float | None = 300.0  # seconds between two balance snapshots; None: no refresher
    portfolio_full_history_days: int | None = 30  # older snapshots: one per account per day; None: keep all


class StoredLimits:
    """The guard limits users stored (their own, ``user_guard_limits``, and their accounts',
    ``account_guard_limits``), kept in a live ``GuardPolicy`` that a runner shares:
    ``reload`` adds, changes and drops them. Limits the embedder put in the policy itself
    take precedence and are never dropped. Used by the embedded engine and by each
    scale-out worker (services/worker_upkeep.py), once per sync pass."""

    def __init__(self, session_factory: sessionmaker[Session], policy: GuardPolicy) -> None:
        self.session_factory, self.policy = session_factory, policy
        self._explicit_accounts = set(policy.accounts)
        self._explicit_users = set(policy.users)

    def reload(self) -> None:
        defaults = self.policy.defaults
        _adopt(self.policy.users, load_user_limits(self.session_factory, defaults), self._explicit_users)
        _adopt(self.policy.accounts, load_account_limits(self.session_factory, defaults), self._explicit_accounts)


def _adopt(live: dict[str, GuardLimits], stored: dict[str, GuardLimits], explicit: set[str]) -> None:
    """Make ``live`` hold ``stored`` (in place: the runner's policy is this dict), leaving
    the ``explicit`` entries alone."""
    for key in [k for k in live if k not in explicit and k not in stored]:
        del live[key]
    live.update({k: lim for k, lim in stored.items() if k not in explicit})


class AccountVenues:
    """The venue the watchdog and the portfolio refresher use for an account: the runner's
    while the account runs (one request budget, one session), else one opened for them
    and kept until ``close``."""

    def __init__(self, runner: InProcessRunner, factory: VenueFactory) -> None:
        self.runner, self.factory = runner, factory
        self.idle: dict[str, Venue] = {}

    async def __call__(self, account: AccountRecord) -> Venue:
        running = self.runner.accounts.get(account.id)
        if running is not None:
            return running.venue
        if account.id not in self.idle:
            self.idle[account.id] = await self.factory(account)
        return self.idle[account.id]

    async def close(self, account_ids: Iterable[str] | None = None) -> None:
        """Close the idle venues of ``account_ids`` (all when None)."""
        for account_id in list(self.idle) if account_ids is None else list(account_ids):
            venue = self.idle.pop(account_id, None)
            if venue is not None:
                await venue.close()


class Engine:
    def __init__(self, session_factory: sessionmaker[Session], venue_factory: VenueFactory, *,
                 options: EngineOptions | None = None, notifier: Notifier | None = None,
                 revoke: Revoke | None = None, clock: Clock | None = None) -> None:
        self.options = options or EngineOptions()
        self.clock: Clock = clock or SystemClock()
        self.journal = StoreJournal(session_factory)
        self.notifier = notifier or Notifier(self.journal)
        self.venue_factory = venue_factory
        self.runner = InProcessRunner(self.journal, venue_factory, guard=self.options.guard, clock=self.clock,
                                      settings=self.options.runner, alert_sink=self._deliver)
        self.venues = AccountVenues(self.runner, venue_factory)
        self.watchdog = Watchdog(self.journal, self.venues, self.runner.pause_account,
                                 alert_sink=self._deliver, revoke=revoke, policy=self.options.watchdog,
                                 clock=self.clock, interval=self.options.watchdog_interval)
        self.session_factory = session_factory
        self.limits = StoredLimits(session_factory, self.options.guard)
        self.portfolio = PortfolioRefresher(self.journal.accounts, self.venues, StorePortfolio(session_factory),
                                            interval=self.options.portfolio_interval or 0.0, clock=self.clock,
                                            full_history_days=self.options.portfolio_full_history_days,
                                            prices=self.runner.prices)

    async def _deliver(self, alert: AlertRecord) -> None:
        await self.notifier.deliver(alert)

    async def start(self) -> list[str]:
        """Start every active account (each reconciles first) and the watchdog; an
        account whose exchange is unreachable is logged and retried by ``start_account``."""
        started: list[str] = []
        self.limits.reload()  # the users' stored guard limits into the live policy (the runner shares it)
        for account in self.journal.accounts():
            try:
                await self.runner.start_account(account.id)
                started.append(account.id)
            except VenueError as exc:
                log.warning("account %s not started: %s", account.id, exc)
        self.watchdog.start()
        if self.options.portfolio_interval is not None:
            self.portfolio.start()
        return started

    async def start_bot(self, account_id: str, bot_id: str) -> None:
        """A bot set to ``running`` in the database joins its (possibly new) account."""
        self.limits.reload()  # the users' stored guard limits into the live policy (the runner shares it)
        if account_id not in self.runner.accounts:
            await self.runner.start_account(account_id)
        else:
            self.runner.resume(account_id, [bot_id])

    async def stop(self) -> None:
        await self.portfolio.stop()
        await self.watchdog.stop()
        await self.runner.stop()
        await self.venues.close()

    async def run_until(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (the CLI sets it on SIGINT/SIGTERM). A ``start`` that
        fails part way is stopped too: the accounts it started hold open exchange sessions."""
        try:
            await self.start()
            await stop.wait()
        finally:
            await self.stop()
