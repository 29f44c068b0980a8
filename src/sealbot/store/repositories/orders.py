"""The order journal: every order is written *before* it is sent, keyed by its
idempotent client order id, so after a crash the engine knows what it may have sent
and reconciles it with the exchange instead of sending it again."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
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


class OrderRepository(Repository):
    def journal(self, owner_id: int, account_id: int, order: Order, *, bot_id: int | None = None) -> bool:
        """Record the order before sending it. True if new, False if this client id was
        already journalled for this owner (re-sending is then the reconciler's call).
        ``Conflict`` if the id belongs to another owner's order."""
        self._owned(ExchangeAccount, owner_id, account_id, "account")
        if bot_id is not None:
            self._owned(Bot, owner_id, bot_id, "bot")
        now = utcnow()
        new_id = self._insert_if_new(OrderRow, {
            "owner_id": owner_id, "account_id": account_id, "bot_id": bot_id,
            "deal_no": order.client_id.deal if bot_id is not None else None,
            "client_order_id": order.client_id.text, "exchange_order_id": order.exchange_id,
            "pair": order.pair.symbol, "side": order.side.value, "type": order.type.value,
            "amount": order.amount, "price": order.price, "stop_price": order.stop_price,
            "time_in_force": order.time_in_force.value, "status": order.status.value, "filled": order.filled,
            "average_price": order.average_price, "created_at": now, "updated_at": now,
        }, ["client_order_id"])
        if new_id is not None:
            return True
        self._row(owner_id, order.client_id.text, conflict=True)
        return False

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
