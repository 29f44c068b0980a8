"""Fills, inserted idempotently: the same (order, trade id) reported twice — by the
websocket and again by reconcile — is stored once."""

from __future__ import annotations

import sqlalchemy as sa

from sealbot.domain import ClientOrderId, Fill, NotFound, Pair, Side
from sealbot.store.models import FillRow, OrderRow
from sealbot.store.repositories._base import Repository


def to_fill(row: FillRow, order: OrderRow) -> Fill:
    return Fill(client_id=ClientOrderId.parse(order.client_order_id), pair=Pair.parse(order.pair),
                side=Side(order.side), price=row.price, amount=row.amount, fee=row.fee,
                fee_currency=row.fee_currency, at=row.at, trade_id=row.trade_id, is_maker=row.is_maker)


# built once: a new statement object costs its construction and cache key on every use
_ORDER_OF_OWNER = sa.select(OrderRow).where(OrderRow.client_order_id == sa.bindparam("cid"),
                                            OrderRow.owner_id == sa.bindparam("owner"))


class FillRepository(Repository):
    def add(self, owner_id: int, fill: Fill) -> bool:
        """Store a fill of the owner's order (found by the fill's client id). True if new."""
        return self.add_to(self._order(owner_id, fill.client_id.text), fill)

    def add_to(self, order: OrderRow, fill: Fill) -> bool:
        """Store a fill of ``order``, a row the caller already holds. True if new."""
        owner_id = order.owner_id
        new_id = self._insert_if_new(FillRow, {
            "order_id": order.id, "owner_id": owner_id, "trade_id": fill.trade_id, "price": fill.price,
            "amount": fill.amount, "fee": fill.fee, "fee_currency": fill.fee_currency, "at": fill.at,
            "is_maker": fill.is_maker,
        }, ["order_id", "trade_id"])
        return new_id is not None

    def for_order(self, owner_id: int, client_order_id: str | ClientOrderId) -> list[Fill]:
        order = self._order(owner_id, str(client_order_id))
        rows = self.session.scalars(sa.select(FillRow).where(FillRow.order_id == order.id)
                                    .order_by(FillRow.at, FillRow.id))
        return [to_fill(row, order) for row in rows]

    def _order(self, owner_id: int, client_order_id: str) -> OrderRow:
        order = self.session.scalar(_ORDER_OF_OWNER, {"cid": client_order_id, "owner": owner_id})
        if order is None:
            raise NotFound("order", client_order_id)
        return order
