"""How an engine keeps its accounts in step with what users change through the web tier.

The web tier only writes the database: a bot started, paused, stopped or re-configured,
a kill switch (bots stopped with the reason ``KILL_REASON``, their orders marked for
cancelling, as an owner's stop marks them too), an account revoked or
deleted. ``AccountSync.sync`` is the one place that brings a runner in line with those
rows, for a given scope of accounts:

* an account with a running bot and no runner is started (it reconciles first); so is
  one whose bots are all stopped but that has cancels outstanding (orders marked
  ``CANCEL_REQUESTED``, as a kill switch marks them): its reconcile and polls send them.
  That is how a kill the previous owner never saw (an engine restarted, a scale-out
  partition moved, within a pass of the kill) is still carried out by the next owner;
* a bot whose stored status or config changed is brought in line (a stopped bot with a
  new config is reloaded, keeping its saved state); bots stopped (a kill switch, their
  owner) have their open orders cancelled at once, while still loaded to hear the
  cancels (the running account's polls would send them too, to a bot no longer there);
* a bot stopped or deleted is unloaded from its runner (its pairs are no longer waited
  for, its events no longer stepped), as a restart would leave it out;
* an account of the scope that is no longer active (revoked, deleted) is stopped.

The embedded engine (``engine_host.EngineHost``) syncs every account of the database;
a scale-out worker (``worker_upkeep.WorkerUpkeep``) syncs the accounts of each partition
it owns, under that partition's fenced scope, so a worker that lost the partition cannot
commit any of it. Nothing here writes a status the user stored back over the row: a
status change is adopted in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from sealbot.domain.errors import SealbotError
from sealbot.domain.evolve import evolve
from sealbot.engine.journal import AccountRecord, BotRecord, BotStatus, Journal, JournalTx
from sealbot.engine.orders import CANCEL_REQUESTED
from sealbot.engine.runner import AccountRunner, InProcessRunner

log = logging.getLogger(__name__)

_LIVE = (BotStatus.RUNNING, BotStatus.PAUSED)


@dataclass
class SyncReport:
    """What one pass changed (the tests and the log read it)."""

    started_accounts: list[str] = field(default_factory=list)
    stopped_accounts: list[str] = field(default_factory=list)
    status_changes: list[tuple[str, str]] = field(default_factory=list)  # (bot id, new status)
    reloaded: list[str] = field(default_factory=list)
    unloaded: list[str] = field(default_factory=list)  # bots stopped or deleted: no longer in the runner
    cancelled_orders: int = 0  # open orders cancelled for bots stopped (a kill switch, their owner)
    cancel_starts: list[str] = field(default_factory=list)  # accounts started only to send outstanding cancels
    delivered: int = 0  # inbox items delivered (the embedded engine only: workers get them from the broker)

    def add(self, other: SyncReport) -> None:
        self.started_accounts += other.started_accounts
        self.stopped_accounts += other.stopped_accounts
        self.status_changes += other.status_changes
        self.reloaded += other.reloaded
        self.unloaded += other.unloaded
        self.cancelled_orders += other.cancelled_orders
        self.cancel_starts += other.cancel_starts
        self.delivered += other.delivered


class AccountSync:
    """Brings ``runner`` in line with the stored accounts and bots of a scope.

    ``reader`` reads the bot rows; it may be an unfenced journal, because every write
    this makes goes through the runner's own journal (fenced in a worker)."""

    def __init__(self, runner: InProcessRunner, reader: Journal) -> None:
        self.runner, self.reader = runner, reader
        self._failed: set[str] = set()  # accounts whose exchange could not be reached (retried each pass)
        # accounts not running whose orders were last found with no cancel outstanding, by
        # their bots' (id, status, reason) then: looked at again only once those change
        self._settled: dict[str, tuple[tuple[str, str, str | None], ...]] = {}

    async def sync(self, active: Mapping[str, AccountRecord], running: Iterable[str],
                   report: SyncReport | None = None, *, with_bots: Collection[str] | None = None) -> SyncReport:
        """One pass over a scope: ``active`` are its active accounts by id, ``running`` the
        ids of its accounts the runner runs now; ``with_bots``, when given, the accounts
        that have any bot row (the others have nothing to sync, and are not read)."""
        report = report if report is not None else SyncReport()
        for account_id in [a for a in running if a not in active and a in self.runner.accounts]:
            await self.runner.stop_account(account_id)
            report.stopped_accounts.append(account_id)
        scope = [a for a in active.values() if with_bots is None or a.id in with_bots]
        if not scope:
            return report
        with self.reader.transaction() as tx:
            stored = {account.id: tx.bots(account.id) for account in scope}
            cancelling = {a.id for a in scope if self._cancels_outstanding(tx, a.id, stored[a.id])}
        for account in scope:
            await self._sync_account(account, stored[account.id], report, account.id in cancelling)
        return report

    def _cancels_outstanding(self, tx: JournalTx, account_id: str, stored: list[BotRecord]) -> bool:
        """An account not running here, with no running bot, that has orders marked for
        cancelling. Its orders are read once, then again only when its bots' statuses
        change (a kill switch changes them), not on every pass."""
        if account_id in self.runner.accounts or any(b.status == BotStatus.RUNNING for b in stored):
            self._settled.pop(account_id, None)
            return False
        bots = tuple((b.id, b.status, b.status_reason) for b in stored)
        if self._settled.get(account_id) == bots:
            return False
        if any(e.reason == CANCEL_REQUESTED for e in tx.open_orders(account_id)):
            return True
        self._settled[account_id] = bots
        return False

    async def _sync_account(self, account: AccountRecord, stored: list[BotRecord], report: SyncReport,
                            cancelling: bool = False) -> None:
        account_runner = self.runner.accounts.get(account.id)
        if account_runner is None:
            if not cancelling and not any(b.status == BotStatus.RUNNING for b in stored):
                return
            try:
                await self.runner.start_account(account.id)  # loads every running/paused bot, reconciles
            except SealbotError as exc:  # exchange away, key gone: logged once, retried each pass; the others go on
                if account.id not in self._failed:
                    log.warning("account %s not started: %s", account.id, exc)
                self._failed.add(account.id)
                return
            self._failed.discard(account.id)
            report.started_accounts.append(account.id)
            if cancelling:
                report.cancel_starts.append(account.id)
            return
        killed: list[str] = []
        for record in stored:
            live = account_runner.bots.get(record.id)
            if live is not None and record.config != live.record.config and record.status not in _LIVE:
                del account_runner.bots[record.id]  # edited while stopped: the new config on next start
                live = None
                report.reloaded.append(record.id)
            if live is None:
                if record.status == BotStatus.RUNNING:
                    account_runner.set_status([record.id], BotStatus.RUNNING, record.status_reason or "started")
                    report.status_changes.append((record.id, record.status))
                continue
            if (record.status, record.status_reason) != (live.record.status, live.record.status_reason):
                _adopt(account_runner, record.id, record.status, record.status_reason)
                report.status_changes.append((record.id, record.status))
                if record.status == BotStatus.STOPPED:
                    # a kill switch, the owner's stop, a smart trade's cancel: each marked the
                    # bot's orders for cancelling; sent now, while the bot is still loaded to
                    # hear each cancel (or a last fill) before it is unloaded below
                    killed.append(record.id)
        if killed:
            report.cancelled_orders += await account_runner.cancel_open_orders(killed)
        self._unload_gone(account_runner, stored, report)

    def _unload_gone(self, account_runner: AccountRunner, stored: list[BotRecord], report: SyncReport) -> None:
        """A bot the user stopped or deleted leaves the runner (a restart would not load it
        either): the pairs it traded are no longer waited for, so a stopped bot on a pair
        without a price stops holding up the account's other bots. A stopped bot whose
        orders' cancel is still outstanding (a stop or a kill asked for it: ``request_cancels``)
        stays until each is final: it must hear the cancel, or a last fill, or it resumes
        on its next start believing the order still works (a take profit gone for good)."""
        statuses = {record.id: record.status for record in stored}
        gone = [b for b in account_runner.bots if statuses.get(b, BotStatus.STOPPED) not in _LIVE]
        if not gone:
            return
        with self.reader.transaction() as tx:
            busy = {e.bot for e in tx.open_orders(account_runner.account.id) if e.reason == CANCEL_REQUESTED}
        for bot_id in gone:
            if bot_id in busy and bot_id in statuses:  # a deleted bot (no row) goes at once
                continue
            account_runner.unload(bot_id)
            report.unloaded.append(bot_id)


def _adopt(account_runner: AccountRunner, bot_id: str, status: str, reason: str | None) -> None:
    """Take a status the user stored (the row already says it: nothing is written back)."""
    live = account_runner.bots[bot_id]
    live.record = evolve(live.record, status=status, status_reason=reason)
