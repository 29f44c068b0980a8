"""The engine's journal on sealbot's database (SQLite or PostgreSQL).

One ``transaction()`` is one ``UnitOfWork``: a bot's new state, its new orders, the
fill that triggered them and its alerts commit together. Reads the engine needs across
owners (by client order id, by account) query the tables directly; writes go through
the owner-scoped repositories, with the owner taken from the account or bot row.
Kill switch and watchdog decisions (pause, stop) and guard refusals are recorded in the
audit log.

The guard's daily totals are sums over ``orders.guard_notional`` of the user's orders of
one UTC day (index ``ix_orders_owner_id_created_at``), read in the transaction that
journals the next order. On PostgreSQL that read first locks the user's row (``FOR NO
KEY UPDATE``, which leaves foreign-key checks alone): two workers judging orders of one
user's accounts at once take turns, so the second sees the first's order and both
cannot pass on the same total. SQLite has one writer at a time anyway.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from sealbot.audit import log as audit
from sealbot.bots.registry import KINDS, bot_module
from sealbot.domain import AlertLevel, ClientOrderId, Deal, Fill, OrderStatus
from sealbot.engine.guard import SpentToday
from sealbot.engine.journal import AccountRecord, AlertRecord, BotRecord, JournalOrder
from sealbot.store import UnitOfWork
from sealbot.store.models import AlertRow, Bot, ExchangeAccount, OrderRow, User
from sealbot.store.repositories.orders import ToJournal, to_order
from sealbot.store.repositories.watchdog import WatchdogFlags
from sealbot.store.types import utcnow

_OPEN = [s.value for s in OrderStatus if not s.is_final]
ACTIVE_ACCOUNTS = ("active", "paused", "flagged")


def _bot_config(row: Bot) -> dict[str, Any]:
    """The stored config with ``bot_id`` set to the row id, so every client order id
    names the bot that the journal knows."""
    config = dict(row.config or {})
    if row.kind in KINDS:
        try:
            fields = bot_module(row.kind).Config.model_fields
        except ImportError:
            fields = {}
        if "bot_id" in fields:
            config["bot_id"] = str(row.id)
    return config


_BOTS: Any = Bot.__table__
_SAVE_BOTS = (sa.update(_BOTS).where(_BOTS.c.id == sa.bindparam("b_id"), _BOTS.c.version == sa.bindparam("b_version"))
              .values(state=sa.bindparam("b_state"), status=sa.bindparam("b_status"),
                      pause_reason=sa.bindparam("b_reason"), updated_at=sa.bindparam("b_at"),
                      version=_BOTS.c.version + 1))

# Statements run on every order sent or fill applied, built once: a new statement object
# costs its construction and its cache key (about 60 us together) on every execution.
_ORDER_BY_CLIENT_ID = sa.select(OrderRow).where(OrderRow.client_order_id == sa.bindparam("cid"))
_ORDER_ID_IN_ACCOUNT = sa.select(OrderRow.id).where(OrderRow.account_id == sa.bindparam("account"),
                                                    OrderRow.client_order_id == sa.bindparam("cid"))


_TX = "sealbot.store_tx"  # session.info key: the StoreTx whose buffers the session's commit writes


@sa.event.listens_for(Session, "before_commit")
def _write_before_commit(session: Session) -> None:
    """Every commit of a session a ``StoreTx`` buffers on writes the buffers first. One
    listener for all sessions (one per transaction would cost more than most of them)."""
    tx = session.info.get(_TX)
    if tx is not None:
        tx.write()


def _chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    """``items`` in slices that keep a statement's parameters bounded."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _bot_record(row: Bot) -> BotRecord:
    return BotRecord(str(row.id), str(row.owner_id), str(row.account_id or ""), row.kind, _bot_config(row),
                     row.state, row.status, row.pause_reason)


