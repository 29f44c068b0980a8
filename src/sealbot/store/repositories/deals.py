"""Deals, stored per (bot, no) and mapped to ``sealbot.domain.Deal``.

The domain's ``Deal.bot`` is the bot id as text (what ``ClientOrderId.bot`` carries).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable

import sqlalchemy as sa

from sealbot.domain import CloseReason, Deal, DealStatus, Direction, NotFound, Pair
from sealbot.store.models import Bot, DealRow
from sealbot.store.repositories._base import Repository


def to_deal(row: DealRow) -> Deal:
    return Deal(bot=str(row.bot_id), no=row.no, pair=Pair.parse(row.pair), direction=Direction(row.direction),
                opened_at=row.opened_at, status=DealStatus(row.status), closed_at=row.closed_at,
                close_reason=CloseReason(row.close_reason) if row.close_reason else None,
                bought=row.bought, spent=row.spent, sold=row.sold, received=row.received,
                fees_quote=row.fees_quote)


# session.info key: (bot id, deal no) -> the row, or None where none is stored. Read ahead
# for a candle's deals (``prefetch``) and kept for the unit of work's session, so saving a
# deal queries nothing and the rows are written together at the next flush.
_ROWS = "sealbot.deal_rows"


class DealRepository(Repository):
    def _rows(self) -> dict[tuple[int, int], DealRow | None]:
        rows: dict[tuple[int, int], DealRow | None] = self.session.info.setdefault(_ROWS, {})
        return rows

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
        """Insert the deal or update the stored one with the same (bot, no). Written at
        the session's next flush (its next query, or the commit)."""
        self._owned(Bot, owner_id, bot_id, "bot")
        rows, key = self._rows(), (bot_id, deal.no)
        row = rows[key] if key in rows else self.session.scalar(
            sa.select(DealRow).where(DealRow.bot_id == bot_id, DealRow.no == deal.no))
        if row is None:
            row = DealRow(bot_id=bot_id, owner_id=owner_id, no=deal.no)
            self.session.add(row)
        rows[key] = row
        row.pair, row.direction, row.status = deal.pair.symbol, deal.direction.value, deal.status.value
        row.opened_at, row.closed_at = deal.opened_at, deal.closed_at
        row.close_reason = deal.close_reason.value if deal.close_reason else None
        row.bought, row.spent, row.sold, row.received = deal.bought, deal.spent, deal.sold, deal.received
        row.fees_quote = deal.fees_quote
        return to_deal(row)

    def get(self, owner_id: int, bot_id: int, no: int) -> Deal:
        row = self.session.scalar(sa.select(DealRow).where(
            DealRow.owner_id == owner_id, DealRow.bot_id == bot_id, DealRow.no == no))
        if row is None:
            raise NotFound("deal", f"{bot_id}-{no}")
        return to_deal(row)

    def list(self, owner_id: int, bot_id: int | None = None, *, status: DealStatus | None = None,
             limit: int | None = None) -> builtins.list[Deal]:
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
        top = self.session.scalar(sa.select(sa.func.max(DealRow.no)).where(DealRow.bot_id == bot_id))
        return int(top or 0) + 1
