"""What the engine writes down, behind one narrow interface.

The engine needs a handful of durable facts: each order *before* it is sent (so a
restart can ask the exchange about it), each fill exactly once, each bot's config,
state and status, deals and alerts. ``Journal`` is that interface; ``StoreJournal``
(in ``engine.store_journal``) implements it on sealbot's database, ``MemoryJournal``
here implements it in memory for unit tests and the benchmark.

Every write happens inside ``journal.transaction()``: a bot's new state, the orders
it asked for and the fill that caused them commit together or not at all, so a
crash can never leave a state that has seen a fill the books have not (or the reverse).

The guard's daily totals come from the journal too (``JournalTx.spent_today``): each
order carries what it counts against its owners' daily limits (``JournalOrder.notional``),
so the totals are those of the orders journalled that UTC day, whichever process wrote
them. ``MemoryJournal`` keeps running totals (O(1) per order); ``StoreJournal`` sums the
day's rows in the transaction that journals the next order.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

from msgspec import Struct

from sealbot.domain import AlertLevel, ClientOrderId, Deal, Fill, Order, OrderStatus
from sealbot.domain.evolve import evolve
from sealbot.engine.guard import DailySpend, SpentToday


class BotStatus:
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    ERROR = "error"  # cannot be loaded (its config or state): set aside until its owner fixes it


class JournalOrder(Struct, frozen=True):
    """An order as sealbot journalled it. ``reason`` says why it was refused/rejected.

    ``attempted_at`` is the (wall-clock) time the latest send attempt is signed with: the
    journalling time for the first attempt, a new one journalled before each re-send. The
    exchange refuses a request signed with it once its receive window has passed, so an
    attempt older than that window can never be carried out (``engine.orders``).

    ``notional`` is what the order counts against its owners' daily limits (the guard's
    ``GuardDecision.counted``), on the UTC day of ``created_at``, unless the order is
    rejected (by the guard or the exchange); ``None`` when it does not count (a closing
    order). Once set it stays: an entry written back without one keeps the stored value."""

    account: str
    bot: str
    order: Order
    created_at: datetime
    attempts: int = 0
    reason: str | None = None
    attempted_at: datetime | None = None
    notional: Decimal | None = None

    @property
    def key(self) -> str:
        return self.order.client_id.text


class BotRecord(Struct, frozen=True):
    """A bot as stored: ``id`` is also the bot part of its client order ids."""

    id: str
    user: str
    account: str
    kind: str
    config: dict[str, Any]
    state: dict[str, Any] | None
    status: str = BotStatus.RUNNING
    status_reason: str | None = None


class AccountRecord(Struct, frozen=True):
    id: str
    user: str
    exchange: str
    label: str = ""


class AlertRecord(Struct, frozen=True):
    user: str
    level: AlertLevel
    code: str
    message: str
    at: datetime
    account: str | None = None
    bot: str | None = None
    id: int | None = None
    delivered: tuple[str, ...] = ()


class JournalTx(Protocol):
    def get_order(self, client_id: ClientOrderId) -> JournalOrder | None: ...

    def add_order(self, entry: JournalOrder) -> None:
        """Journal a new order; raises ``ValueError`` if its client id is already known."""

    def put_order(self, entry: JournalOrder) -> None:
        """Replace what is known of an already journalled order."""

    def open_orders(self, account: str) -> list[JournalOrder]:
        """Orders not in a final state (pending included), oldest first."""

    def spent_today(self, user: str, account: str, day: date) -> SpentToday:
        """The ``notional`` of the orders journalled on the UTC ``day`` for the user (on all
        accounts) and for the account, rejected orders left out. Later writes in the same
        transaction see it: the caller judges an order against it, then journals that
        order, and another transaction (another process) judging the user's next order
        waits for or sees this one (``StoreJournal`` locks the user for it)."""

    def knows_client_id(self, account: str, text: str) -> bool:
        """True when sealbot journalled an order with this exact client id on this account."""

    def add_fill(self, account: str, fill: Fill) -> bool:
        """Record a fill; False (and no change) when this (order, trade id) is already known."""

    def fills_of(self, client_id: ClientOrderId) -> list[Fill]: ...

    def bots(self, account: str) -> list[BotRecord]: ...

    def get_bot(self, bot: str) -> BotRecord | None: ...

    def prefetch(self, bots: Collection[str], orders: Collection[str], deals: Collection[tuple[str, int]]) -> None:
        """A hint: these bots, orders (client ids) and deals (bot, no) are read and written
        in this transaction (a candle's group commit). A database journal reads them in a
        few statements instead of a query each."""

    def save_bot(self, record: BotRecord) -> None: ...

    def save_deal(self, account: str, deal: Deal) -> None: ...

    def add_alert(self, alert: AlertRecord) -> AlertRecord: ...

    def mark_delivered(self, alert_id: int, channel: str) -> None: ...

    def permission_report(self, account: str) -> dict[str, Any] | None:
        """The key's last stored permission report (at link time, then each watchdog pass)."""

    def save_permission_report(self, account: str, report: dict[str, Any], at: datetime) -> None:
        """Store a fresh report: the next pass (in this process or after a restart) compares with it."""

    def flagged(self, account: str, refs: Collection[str]) -> set[str]:
        """Those of ``refs`` (``order:...``/``trade:...``) the watchdog already flagged on the account."""

    def add_flags(self, account: str, refs: Collection[str], alert: AlertRecord) -> None:
        """Remember ``refs`` as flagged by ``alert`` (in the alert's transaction)."""


class Journal(Protocol):
    def transaction(self) -> AbstractContextManager[JournalTx]: ...

    def accounts(self) -> list[AccountRecord]: ...


@dataclass
class _Data:
    orders: dict[str, JournalOrder] = field(default_factory=dict)
    fills: dict[tuple[str, str], Fill] = field(default_factory=dict)
    bots: dict[str, BotRecord] = field(default_factory=dict)
    deals: dict[tuple[str, int], Deal] = field(default_factory=dict)
    alerts: list[AlertRecord] = field(default_factory=list)
    accounts: dict[str, AccountRecord] = field(default_factory=dict)
    permissions: dict[str, tuple[dict[str, Any], datetime]] = field(default_factory=dict)
    flags: dict[tuple[str, str], int | None] = field(default_factory=dict)  # (account, ref) -> alert id
    spend: DailySpend = field(default_factory=DailySpend)  # "user:.."/"account:.." -> day -> notional


class MemoryJournal:
    """The journal in memory: transactions are all-or-nothing (an undo log puts
    back what the block wrote when it raises)."""

    def __init__(self) -> None:
        self.data = _Data()

    def add_account(self, account: AccountRecord) -> None:
        self.data.accounts[account.id] = account

    def accounts(self) -> list[AccountRecord]:
        return list(self.data.accounts.values())

    @contextmanager
    def transaction(self) -> Iterator[JournalTx]:
        tx = _MemoryTx(self.data)
        try:
            yield tx
        except BaseException:
            tx.rollback()
            raise


_MISSING = object()


class _MemoryTx:
    """Writes go straight to the data; an undo log of (table, key, old value) puts them
    back on rollback, so a transaction costs what it touches, not the table size. The
    daily totals are running sums, changed as orders are written and put back the same way."""

    def __init__(self, data: _Data) -> None:
        self.data = data
        self._undo: list[tuple[dict[Any, Any], Any, Any]] = []
        self._spent: list[tuple[str, date, Decimal]] = []  # (owner, day, delta) to take back on rollback
        self._alerts = len(data.alerts)

    def _set(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        self._undo.append((table, key, table.get(key, _MISSING)))
        table[key] = value

    def rollback(self) -> None:
        for table, key, old in reversed(self._undo):
            if old is _MISSING:
                table.pop(key, None)
            else:
                table[key] = old
        for owner, day, delta in reversed(self._spent):
            self.data.spend.correct(owner, day, -delta)
        del self.data.alerts[self._alerts:]

    def _count(self, old: JournalOrder | None, new: JournalOrder) -> None:
        """Move the owners' running totals by what the write changed in what the order counts."""
        delta = _counted(new) - _counted(old)
        if not delta:
            return
        day = _utc_day(new.created_at)
        account = self.data.accounts.get(new.account)
        bot = self.data.bots.get(new.bot) if account is None else None
        user = account.user if account is not None else bot.user if bot is not None else None
        for owner in (f"account:{new.account}", *(() if user is None else (f"user:{user}",))):
            if delta > 0:
                self.data.spend.add(owner, day, delta)
            else:
                self.data.spend.correct(owner, day, delta)
            self._spent.append((owner, day, delta))

    def get_order(self, client_id: ClientOrderId) -> JournalOrder | None:
        return self.data.orders.get(client_id.text)

    def add_order(self, entry: JournalOrder) -> None:
        if entry.key in self.data.orders:
            raise ValueError(f"client order id {entry.key} is already journalled")
        self._set(self.data.orders, entry.key, entry)
        self._count(None, entry)

    def put_order(self, entry: JournalOrder) -> None:
        old = self.data.orders.get(entry.key)
        if entry.notional is None and old is not None and old.notional is not None:
            entry = evolve(entry, notional=old.notional)
        self._set(self.data.orders, entry.key, entry)
        self._count(old, entry)

    def open_orders(self, account: str) -> list[JournalOrder]:
        found = [e for e in self.data.orders.values() if e.account == account and not e.order.status.is_final]
        return sorted(found, key=lambda e: e.created_at)

    def spent_today(self, user: str, account: str, day: date) -> SpentToday:
        spend = self.data.spend
        return SpentToday(spend.spent(f"user:{user}", day), spend.spent(f"account:{account}", day))

    def knows_client_id(self, account: str, text: str) -> bool:
        entry = self.data.orders.get(text)
        return entry is not None and entry.account == account

    def add_fill(self, account: str, fill: Fill) -> bool:
        key = (fill.client_id.text, fill.trade_id)
        if key in self.data.fills:
            return False
        self._set(self.data.fills, key, fill)
        return True

    def fills_of(self, client_id: ClientOrderId) -> list[Fill]:
        return [f for (cid, _), f in self.data.fills.items() if cid == client_id.text]

    def bots(self, account: str) -> list[BotRecord]:
        return [b for b in self.data.bots.values() if b.account == account]

    def get_bot(self, bot: str) -> BotRecord | None:
        return self.data.bots.get(bot)

    def prefetch(self, bots: Collection[str], orders: Collection[str], deals: Collection[tuple[str, int]]) -> None:
        """Nothing to read ahead: the records are in memory."""

    def save_bot(self, record: BotRecord) -> None:
        self._set(self.data.bots, record.id, record)

    def save_deal(self, account: str, deal: Deal) -> None:
        self._set(self.data.deals, (deal.bot, deal.no), deal)

    def add_alert(self, alert: AlertRecord) -> AlertRecord:
        stored = evolve(alert, id=len(self.data.alerts) + 1)
        self.data.alerts.append(stored)
        return stored

    def mark_delivered(self, alert_id: int, channel: str) -> None:
        alert = self.data.alerts[alert_id - 1]
        self.data.alerts[alert_id - 1] = evolve(alert, delivered=(*alert.delivered, channel))

    def permission_report(self, account: str) -> dict[str, Any] | None:
        stored = self.data.permissions.get(account)
        return None if stored is None else stored[0]

    def save_permission_report(self, account: str, report: dict[str, Any], at: datetime) -> None:
        self._set(self.data.permissions, account, (report, at))

    def flagged(self, account: str, refs: Collection[str]) -> set[str]:
        return {ref for ref in refs if (account, ref) in self.data.flags}

    def add_flags(self, account: str, refs: Collection[str], alert: AlertRecord) -> None:
        for ref in refs:
            self._set(self.data.flags, (account, ref), alert.id)


def _counted(entry: JournalOrder | None) -> Decimal:
    """What a journalled order adds to its owners' daily totals (``JournalOrder.notional``)."""
    if entry is None or entry.notional is None or entry.order.status is OrderStatus.REJECTED:
        return Decimal(0)
    return entry.notional


def _utc_day(moment: datetime) -> date:
    return (moment.astimezone(UTC) if moment.tzinfo is not None else moment).date()