class StoreJournal:
    """``Journal`` on the database. ``attempts`` (send retries) are kept per process:
    after a restart an order gets its full retry budget again, which is safe because
    every retry is preceded by a lookup by client id. The time of the latest attempt
    (``attempted_at``) is durable: whoever resolves the order next, this process after a
    restart or another worker, knows when that attempt's receive window closes."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory
        self.attempts: dict[str, int] = {}

    @contextmanager
    def transaction(self) -> Iterator[StoreTx]:
        with UnitOfWork(self.session_factory) as uow:
            yield StoreTx(uow, self.attempts)

    def accounts(self) -> list[AccountRecord]:
        with UnitOfWork(self.session_factory) as uow:
            rows = uow.session.scalars(sa.select(ExchangeAccount).where(ExchangeAccount.status.in_(ACTIVE_ACCOUNTS))
                                       .order_by(ExchangeAccount.id))
            return [AccountRecord(str(r.id), str(r.owner_id), r.exchange, r.label) for r in rows]


class StoreTx:
    def __init__(self, uow: UnitOfWork, attempts: dict[str, int]) -> None:
        self.uow, self.session, self.attempts = uow, uow.session, attempts
        self._locked: set[int] = set()  # users whose row this transaction locked for their totals
        # The account and bot rows this transaction read, held: the session's identity map
        # keeps an unchanged row only while something refers to it, and a candle's step reads
        # each bot's row four times (its status, the order's and the deal's owner checks, its
        # save), which would otherwise be four SELECTs.
        self._rows: dict[tuple[type[Any], int], Any] = {}
        self._orders: dict[str, OrderRow | None] = {}  # read ahead by client id (None: not journalled)
        # journalled in this transaction, INSERT not yet sent (``write_orders``): (owner, account, order)
        self._unsent: dict[str, tuple[int, int, ToJournal]] = {}
        # bots saved in this transaction, UPDATE not yet sent (``write_bots``)
        self._saves: dict[int, BotRecord] = {}
        # whoever commits the unit of work (this journal, or a subclass's fenced one) writes them first
        self.session.info[_TX] = self

    def write(self) -> None:
        """Send what this transaction buffered: the bots' new states, then its orders."""
        self.write_bots()
        self.write_orders()

    def write_bots(self) -> None:
        """One UPDATE for every bot saved since the last one, sent as one batch. Each row is
        matched on the version this transaction read, as the ORM's version check does
        (which sends them one by one: a per-row count is what it checks); here the total
        count must equal the number of bots, so a bot another process saved meanwhile
        fails the transaction the same way (``StaleDataError``)."""
        if not self._saves:
            return
        saves, self._saves = self._saves, {}
        rows = [(self._rows[(Bot, ident)], record) for ident, record in saves.items()]
        now = utcnow()
        params = [{"b_id": row.id, "b_version": row.version, "b_state": record.state, "b_status": record.status,
                   "b_reason": record.status_reason, "b_at": now} for row, record in rows]
        result = cast("CursorResult[Any]", self.session.execute(_SAVE_BOTS, params))  # an UPDATE: has a count
        if result.rowcount != len(params):
            raise StaleDataError(f"{len(params) - result.rowcount} of {len(params)} bots were saved by another "
                                 "transaction meanwhile")
        for row, record in rows:  # the session's copy as stored now, not marked as changed
            for name, value in (("state", record.state), ("status", record.status),
                                ("pause_reason", record.status_reason), ("updated_at", now),
                                ("version", row.version + 1)):
                set_committed_value(row, name, value)

    def _held(self, model: type[Any], ident: int) -> Any:
        key = (model, ident)
        if key not in self._rows:
            self._rows[key] = self.session.get(model, ident)
        return self._rows[key]

    def prefetch(self, bots: Collection[str], orders: Collection[str], deals: Collection[tuple[str, int]]) -> None:
        """Read a candle's rows in three statements instead of one query per bot, order
        and deal: the bots' rows, the orders already journalled under these client ids
        (the others are known not to be), the deals (bot, no) to be saved."""
        ids = [int(b) for b in bots if b.isdigit() and (Bot, int(b)) not in self._rows]
        for chunk in _chunks(ids):
            for row in self.session.scalars(sa.select(Bot).where(Bot.id.in_(chunk))):
                self._rows[(Bot, row.id)] = row
        texts = [t for t in orders if t not in self._orders and t not in self._unsent]
        self.write_orders()
        for chunk in _chunks(texts):
            self._orders.update(dict.fromkeys(chunk))
            for order in self.session.scalars(sa.select(OrderRow).where(OrderRow.client_order_id.in_(chunk))):
                self._orders[order.client_order_id] = order
        self.uow.deals.prefetch((int(bot), no) for bot, no in deals if bot.isdigit())

    def write_orders(self) -> None:
        """Send the INSERT of the orders journalled since the last one: one statement per
        account, before anything reads orders and before the commit. A client id that
        another transaction journalled meanwhile raises here, as ``add_order`` would."""
        if not self._unsent:
            return
        groups: dict[tuple[int, int], list[ToJournal]] = {}
        for owner, account, entry in self._unsent.values():
            groups.setdefault((owner, account), []).append(entry)
        self._unsent = {}
        for (owner, account), entries in groups.items():
            new = self.uow.orders.journal_many(owner, account, entries)
            for entry in entries:
                if entry.order.client_id.text not in new:
                    raise ValueError(f"client order id {entry.order.client_id.text} is already journalled")

    def _row(self, text: str) -> OrderRow | None:
        if text in self._orders:  # read ahead (written here since: popped, read back below)
            return self._orders[text]
        self.write_orders()
        return self.session.scalar(_ORDER_BY_CLIENT_ID, {"cid": text})

    def _entry(self, row: OrderRow) -> JournalOrder:
        return JournalOrder(str(row.account_id), str(row.bot_id or ""), to_order(row), row.created_at,
                            self.attempts.get(row.client_order_id, 0), row.last_error, row.attempted_at,
                            row.guard_notional)

    def get_order(self, client_id: ClientOrderId) -> JournalOrder | None:
        row = self._row(client_id.text)
        return self._entry(row) if row is not None else None

    def add_order(self, entry: JournalOrder) -> None:
        account = self._held(ExchangeAccount, int(entry.account))
        if account is None:
            raise ValueError(f"account {entry.account} does not exist")
        if entry.key in self._unsent or self._orders.get(entry.key) is not None:
            raise ValueError(f"client order id {entry.key} is already journalled")
        self._orders.pop(entry.key, None)  # read back from the table once written
        bot_id = int(entry.bot) if entry.bot.isdigit() else None
        self._unsent[entry.key] = (account.owner_id, account.id, ToJournal(
            entry.order, bot_id, entry.created_at, entry.attempted_at, entry.notional, entry.reason))
        self.attempts[entry.key] = entry.attempts
        if entry.reason and entry.reason.startswith("guard"):
            audit.record(self.session, actor="engine", action="order.refused", subject=f"order:{entry.key}",
                         details={"reason": entry.reason})

    def put_order(self, entry: JournalOrder) -> None:
        row = self._row(entry.key)
        if row is None:
            raise ValueError(f"client order id {entry.key} is not journalled")
        order = entry.order
        row.status, row.filled = order.status.value, order.filled
        if order.average_price is not None:
            row.average_price = order.average_price
        if order.exchange_id:
            row.exchange_order_id = order.exchange_id
        if entry.reason:
            row.last_error = entry.reason[:2000]
        if entry.attempted_at is not None:
            row.attempted_at = entry.attempted_at
        if entry.notional is not None:
            row.guard_notional = entry.notional
        self.attempts[entry.key] = entry.attempts

    def open_orders(self, account: str) -> list[JournalOrder]:
        self.write_orders()
        rows = self.session.scalars(sa.select(OrderRow).where(OrderRow.account_id == int(account),
                                                              OrderRow.status.in_(_OPEN)).order_by(OrderRow.id))
        return [self._entry(r) for r in rows]

    def spent_today(self, user: str, account: str, day: date) -> SpentToday:
        self.write_orders()  # the orders judged before this one count
        owner, account_id = int(user), int(account)
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql" and owner not in self._locked:
            self.session.execute(sa.select(User.id).where(User.id == owner).with_for_update(key_share=True))
            self._locked.add(owner)
        start = datetime.combine(day, time(), tzinfo=UTC)
        where = (OrderRow.owner_id == owner, OrderRow.created_at >= start,
                 OrderRow.created_at < start + timedelta(days=1), OrderRow.guard_notional.is_not(None),
                 OrderRow.status != OrderStatus.REJECTED.value)
        if dialect == "postgresql":  # NUMERIC: the database sums exactly
            on_account = sa.case((OrderRow.account_id == account_id, OrderRow.guard_notional))
            total, mine = self.session.execute(sa.select(sa.func.sum(OrderRow.guard_notional),
                                                         sa.func.sum(on_account)).where(*where)).one()
            return SpentToday(total or Decimal(0), mine or Decimal(0))
        # SQLite keeps the decimals as text and would sum them as floats: sum them here
        rows = self.session.execute(sa.select(OrderRow.account_id, OrderRow.guard_notional).where(*where)).all()
        amounts = [(a, n) for a, n in rows if n is not None]
        return SpentToday(sum((n for _, n in amounts), Decimal(0)),
                          sum((n for a, n in amounts if a == account_id), Decimal(0)))

    def knows_client_id(self, account: str, text: str) -> bool:
        self.write_orders()
        return self.session.scalar(_ORDER_ID_IN_ACCOUNT, {"cid": text, "account": int(account)}) is not None

    def add_fill(self, account: str, fill: Fill) -> bool:
        row = self._row(fill.client_id.text)
        if row is None or row.account_id != int(account):
            return False
        return self.uow.fills.add_to(row, fill)

    def fills_of(self, client_id: ClientOrderId) -> list[Fill]:
        row = self._row(client_id.text)
        return self.uow.fills.for_order(row.owner_id, client_id) if row is not None else []

    def bots(self, account: str) -> builtins.list[BotRecord]:
        self.write_bots()
        rows = self.session.scalars(sa.select(Bot).where(Bot.account_id == int(account)).order_by(Bot.id))
        return [_bot_record(r) for r in rows]

    def get_bot(self, bot: str) -> BotRecord | None:
        if not bot.isdigit():
            return None
        saved = self._saves.get(int(bot))
        if saved is not None:
            return saved
        row = self._held(Bot, int(bot))
        return _bot_record(row) if row is not None else None

    def save_bot(self, record: BotRecord) -> None:
        """Buffered: a candle's bots are written together (``write_bots``)."""
        ident = int(record.id)
        row = self._held(Bot, ident)
        if row is None:
            raise ValueError(f"bot {record.id} does not exist")
        before = self._saves.get(ident)
        if (before.status if before is not None else row.status) != record.status:
            audit.record(self.session, actor="engine", action=f"bot.{record.status}", subject=f"bot:{record.id}",
                         details={"reason": record.status_reason or ""})
        self._saves[ident] = record

    def save_deal(self, account: str, deal: Deal) -> None:
        row = self._held(Bot, int(deal.bot))
        if row is not None:
            self.uow.deals.save(row.owner_id, row.id, deal)

    def add_alert(self, alert: AlertRecord) -> AlertRecord:
        owner = int(alert.user)
        row = self.uow.alerts.add(owner, alert.level.value, alert.code, alert.message,
                                  account_id=int(alert.account) if alert.account else None,
                                  bot_id=int(alert.bot) if alert.bot and alert.bot.isdigit() else None,
                                  at=alert.at)
        return AlertRecord(alert.user, AlertLevel(row.level), row.code, row.message, row.created_at, alert.account,
                           alert.bot, row.id)

    def mark_delivered(self, alert_id: int, channel: str) -> None:
        row = self.session.get(AlertRow, alert_id)
        if row is not None:
            self.uow.alerts.record_delivery(row.owner_id, alert_id, channel, {"ok": True})

    def permission_report(self, account: str) -> dict[str, Any] | None:
        row = self.session.get(ExchangeAccount, int(account))
        return None if row is None or row.permission_report is None else dict(row.permission_report)

    def save_permission_report(self, account: str, report: dict[str, Any], at: datetime) -> None:
        row = self.session.get(ExchangeAccount, int(account))
        if row is not None:
            self.uow.accounts.record_permissions(row.owner_id, row.id, report, at=at)

    def flagged(self, account: str, refs: Collection[str]) -> set[str]:
        return WatchdogFlags(self.session).flagged(int(account), refs)

    def add_flags(self, account: str, refs: Collection[str], alert: AlertRecord) -> None:
        WatchdogFlags(self.session).add(int(alert.user), int(account), refs, alert.id, alert.at)
