"""Exchange accounts, always scoped to their owner."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from sealbot.store.models import ExchangeAccount
from sealbot.store.repositories._base import Repository
from sealbot.store.types import utcnow

STATUSES = ("active", "paused", "flagged", "revoked")


class AccountRepository(Repository):
    def add(self, owner_id: int, exchange: str, label: str, *, is_paper: bool = False,
            allowed_pairs: Iterable[str] | None = None, partition: int = 0) -> ExchangeAccount:
        account = ExchangeAccount(owner_id=owner_id, exchange=exchange, label=label, is_paper=is_paper,
                                  allowed_pairs=list(allowed_pairs) if allowed_pairs is not None else None,
                                  partition=partition, status="active")
        self.session.add(account)
        self.session.flush()
        return account

    def get(self, owner_id: int, account_id: int) -> ExchangeAccount:
        return self._owned(ExchangeAccount, owner_id, account_id, "account")

    def list(self, owner_id: int, *, include_revoked: bool = True) -> builtins.list[ExchangeAccount]:
        stmt = sa.select(ExchangeAccount).where(ExchangeAccount.owner_id == owner_id)
        if not include_revoked:
            stmt = stmt.where(ExchangeAccount.status != "revoked")
        return list(self.session.scalars(stmt.order_by(ExchangeAccount.id)))

    def set_status(self, owner_id: int, account_id: int, status: str, *, at: datetime | None = None) -> ExchangeAccount:
        if status not in STATUSES:
            raise ValueError(f"account status must be one of {', '.join(STATUSES)}")
        account = self.get(owner_id, account_id)
        account.status = status
        if status == "revoked":
            account.revoked_at = at or utcnow()
        return account

    def set_allowed_pairs(self, owner_id: int, account_id: int, pairs: Iterable[str] | None) -> None:
        self.get(owner_id, account_id).allowed_pairs = list(pairs) if pairs is not None else None

    def set_label(self, owner_id: int, account_id: int, label: str) -> None:
        self.get(owner_id, account_id).label = label

    def record_permissions(self, owner_id: int, account_id: int, report: Mapping[str, Any],
                           *, at: datetime | None = None) -> None:
        account = self.get(owner_id, account_id)
        account.permission_report = dict(report)
        account.permission_checked_at = at or utcnow()

    # -- system-wide reads (engine, watchdog, panic); never exposed to a user request --
    def all_with_status(self, *statuses: str, partition: int | None = None) -> builtins.list[ExchangeAccount]:
        """Accounts of every owner in the given statuses (all when none given)."""
        stmt = sa.select(ExchangeAccount)
        if statuses:
            stmt = stmt.where(ExchangeAccount.status.in_(statuses))
        if partition is not None:
            stmt = stmt.where(ExchangeAccount.partition == partition)
        return list(self.session.scalars(stmt.order_by(ExchangeAccount.id)))
