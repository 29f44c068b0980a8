"""Deals, stored per (bot, no) and mapped to ``sealbot.domain.Deal``.

The domain's ``Deal.bot`` is the bot id as text (what ``ClientOrderId.bot`` carries).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sealbot.domain import CloseReason, Deal, DealStatus, Direction, NotFound, Pair
from sealbot.store.models import Bot, DealRow
from sealbot.store.repositories._base import Repository


def to_deal(row: DealRow) -> Deal:
    return Deal(bot=str(row.bot_id), no=row.no, pair=Pair.parse(row.pair), direction=Direction(row.direction),
                opened_at=row.opened_at, status=DealStatus(row.status), closed_at=row.closed_at,
                close_reason=CloseReason(row.close_reason) if row.close_reason else None,
                bought=row.bought, spent=row.spent, sold=row.sold, received=row.received,
                fees_quote=row.fees_quote)


# session.info keys. _ROWS: (bot id, deal no) -> the row, or None where none is stored;
# read ahead for a candle's deals (``prefetch``) and kept for the unit of work's session,
# so saving a deal queries nothing and updates are written together at the next flush.
# _NEW: the deals read ahead as absent and saved since: inserted as one batch before the
# session reads deals or commits (the ORM inserts one row per statement on SQLite, where
# it cannot match the keys a multi-row insert returns to its objects).
_ROWS = "sealbot.deal_rows"
_NEW = "sealbot.deal_inserts"
_DEALS: Any = DealRow.__table__
# built once: a new statement object costs its construction and cache key on every use
_DEAL_OF_BOT = sa.select(DealRow).where(DealRow.bot_id == sa.bindparam("bot"), DealRow.no == sa.bindparam("no"))


@sa.event.listens_for(Session, "before_commit")
def _insert_new_deals(session: Session) -> None:
    if session.info.get(_NEW):
        DealRepository(session).write_new()


def _columns(deal: Deal) -> dict[str, Any]:
    """What a deal row stores of ``deal`` beside its keys."""
    return {"pair": deal.pair.symbol, "direction": deal.direction.value, "status": deal.status.value,
            "opened_at": deal.opened_at, "closed_at": deal.closed_at,
            "close_reason": deal.close_reason.value if deal.close_reason else None,
            "bought": deal.bought, "spent": deal.spent, "sold": deal.sold, "received": deal.received,
            "fees_quote": deal.fees_quote}


class DealRepository(Repository):
    def _rows(self) -> dict[tuple[int, int], DealRow | None]:
        rows: dict[tuple[int, int], DealRow | None] = self.session.info.setdefault(_ROWS, {})
        return rows

    def _new(self) -> dict[tuple[int, int], dict[str, Any]]:
        new: dict[tuple[int, int], dict[str, Any]] = self.session.info.setdefault(_NEW, {})
        return new

    def write_new(self) -> None:
        """Insert the deals saved as new since the last call, in one statement."""
        new = self._new()
        if not new:
            return
        values = builtins.list(new.values())
        rows = self._rows()
        for key in new:
            rows.pop(key, None)  # stored now: a later save reads the row back
        new.clear()
        self.session.execute(sa.insert(_DEALS), values)

    def prefetch(self, keys: Iterable[tuple[int, int]]) -> None:
        """Read the deals (bot id, no) that this unit of work will save, in one statement."""
        rows = self._rows()
        wanted = sorted({k for k in keys if k not in rows})
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            rows.update(dict.fromkeys(chunk))
            for row in self.session.scalars(sa.select(DealRow).where(sa.tuple_(DealRow.bot_id, DealRow.no).in_(chunk))):
                rows[(row.bot_id, row.no)] = row

    def save(self, owner_id: int, bot_id: int, deal: Deal) -> Deal:
        """Insert the deal or update the stored one with the same (bot, no). An update is
        written at the session's next flush; a deal read ahead as absent is inserted with
        the others (``write_new``), before the session reads deals or commits."""
        self._owned(Bot, owner_id, bot_id, "bot")
        rows, new, key = self._rows(), self._new(), (bot_id, deal.no)
        if key in new or (key in rows and rows[key] is None):  # read ahead as absent: one of a batch
            new[key] = {"bot_id": bot_id, "owner_id": owner_id, "no": deal.no, **_columns(deal)}
            return deal
        row = rows[key] if key in rows else self.session.scalar(_DEAL_OF_BOT, {"bot": bot_id, "no": deal.no})
        if row is None:
            row = DealRow(bot_id=bot_id, owner_id=owner_id, no=deal.no)
            self.session.add(row)
        rows[key] = row
        for name, value in _columns(deal).items():
            setattr(row, name, value)
        return to_deal(row)

    def get(self, owner_id: int, bot_id: int, no: int) -> Deal:
        self.write_new()
        row = self.session.scalar(sa.select(DealRow).where(
            DealRow.owner_id == owner_id, DealRow.bot_id == bot_id, DealRow.no == no))
        if row is None:
            raise NotFound("deal", f"{bot_id}-{no}")
        return to_deal(row)

    def list(self, owner_id: int, bot_id: int | None = None, *, status: DealStatus | None = None,
             limit: int | None = None) -> builtins.list[Deal]:
        self.write_new()
        stmt = sa.select(DealRow).where(DealRow.owner_id == owner_id)
        if bot_id is not None:
            stmt = stmt.where(DealRow.bot_id == bot_id)
        if status is not None:
            stmt = stmt.where(DealRow.status == status.value)
        stmt = stmt.order_by(DealRow.bot_id, DealRow.no.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        return [to_deal(row) for row in self.session.scalars(stmt)]

    def next_no(self, owner_id: int, bot_id: int) -> int:
        self._owned(Bot, owner_id, bot_id, "bot")
        self.write_new()
        top = self.session.scalar(sa.select(sa.func.max(DealRow.no)).where(DealRow.bot_id == bot_id))
        return int(top or 0) + 1
