"""Use cases for bots: create (validated, with the exchange's market rules), start, stop."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from sealbot import audit
from sealbot.bots.registry import parse_config, stored_config
from sealbot.bots.threecommas import import_bot
from sealbot.domain.errors import InvalidConfig
from sealbot.domain.market import MarketRules, Pair
from sealbot.engine.journal import AccountRecord
from sealbot.services import bot_manage
from sealbot.services.bot_manage import BotDetail
from sealbot.services.kill_switch import request_cancels
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
    from the user. A pair the exchange does not list is ``InvalidConfig`` on ``pair``."""
    exchange, listed = await _exchange_markets(platform, owner_id, account_id)
    return _spec_of(exchange, listed, pair, "pair")


async def with_exchange_rules(platform: Platform, owner_id: int, account_id: int,
                              config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with each market's precision and limits (``tick_size``, ``step_size``,
    ``min_amount``, ``min_notional``) taken from the account's exchange, whatever the
    user sent: a tick or step of 0 would send unrounded amounts the exchange refuses. A
    pair the exchange does not list is refused here, naming its field, because the
    engine could never price it. Markets that are not even well-formed are left to the
    config's own validation, which names them."""
    entries = _market_entries(config)
    if not entries:
        return dict(config)
    exchange, listed = await _exchange_markets(platform, owner_id, account_id)
    specs = {path: {**spec, **_spec_of(exchange, listed, pair, f"{path}.pair")} for path, spec, pair in entries}
    result = dict(config)
    if "market" in specs:
        result["market"] = specs["market"]
    if isinstance(config.get("markets"), list):
        result["markets"] = [specs.get(f"markets.{i}", m) for i, m in enumerate(config["markets"])]
    return result


def _market_entries(config: Mapping[str, Any]) -> list[tuple[str, dict[str, Any], Pair]]:
    """(field path, market, pair) for every well-formed market of a config."""
    markets = config.get("markets")
    candidates = [(f"markets.{i}", m) for i, m in enumerate(markets)] if isinstance(markets, list) else []
    if isinstance(config.get("market"), Mapping):
        candidates.append(("market", config["market"]))
    entries = []
    for path, market in candidates:
        if isinstance(market, Mapping) and isinstance(market.get("pair"), str):
            with suppress(ValueError):  # the config's validation names a malformed pair
                entries.append((path, dict(market), Pair.parse(market["pair"])))
    return entries


async def _exchange_markets(platform: Platform, owner_id: int, account_id: int) -> tuple[str, dict[Pair, MarketRules]]:
    """The account's exchange and the spot markets it lists (``NotFound`` for another
    user's account)."""
    with platform.uow() as uow:
        account = uow.accounts.get(owner_id, account_id)
        record = AccountRecord(str(account.id), str(owner_id), account.exchange, account.label)
    venue = await platform.venue_for(record)
    try:
        return record.exchange, await venue.load_markets()
    finally:
        await venue.close()


def _spec_of(exchange: str, listed: Mapping[Pair, MarketRules], pair: Pair, field: str) -> dict[str, str]:
    rules = listed.get(pair)
    if rules is None:
        raise InvalidConfig(field, f"{exchange} does not list {pair.symbol}: choose a pair the exchange trades")
    return {"pair": pair.symbol, "tick_size": str(rules.tick_size), "step_size": str(rules.step_size),
            "min_amount": str(rules.min_amount), "min_notional": str(rules.min_notional)}


async def new_bot(platform: Platform, owner_id: int, account_id: int | None, kind: str, name: str,
                  config: Mapping[str, Any], *, start: bool = False) -> BotView:
    """Create a bot as the API does: its markets carry the account's exchange rules
    (``with_exchange_rules``), and it may start only on an account."""
    if start:
        _require_account(account_id)
    if account_id is not None:
        config = await with_exchange_rules(platform, owner_id, account_id, config)
    return create_bot(platform, owner_id, account_id, kind, name, config, start=start)


