"""Webhook signals per bot. ``add_if_new`` makes a replayed or duplicated signal a no-op."""

from __future__ import annotations

import builtins
from datetime import datetime

import sqlalchemy as sa

from sealbot.domain import NotFound
from sealbot.store.models import Bot, SignalRow
from sealbot.store.repositories._base import Repository
from sealbot.store.types import utcnow


class SignalRepository(Repository):
    def add_if_new(self, owner_id: int, bot_id: int, signal_id: str, *, status: str = "accepted",
                   reason: str | None = None, at: datetime | None = None) -> bool:
        """True if this (bot, signal id) was not seen before (and is now recorded)."""
        self._owned(Bot, owner_id, bot_id, "bot")
        new_id = self._insert_if_new(SignalRow, {"bot_id": bot_id, "signal_id": signal_id,
                                                 "received_at": at or utcnow(), "status": status, "reason": reason},
                                     ["bot_id", "signal_id"])
        return new_id is not None

    def get(self, owner_id: int, bot_id: int, signal_id: str) -> SignalRow:
        self._owned(Bot, owner_id, bot_id, "bot")
        row = self.session.scalar(sa.select(SignalRow).where(SignalRow.bot_id == bot_id,
                                                             SignalRow.signal_id == signal_id))
        if row is None:
            raise NotFound("signal", signal_id)
        return row

    def set_status(self, owner_id: int, bot_id: int, signal_id: str, status: str, reason: str | None = None) -> None:
        row = self.get(owner_id, bot_id, signal_id)
        row.status, row.reason = status, reason

    def list(self, owner_id: int, bot_id: int, limit: int = 100) -> builtins.list[SignalRow]:
        self._owned(Bot, owner_id, bot_id, "bot")
        return list(self.session.scalars(sa.select(SignalRow).where(SignalRow.bot_id == bot_id)
                                         .order_by(SignalRow.id.desc()).limit(limit)))
