"""The order journal: every order is written *before* it is sent, keyed by its
idempotent client order id, so after a crash the engine knows what it may have sent
and reconciles it with the exchange instead of sending it again."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from sealbot.domain import ClientOrderId, NotFound, Order, OrderStatus, OrderType, Pair, Side, TimeInForce
from sealbot.store.errors import Conflict
from sealbot.store.models import Bot, ExchangeAccount, OrderRow
from sealbot.store.repositories._base import Repository
from sealbot.store.types import utcnow

_OPEN = [s.value for s in OrderStatus if not s.is_final]


def to_order(row: OrderRow) -> Order:
    return Order(client_id=ClientOrderId.parse(row.client_order_id), pair=Pair.parse(row.pair), side=Side(row.side),
                 type=OrderType(row.type), amount=row.amount, price=row.price, stop_price=row.stop_price,
                 time_in_force=TimeInForce(row.time_in_force), status=OrderStatus(row.status), filled=row.filled,
                 average_price=row.average_price, exchange_id=row.exchange_order_id)


@dataclass(frozen=True)
class ToJournal:
    """One order to journal, with what the engine records beside it: when it was
    journalled, the time its first attempt is signed with, what it counts against the
    guard's daily limits, and a refusal's reason."""

    order: Order
    bot_id: int | None = None
    created_at: datetime | None = None
    attempted_at: datetime | None = None
    guard_notional: Decimal | None = None
    last_error: str | None = None


class OrderRepository(Repository):
    def journal(self, owner_id: int, account_id: int, order: Order, *, bot_id: int | None = None) -> bool:
        """Record the order before sending it. True if new, False if this client id was
        already journalled for this owner (re-sending is then the reconciler's call).
        ``Conflict`` if the id belongs to another owner's order."""
        if self.journal_many(owner_id, account_id, [ToJournal(order, bot_id)]):
            return True
        self._row(owner_id, order.client_id.text, conflict=True)
        return False

    def journal_many(self, owner_id: int, account_id: int, entries: Sequence[ToJournal]) -> set[str]:
        """Record orders of one account before they are sent, in one statement: the
        client ids that were new (the others were already journalled, by anyone)."""
        self._owned(ExchangeAccount, owner_id, account_id, "account")
        for bot_id in {e.bot_id for e in entries if e.bot_id is not None}:
            self._owned(Bot, owner_id, bot_id, "bot")
        now = utcnow()
        rows = [{
            "owner_id": owner_id, "account_id": account_id, "bot_id": e.bot_id,
            "deal_no": e.order.client_id.deal if e.bot_id is not None else None,
            "client_order_id": e.order.client_id.text, "exchange_order_id": e.order.exchange_id,
            "pair": e.order.pair.symbol, "side": e.order.side.value, "type": e.order.type.value,
            "amount": e.order.amount, "price": e.order.price, "stop_price": e.order.stop_price,
            "time_in_force": e.order.time_in_force.value, "status": e.order.status.value, "filled": e.order.filled,
            "average_price": e.order.average_price, "created_at": e.created_at or now, "updated_at": now,
            "attempted_at": e.attempted_at, "guard_notional": e.guard_notional,
            "last_error": e.last_error[:2000] if e.last_error else None,
        } for e in entries]
        return set(self._insert_new(OrderRow, rows, ["client_order_id"], "client_order_id"))

    def get(self, owner_id: int, client_order_id: str | ClientOrderId) -> Order:
        return to_order(self._row(owner_id, str(client_order_id)))

    def find(self, owner_id: int, client_order_id: str | ClientOrderId) -> Order | None:
        try:
            return self.get(owner_id, client_order_id)
        except NotFound:
            return None

    def row(self, owner_id: int, client_order_id: str | ClientOrderId) -> OrderRow:
        """The stored row (account, bot, timestamps, last error) behind an order."""
        return self._row(owner_id, str(client_order_id))

    def update_status(self, owner_id: int, client_order_id: str | ClientOrderId, status: OrderStatus, *,
                      filled: Decimal | None = None, average_price: Decimal | None = None,
                      exchange_order_id: str | None = None, last_error: str | None = None,
                      at: datetime | None = None) -> Order:
        row = self._row(owner_id, str(client_order_id))
        row.status = status.value
        if filled is not None:
            row.filled = filled
        if average_price is not None:
            row.average_price = average_price
        if exchange_order_id is not None:
            row.exchange_order_id = exchange_order_id
        if last_error is not None:
            row.last_error = last_error
        row.updated_at = at or utcnow()
        self.session.flush()
        return to_order(row)

    def open_orders(self, owner_id: int, *, account_id: int | None = None,
                    bot_id: int | None = None) -> builtins.list[Order]:
        """Orders not yet final (pending, open, partially filled): what reconcile checks."""
        return [to_order(r) for r in self._rows(owner_id, account_id=account_id, bot_id=bot_id, statuses=_OPEN)]

    def list(self, owner_id: int, *, account_id: int | None = None, bot_id: int | None = None,
             deal_no: int | None = None, statuses: Iterable[OrderStatus] | None = None,
             limit: int | None = None) -> builtins.list[Order]:
        return [to_order(r) for r in self._rows(owner_id, account_id=account_id, bot_id=bot_id, deal_no=deal_no,
                                                statuses=[s.value for s in statuses] if statuses else None,
                                                limit=limit)]

    def _rows(self, owner_id: int, *, account_id: int | None = None, bot_id: int | None = None,
              deal_no: int | None = None, statuses: builtins.list[str] | None = None,
              limit: int | None = None) -> builtins.list[OrderRow]:
        stmt = sa.select(OrderRow).where(OrderRow.owner_id == owner_id)
        if account_id is not None:
            stmt = stmt.where(OrderRow.account_id == account_id)
        if bot_id is not None:
            stmt = stmt.where(OrderRow.bot_id == bot_id)
        if deal_no is not None:
            stmt = stmt.where(OrderRow.deal_no == deal_no)
        if statuses is not None:
            stmt = stmt.where(OrderRow.status.in_(statuses))
        stmt = stmt.order_by(OrderRow.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return list(self.session.scalars(stmt))

    def _row(self, owner_id: int, client_order_id: str, *, conflict: bool = False) -> OrderRow:
        row = self.session.scalar(sa.select(OrderRow).where(OrderRow.client_order_id == client_order_id))
        if row is None or row.owner_id != owner_id:
            if conflict and row is not None:
                raise Conflict("order", f"client order id {client_order_id} is already used")
            raise NotFound("order", client_order_id)
        return row
