"""Bot use cases beyond ``bots``: list, read, preview, edit, delete (owner-scoped)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, is_dataclass
from decimal import Decimal
from typing import Any

from sealbot import audit
from sealbot.bots.common.serde import dump_dataclass
from sealbot.bots.registry import bot_module, parse_config, stored_config
from sealbot.domain.errors import InvalidConfig
from sealbot.services.paging import Page, page_of
from sealbot.services.platform import Platform
from sealbot.store.models import Bot

EDITABLE_STATUSES = ("stopped", "paused", "error")


@dataclass(frozen=True, slots=True)
class BotDetail:
    id: int
    kind: str
    name: str
    status: str
    pause_reason: str | None
    account_id: int | None
    config: Mapping[str, Any]
    has_webhook_secret: bool
    version: int


def detail_of(bot: Bot) -> BotDetail:
    """The service's view of a stored bot row."""
    return BotDetail(bot.id, bot.kind, bot.name, bot.status, bot.pause_reason, bot.account_id, dict(bot.config),
                     bool(bot.webhook_secret_hash), bot.version)


def list_bots(platform: Platform, owner_id: int, *, status: str | None = None, kind: str | None = None,
              account_id: int | None = None, limit: int = 50, offset: int = 0) -> Page[BotDetail]:
    with platform.uow() as uow:
        rows = [detail_of(b) for b in uow.bots.list(owner_id, account_id=account_id, status=status)
                if kind is None or b.kind == kind]
    return page_of(rows, limit, offset)


def get_bot(platform: Platform, owner_id: int, bot_id: int) -> BotDetail:
    with platform.uow() as uow:
        return detail_of(uow.bots.get(owner_id, bot_id))


def preview(kind: str, config: Mapping[str, Any], price: Decimal) -> dict[str, Any]:
    """The bot's order table at ``price`` (what it would place), after validating the config."""
    if price <= 0:
        raise InvalidConfig("price", "must be positive")
    cfg = parse_config(kind, {**config, "bot_id": config.get("bot_id", "0")})
    result = bot_module(kind).preview(cfg, price)
    if hasattr(result, "to_dict"):
        return dict(result.to_dict())
    if is_dataclass(result) and not isinstance(result, type):
        return dict(dump_dataclass(result))
    return {"preview": result}


def edit_bot(platform: Platform, owner_id: int, bot_id: int, *, name: str | None = None,
             config: Mapping[str, Any] | None = None) -> BotDetail:
    """Rename or reconfigure a bot that is not running (a running bot keeps the config it
    started with); the new config is validated first."""
    with platform.uow() as uow:
        bot = uow.bots.get(owner_id, bot_id)
        changes: dict[str, Any] = {}
        if config is not None:
            if bot.status not in EDITABLE_STATUSES:
                raise InvalidConfig("status", "stop the bot before changing its settings")
            changes["config"] = stored_config(bot.kind, config, bot.id)
        if name is not None:
            if not name.strip() or len(name) > 120:
                raise InvalidConfig("name", "must be 1 to 120 characters")
            changes["name"] = name.strip()
        if changes:
            bot = uow.bots.update(owner_id, bot_id, **changes)
            audit.record(uow.session, actor=f"user:{owner_id}", action="bot.edited", subject=f"bot:{bot_id}",
                         details={"fields": sorted(changes)})
        return detail_of(bot)


def delete_bot(platform: Platform, owner_id: int, bot_id: int) -> None:
    with platform.uow() as uow:
        bot = uow.bots.get(owner_id, bot_id)
        if bot.status == "running":
            raise InvalidConfig("status", "stop the bot before deleting it")
        uow.bots.delete(owner_id, bot_id)
        audit.record(uow.session, actor=f"user:{owner_id}", action="bot.deleted", subject=f"bot:{bot_id}",
                     details={"kind": bot.kind})
