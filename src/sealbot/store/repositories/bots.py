"""Bots, scoped to their owner, with optimistic locking on ``version``.

A bot row is saved with ``UPDATE ... WHERE id = ? AND version = ?``; if someone else
saved it since it was read, nothing matches and ``Conflict`` is raised instead of
silently overwriting their state.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm.exc import StaleDataError

from sealbot.store.errors import Conflict
from sealbot.store.models import Bot, ExchangeAccount
from sealbot.store.repositories._base import Repository

KINDS = ("dca", "grid", "smart", "signal")
STATUSES = ("stopped", "running", "paused", "error")


class BotRepository(Repository):
    def add(self, owner_id: int, kind: str, name: str, config: Mapping[str, Any], *,
            account_id: int | None = None, webhook_secret_hash: str | None = None) -> Bot:
        if kind not in KINDS:
            raise ValueError(f"bot kind must be one of {', '.join(KINDS)}")
        if account_id is not None:
            self._owned(ExchangeAccount, owner_id, account_id, "account")
        bot = Bot(owner_id=owner_id, account_id=account_id, kind=kind, name=name, config=dict(config),
                  status="stopped", webhook_secret_hash=webhook_secret_hash)
        self.session.add(bot)
        self.session.flush()
        return bot

    def get(self, owner_id: int, bot_id: int) -> Bot:
        return self._owned(Bot, owner_id, bot_id, "bot")

    def list(self, owner_id: int, *, account_id: int | None = None, status: str | None = None) -> builtins.list[Bot]:
        stmt = sa.select(Bot).where(Bot.owner_id == owner_id)
        if account_id is not None:
            stmt = stmt.where(Bot.account_id == account_id)
        if status is not None:
            stmt = stmt.where(Bot.status == status)
        return list(self.session.scalars(stmt.order_by(Bot.id)))

    def update(self, owner_id: int, bot_id: int, *, expected_version: int | None = None, **fields: Any) -> Bot:
        """Change fields (name, config, state, status, pause_reason, account_id,
        webhook_secret_hash). With ``expected_version``, a bot changed since the caller
        read it raises ``Conflict``."""
        allowed = {"name", "config", "state", "status", "pause_reason", "account_id", "webhook_secret_hash"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"bot fields not updatable: {', '.join(sorted(unknown))}")
        if fields.get("status") is not None and fields["status"] not in STATUSES:
            raise ValueError(f"bot status must be one of {', '.join(STATUSES)}")
        if fields.get("account_id") is not None:
            self._owned(ExchangeAccount, owner_id, fields["account_id"], "account")
        bot = self.get(owner_id, bot_id)
        if expected_version is not None and bot.version != expected_version:
            raise Conflict("bot", f"bot {bot_id} is at version {bot.version}, not {expected_version}")
        for name, value in fields.items():
            setattr(bot, name, value)
        try:
            self.session.flush()
        except StaleDataError as exc:
            raise Conflict("bot", f"bot {bot_id} was changed concurrently") from exc
        return bot

    def set_status(self, owner_id: int, bot_id: int, status: str, *, pause_reason: str | None = None) -> Bot:
        return self.update(owner_id, bot_id, status=status, pause_reason=pause_reason)

    def save_state(self, owner_id: int, bot_id: int, state: Mapping[str, Any], *, expected_version: int) -> Bot:
        return self.update(owner_id, bot_id, expected_version=expected_version, state=dict(state))

    def delete(self, owner_id: int, bot_id: int) -> None:
        self.session.delete(self.get(owner_id, bot_id))
        self.session.flush()

    # -- system-wide (engine start-up, panic) --
    def all_with_status(self, *statuses: str, account_id: int | None = None) -> builtins.list[Bot]:
        stmt = sa.select(Bot)
        if statuses:
            stmt = stmt.where(Bot.status.in_(statuses))
        if account_id is not None:
            stmt = stmt.where(Bot.account_id == account_id)
        return list(self.session.scalars(stmt.order_by(Bot.id)))
