"""Balance snapshots and the user's valuation currency, scoped to their owner.

A snapshot is one header row (account, time, currency, total, what could not be
valued) plus one line per asset. The engine writes them (``add_snapshot``, with the
owner taken from the account row); users only read their own.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from sealbot.store.models import BalanceSnapshot, ExchangeAccount, PortfolioSnapshot, UserSettings
from sealbot.store.repositories._base import Repository

DEFAULT_CURRENCY = "USDT"


@dataclass(frozen=True, slots=True)
class SnapshotLine:
    """What the engine hands over for one asset; ``price``/``value`` None = not valued."""

    asset: str
    free: Decimal
    used: Decimal
    total: Decimal
    price: Decimal | None
    value: Decimal | None
    route: str | None


class PortfolioRepository(Repository):
    # -- settings --
    def currency(self, owner_id: int) -> str:
        row = self.session.get(UserSettings, owner_id)
        return row.valuation_currency if row is not None else DEFAULT_CURRENCY

    def set_currency(self, owner_id: int, currency: str) -> str:
        row = self.session.get(UserSettings, owner_id)
        if row is None:
            row = UserSettings(user_id=owner_id, valuation_currency=currency)
            self.session.add(row)
        else:
            row.valuation_currency = currency
        self.session.flush()
        return row.valuation_currency

    # -- writes (engine) --
    def add_snapshot(self, owner_id: int, account_id: int, taken_at: datetime, currency: str, total_value: Decimal,
                     unvalued: Iterable[str], lines: Iterable[SnapshotLine]) -> PortfolioSnapshot:
        self._owned(ExchangeAccount, owner_id, account_id, "account")
        header = PortfolioSnapshot(owner_id=owner_id, account_id=account_id, taken_at=taken_at, currency=currency,
                                   total_value=total_value, unvalued=sorted(unvalued))
        self.session.add(header)
        self.session.flush()
        self.session.add_all([BalanceSnapshot(snapshot_id=header.id, owner_id=owner_id, account_id=account_id,
                                              asset=x.asset, free=x.free, used=x.used, total=x.total, price=x.price,
                                              value=x.value, route=x.route) for x in lines])
        self.session.flush()
        return header

    # -- reads (owner-scoped) --
    def latest(self, owner_id: int, account_ids: Iterable[int] | None = None) -> builtins.list[PortfolioSnapshot]:
        """The newest snapshot of each of the owner's accounts (that has one)."""
        newest = (sa.select(PortfolioSnapshot.account_id, sa.func.max(PortfolioSnapshot.id).label("id"))
                  .where(PortfolioSnapshot.owner_id == owner_id).group_by(PortfolioSnapshot.account_id))
        if account_ids is not None:
            newest = newest.where(PortfolioSnapshot.account_id.in_(list(account_ids)))
        sub = newest.subquery()
        stmt = (sa.select(PortfolioSnapshot).join(sub, PortfolioSnapshot.id == sub.c.id)
                .order_by(PortfolioSnapshot.account_id))
        return list(self.session.scalars(stmt))

    def lines(self, owner_id: int, snapshot_id: int) -> builtins.list[BalanceSnapshot]:
        stmt = (sa.select(BalanceSnapshot)
                .where(BalanceSnapshot.owner_id == owner_id, BalanceSnapshot.snapshot_id == snapshot_id)
                .order_by(BalanceSnapshot.asset))
        return list(self.session.scalars(stmt))

    def history(self, owner_id: int, *, currency: str, account_id: int | None = None,
                since: datetime | None = None, until: datetime | None = None,
                limit: int = 10_000) -> builtins.list[PortfolioSnapshot]:
        """Snapshot headers in ``currency``, oldest first (at most ``limit``, the newest kept)."""
        stmt = sa.select(PortfolioSnapshot).where(PortfolioSnapshot.owner_id == owner_id,
                                                  PortfolioSnapshot.currency == currency)
        if account_id is not None:
            stmt = stmt.where(PortfolioSnapshot.account_id == account_id)
        if since is not None:
            stmt = stmt.where(PortfolioSnapshot.taken_at >= since)
        if until is not None:
            stmt = stmt.where(PortfolioSnapshot.taken_at <= until)
        rows = list(self.session.scalars(stmt.order_by(PortfolioSnapshot.taken_at.desc(), PortfolioSnapshot.id.desc())
                                         .limit(limit)))
        rows.reverse()
        return rows

    def newest_before(self, owner_id: int, *, currency: str, before: datetime) -> builtins.list[PortfolioSnapshot]:
        """Each account's newest snapshot in ``currency`` taken before ``before``: the values
        a history starting at ``before`` carries in for accounts not refreshed since."""
        ranked = (sa.select(PortfolioSnapshot.id, sa.func.row_number().over(
                      partition_by=PortfolioSnapshot.account_id,
                      order_by=(PortfolioSnapshot.taken_at.desc(), PortfolioSnapshot.id.desc())).label("n"))
                  .where(PortfolioSnapshot.owner_id == owner_id, PortfolioSnapshot.currency == currency,
                         PortfolioSnapshot.taken_at < before)
                  .subquery())
        stmt = (sa.select(PortfolioSnapshot).join(ranked, PortfolioSnapshot.id == ranked.c.id)
                .where(ranked.c.n == 1).order_by(PortfolioSnapshot.account_id))
        return list(self.session.scalars(stmt))

    # -- upkeep (engine) --
    def thin(self, before: datetime, *, batch: int = 500) -> int:
        """Keep one snapshot (the day's last) per account per UTC day for everything
        taken before ``before``; delete the rest with their lines. How many were deleted.
        Daily points are enough for long history charts; recent history stays complete."""
        rows = self.session.execute(sa.select(PortfolioSnapshot.id, PortfolioSnapshot.account_id,
                                              PortfolioSnapshot.taken_at)
                                    .where(PortfolioSnapshot.taken_at < before)
                                    .order_by(PortfolioSnapshot.taken_at, PortfolioSnapshot.id)).all()
        last: dict[tuple[int, object], int] = {}
        for ident, account_id, taken_at in rows:
            last[(account_id, taken_at.date())] = ident
        keep = set(last.values())
        doomed = [ident for ident, _a, _t in rows if ident not in keep]
        for i in range(0, len(doomed), batch):
            chunk = doomed[i:i + batch]
            self.session.execute(sa.delete(BalanceSnapshot).where(BalanceSnapshot.snapshot_id.in_(chunk)))
            self.session.execute(sa.delete(PortfolioSnapshot).where(PortfolioSnapshot.id.in_(chunk)))
        return len(doomed)
