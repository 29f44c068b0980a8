"""Watchdog: catch a leaked key in the act, and keys whose permissions drift.

Every ``interval`` seconds, for every linked account, it lists the account's open
orders (all pairs) and recent trades (on the pairs the account's bots trade, plus any
the policy names) and flags each one whose client id is not in sealbot's journal.
Matching is against the journal, never against the ``sb`` prefix: a thief holding the
key can put any client id on an order, but cannot make sealbot have journalled it.

On a finding: the account's bots are paused, a critical alert is raised (stored and
delivered), and when the policy says so the credential is revoked through the hook
the services layer provides. What was flagged (the exchange's order and trade ids)
is stored in the alert's transaction, per account, and each pass looks up only the ids
it just fetched: whichever process watches the account next (after a restart, or a
worker that took the partition over) does not report the same order again, while a new
foreign order is reported. The same pass re-checks the key's permissions and
alerts on drift (withdrawals newly enabled, IP restriction removed, verdict worse).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sealbot.bots.registry import parse_config
from sealbot.domain import AlertLevel, Fill, InvalidConfig, Order, Pair
from sealbot.engine.clock import Clock, SystemClock
from sealbot.engine.journal import AccountRecord, AlertRecord, Journal
from sealbot.engine.runner import bot_pairs
from sealbot.venues.base import PermissionReport, Venue, Verdict
from sealbot.venues.errors import VenueError

log = logging.getLogger(__name__)

VenueFor = Callable[[AccountRecord], Awaitable[Venue]]
PauseAccount = Callable[[str, str], Awaitable[list[str]]]
AlertSink = Callable[[AlertRecord], Awaitable[None]]
Revoke = Callable[[AccountRecord, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WatchdogPolicy:
    revoke_on_leak: bool = False
    pause_on_drift: bool = True  # withdrawals newly enabled pauses the bots too
    extra_pairs: tuple[Pair, ...] = ()
    lookback: timedelta = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Finding:
    account: str
    kind: str  # "foreign_order", "foreign_trade", "permission_drift"
    detail: str
    ref: str | None = None  # what is remembered as flagged: "order:<pair>:<id>" / "trade:<pair>:<id>"


@dataclass
class Watchdog:
    journal: Journal
    venue_for: VenueFor
    pause: PauseAccount
    alert_sink: AlertSink | None = None
    revoke: Revoke | None = None
    policy: WatchdogPolicy = field(default_factory=WatchdogPolicy)
    clock: Clock = field(default_factory=SystemClock)
    interval: float = 30.0
    _reports: dict[str, PermissionReport] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    def baseline(self, account: str, report: PermissionReport) -> None:
        """The report taken when the key was linked; later checks are compared with it."""
        self._reports[account] = report

    async def check_all(self) -> list[Finding]:
        findings: list[Finding] = []
        for account in self.journal.accounts():
            try:
                findings += await self.check(account)
            except VenueError as exc:
                log.warning("watchdog %s: %s", account.id, exc)
        return findings

    async def check(self, account: AccountRecord) -> list[Finding]:
        venue = await self.venue_for(account)
        findings = await self._foreign(account, venue) + await self._drift(account, venue)
        if not findings:
            return findings
        leak = [f for f in findings if f.kind != "permission_drift"]
        drift_pauses = self.policy.pause_on_drift and any("withdraw" in f.detail for f in findings
                                                          if f.kind == "permission_drift")
        summary = "; ".join(f.detail for f in findings)
        if leak or drift_pauses:
            paused = await self.pause(account.id, f"watchdog: {summary}"[:500])
            summary += f" — {len(paused)} bot(s) paused"
        code = "watchdog.foreign_order" if leak else "watchdog.permission_drift"
        level = AlertLevel.CRITICAL if leak or drift_pauses else AlertLevel.WARNING
        with self.journal.transaction() as tx:  # the alert and what it flagged commit together
            alert = tx.add_alert(AlertRecord(account.user, level, code, f"account {account.label or account.id}: "
                                             f"{summary}", self.clock.now(), account.id))
            refs = [f.ref for f in leak if f.ref is not None]
            if refs:
                tx.add_flags(account.id, refs, alert)
        if self.alert_sink is not None:
            await self.alert_sink(alert)
        if leak and self.policy.revoke_on_leak and self.revoke is not None:
            await self.revoke(account, "watchdog: orders not placed by sealbot")
        return findings

    def _pairs(self, account: AccountRecord) -> set[Pair]:
        pairs = set(self.policy.extra_pairs)
        with self.journal.transaction() as tx:
            bots = tx.bots(account.id)
        for bot in bots:
            with contextlib.suppress(InvalidConfig, ImportError):  # a broken config trades nothing
                pairs.update(bot_pairs(parse_config(bot.kind, bot.config)))
        return pairs

    async def _foreign(self, account: AccountRecord, venue: Venue) -> list[Finding]:
        """Orders open on the account and its recent trades that sealbot did not journal
        and that no process flagged before (the flags are in the journal: a restart or a
        partition takeover does not report a still-open foreign order again)."""
        seen: list[tuple[str, Order | Fill]] = [(_order_ref(order), order) for order in await venue.fetch_open_orders()]
        since: datetime = self.clock.now() - self.policy.lookback
        for pair in sorted(self._pairs(account)):
            seen += [(_trade_ref(pair, fill), fill) for fill in await venue.fetch_my_trades(pair, since)]
        with self.journal.transaction() as tx:
            foreign = {ref: item for ref, item in seen if not tx.knows_client_id(account.id, item.client_id.text)}
            known = tx.flagged(account.id, foreign) if foreign else set()
        found: list[Finding] = []
        for ref, item in foreign.items():
            if ref in known:
                continue
            if isinstance(item, Order):
                found.append(Finding(account.id, "foreign_order",
                                     f"order not placed by sealbot: {item.side} {item.amount} {item.pair} at "
                                     f"{item.price} (client id {item.client_id.text!r})", ref))
            else:
                found.append(Finding(account.id, "foreign_trade",
                                     f"trade not placed by sealbot: {item.side} {item.amount} {item.pair} at "
                                     f"{item.price}", ref))
        return found

    async def _drift(self, account: AccountRecord, venue: Venue) -> list[Finding]:
        report = await venue.check_permissions()
        before = self._reports.get(account.id)
        with self.journal.transaction() as tx:
            if before is None:
                # the report stored at link time or by the last pass, so a permission
                # changed while sealbot was down is caught on the first pass after a restart
                stored = tx.permission_report(account.id)
                before = PermissionReport.from_dict(stored) if stored else None
            tx.save_permission_report(account.id, report.to_dict(), self.clock.now())
        self._reports[account.id] = report
        if before is None:
            return []
        found: list[str] = []
        if report.can_withdraw and not before.can_withdraw:
            found.append("withdrawals were enabled on the key")
        if before.ip_restricted and report.ip_restricted is False:
            found.append("the key's IP restriction was removed")
        order = [Verdict.OK, Verdict.FLAGGED, Verdict.REFUSED]
        if order.index(report.verdict) > order.index(before.verdict) and not found:
            found.append(f"key verdict went from {before.verdict} to {report.verdict}")
        return [Finding(account.id, "permission_drift", text) for text in found]

    async def run(self) -> None:
        while True:
            await self.check_all()
            await self.clock.sleep(self.interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="watchdog")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def _order_ref(order: Order) -> str:
    """An exchange's order id is unique per pair (Binance's are per symbol)."""
    return f"order:{order.pair}:{order.exchange_id or order.client_id.text}"


def _trade_ref(pair: Pair, fill: Fill) -> str:
    return f"trade:{pair}:{fill.trade_id}"
