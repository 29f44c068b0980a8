"""Alerts shown to (and delivered to) their owner."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from sealbot.store.models import AlertRow, Bot, ExchangeAccount
from sealbot.store.repositories._base import Repository
from sealbot.store.types import utcnow


class AlertRepository(Repository):
    def add(self, owner_id: int, level: str, code: str, message: str, *, account_id: int | None = None,
            bot_id: int | None = None, at: datetime | None = None) -> AlertRow:
        if account_id is not None:
            self._owned(ExchangeAccount, owner_id, account_id, "account")
        if bot_id is not None:
            self._owned(Bot, owner_id, bot_id, "bot")
        row = AlertRow(owner_id=owner_id, account_id=account_id, bot_id=bot_id, level=level, code=code,
                       message=message, created_at=at or utcnow(), deliveries={})
        self.session.add(row)
        self.session.flush()
        return row

    def get(self, owner_id: int, alert_id: int) -> AlertRow:
        return self._owned(AlertRow, owner_id, alert_id, "alert")

    def list(self, owner_id: int, *, unacknowledged: bool = False, limit: int = 100) -> builtins.list[AlertRow]:
        stmt = sa.select(AlertRow).where(AlertRow.owner_id == owner_id)
        if unacknowledged:
            stmt = stmt.where(AlertRow.acknowledged_at.is_(None))
        return list(self.session.scalars(stmt.order_by(AlertRow.id.desc()).limit(limit)))

    def acknowledge(self, owner_id: int, alert_id: int, at: datetime | None = None) -> AlertRow:
        row = self.get(owner_id, alert_id)
        if row.acknowledged_at is None:
            row.acknowledged_at = at or utcnow()
        return row

    def record_delivery(self, owner_id: int, alert_id: int, channel: str, result: Mapping[str, Any]) -> AlertRow:
        """Remember how delivery on ``channel`` (email, telegram, webhook) went."""
        row = self.get(owner_id, alert_id)
        row.deliveries = {**(row.deliveries or {}), channel: dict(result)}  # new dict: JSON change is seen
        return row
