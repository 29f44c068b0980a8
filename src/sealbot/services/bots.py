"""Use cases for bots: create (validated, with the exchange's market rules), start, stop."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sealbot import audit
from sealbot.bots.registry import parse_config
from sealbot.bots.threecommas import import_bot
from sealbot.domain.market import MarketRules, Pair
from sealbot.engine.journal import AccountRecord
from sealbot.services.platform import Platform
from sealbot.store import UnitOfWork
from sealbot.store.models import Bot


@dataclass(frozen=True, slots=True)
class BotView:
    id: int
    kind: str
    name: str
    status: str
    account_id: int | None
    config: Mapping[str, Any]


async def market_spec(platform: Platform, owner_id: int, account_id: int, pair: Pair) -> dict[str, str]:
    """The pair's precision and limits as the exchange reports them, in the shape bot
    configs take (``MarketSpec``): bots get their rules from market metadata, never
    from the user."""
    with platform.uow() as uow:
        account = uow.accounts.get(owner_id, account_id)
        record = AccountRecord(str(account.id), str(owner_id), account.exchange, account.label)
    venue = await platform.venue_for(record)
    try:
        rules: MarketRules = (await venue.load_markets())[pair]
    finally:
        await venue.close()
    return {"pair": pair.symbol, "tick_size": str(rules.tick_size), "step_size": str(rules.step_size),
            "min_amount": str(rules.min_amount), "min_notional": str(rules.min_notional)}


def create_bot(platform: Platform, owner_id: int, account_id: int | None, kind: str, name: str,
               config: Mapping[str, Any], *, start: bool = False) -> BotView:
    """Validate ``config`` for ``kind`` (``InvalidConfig`` names the field), store it with
    the bot's own id in it, and optionally mark it running for the engine."""
    parse_config(kind, {**config, "bot_id": "0"})  # reject before anything is written
    with platform.uow() as uow:
        if account_id is not None:
            uow.accounts.get(owner_id, account_id)  # NotFound for another user's account
        bot = uow.bots.add(owner_id, kind, name, dict(config), account_id=account_id)
        final = {**config, "bot_id": str(bot.id)}
        parse_config(kind, final)
        uow.bots.update(owner_id, bot.id, config=final)
        if start:
            uow.bots.set_status(owner_id, bot.id, "running")
        audit.record(uow.session, actor=f"user:{owner_id}", action="bot.created", subject=f"bot:{bot.id}",
                     details={"kind": kind, "account_id": account_id, "started": start})
        return BotView(bot.id, kind, name, bot.status, account_id, final)


def set_bot_status(platform: Platform, owner_id: int, bot_id: int, status: str, reason: str | None = None) -> None:
    """Start (``running``), pause or stop a bot; the runner acts on the stored status."""
    with platform.uow() as uow:
        store_bot_status(uow, owner_id, bot_id, status, reason)


def store_bot_status(uow: UnitOfWork, owner_id: int, bot_id: int, status: str, reason: str | None = None) -> Bot:
    """``set_bot_status`` inside the caller's unit of work (one that has read the bot to
    check it, say); returns the updated row."""
    if status not in {"running", "paused", "stopped"}:
        raise ValueError(f"status: {status!r} is not running, paused or stopped")
    bot = uow.bots.set_status(owner_id, bot_id, status, pause_reason=reason)
    audit.record(uow.session, actor=f"user:{owner_id}", action=f"bot.{status}", subject=f"bot:{bot_id}",
                 details={"reason": reason} if reason else {})
    return bot


@dataclass(frozen=True, slots=True)
class ImportedBot:
    kind: str
    config: Mapping[str, Any]
    explanations: list[str]


def import_3commas_bot(raw: bytes) -> ImportedBot:
    """Translate a bot exported from 3Commas' API into a sealbot config, explaining every
    field that could not be carried over. Market rules are filled in when the bot is
    created on an account (``market_spec``); ``InvalidConfig`` names a bad field."""
    config, explanations = import_bot(raw)
    data = config.model_dump(mode="json")
    kind = "grid" if "grids_quantity" in data else "dca"
    return ImportedBot(kind, data, explanations)