async def reconfigure_bot(platform: Platform, owner_id: int, bot_id: int, *, name: str | None = None,
                          config: Mapping[str, Any] | None = None) -> BotDetail:
    """``bot_manage.edit_bot`` with the new config's markets given the exchange's rules."""
    if config is not None:
        account_id = bot_manage.get_bot(platform, owner_id, bot_id).account_id
        if account_id is not None:
            config = await with_exchange_rules(platform, owner_id, account_id, config)
    return bot_manage.edit_bot(platform, owner_id, bot_id, name=name, config=config)


def _require_account(account_id: int | None) -> None:
    if account_id is None:
        raise InvalidConfig("account_id", "a bot runs on an exchange account: give the bot an account_id "
                                          "before starting it")


MAX_NAME = 120  # the bots.name column


def create_bot(platform: Platform, owner_id: int, account_id: int | None, kind: str, name: str,
               config: Mapping[str, Any], *, start: bool = False) -> BotView:
    """Validate ``config`` for ``kind`` (``InvalidConfig`` names the field), store it with
    the bot's own id in it, and optionally mark it running for the engine."""
    if not 1 <= len(name) <= MAX_NAME:  # the dashboard's form has no schema in front of it
        raise InvalidConfig("name", f"must be 1 to {MAX_NAME} characters")
    parse_config(kind, {**config, "bot_id": "0"})  # reject before anything is written
    with platform.uow() as uow:
        if account_id is not None:
            uow.accounts.get(owner_id, account_id)  # NotFound for another user's account
        bot = uow.bots.add(owner_id, kind, name, dict(config), account_id=account_id)
        final = stored_config(kind, config, bot.id)
        uow.bots.update(owner_id, bot.id, config=final)
        if start:
            uow.bots.set_status(owner_id, bot.id, "running")
        audit.record(uow.session, actor=f"user:{owner_id}", action="bot.created", subject=f"bot:{bot.id}",
                     details={"kind": kind, "account_id": account_id, "started": start})
        return BotView(bot.id, kind, name, bot.status, account_id, final)


# What an owner's start, pause and stop store (the API's and the dashboard's actions): the
# status and the reason the engine and the bot's page show.
OWNER_ACTIONS: dict[str, tuple[str, str | None]] = {
    "start": ("running", None), "pause": ("paused", "paused by its owner"), "stop": ("stopped", "stopped by its owner")}


def owner_action(platform: Platform, owner_id: int, bot_id: int, action: str) -> None:
    """Start, pause or stop a bot for its owner (``OWNER_ACTIONS``). A stop is the kill
    switch of one bot: its open orders' cancel commits with it (``request_cancels``), since
    a stopped bot is no longer run, and a grid's buys or a trade's entry left on the
    exchange would keep trading with nothing placing the orders that should follow."""
    status, reason = OWNER_ACTIONS[action]
    with platform.uow() as uow:
        store_bot_status(uow, owner_id, bot_id, status, reason)
        if status == "stopped":
            request_cancels(uow.session, [bot_id])


def set_bot_status(platform: Platform, owner_id: int, bot_id: int, status: str, reason: str | None = None) -> None:
    """Start (``running``), pause or stop a bot; the runner acts on the stored status."""
    with platform.uow() as uow:
        store_bot_status(uow, owner_id, bot_id, status, reason)


def store_bot_status(uow: UnitOfWork, owner_id: int, bot_id: int, status: str, reason: str | None = None) -> Bot:
    """``set_bot_status`` inside the caller's unit of work (one that has read the bot to
    check it, say); returns the updated row."""
    if status not in {"running", "paused", "stopped"}:
        raise ValueError(f"status: {status!r} is not running, paused or stopped")
    if status == "running":  # nothing would run it, yet it would show "running"
        _require_account(uow.bots.get(owner_id, bot_id).account_id)
    if status == "paused" and (now := uow.bots.get(owner_id, bot_id).status) not in ("running", "paused"):
        # pausing holds a running bot's new deals; a bot not running has none to hold
        raise InvalidConfig("status", f"only a running bot can be paused; this one is {now}")
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
