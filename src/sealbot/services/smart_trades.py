"""Smart trades as their own resource: a ``smart`` bot is one trade (entry, targets,
stop), so the API speaks of trades, started at creation and closed on request, under
the ``smart_trades:*`` token scopes users know from other platforms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sealbot.domain.errors import InvalidConfig, NotFound
from sealbot.services import bot_manage, deals
from sealbot.services.bot_manage import BotDetail
from sealbot.services.bots import new_bot, store_bot_status
from sealbot.services.kill_switch import request_cancels
from sealbot.services.paging import Page
from sealbot.services.platform import Platform
from sealbot.store import UnitOfWork
from sealbot.store.models import Bot

KIND = "smart"
CANCEL_REASON = "cancelled by its owner"


@dataclass(frozen=True, slots=True)
class SmartTrade:
    bot: BotDetail
    deals: list[deals.DealView]


async def create_smart_trade(platform: Platform, owner_id: int, account_id: int, name: str,
                             config: Mapping[str, Any]) -> SmartTrade:
    """Validate and start the trade; the engine places its entry on its next pass. Its
    market carries the exchange's rules (``new_bot``), not the ones sent."""
    view = await new_bot(platform, owner_id, account_id, KIND, name, config, start=True)
    return get_smart_trade(platform, owner_id, view.id)


def list_smart_trades(platform: Platform, owner_id: int, *, status: str | None = None, limit: int = 50,
                      offset: int = 0) -> Page[BotDetail]:
    return bot_manage.list_bots(platform, owner_id, status=status, kind=KIND, limit=limit, offset=offset)


def _trade_row(uow: UnitOfWork, owner_id: int, trade_id: int) -> Bot:
    bot = uow.bots.get(owner_id, trade_id)
    if bot.kind != KIND:
        raise NotFound("smart trade", str(trade_id))  # another kind of bot is not a trade
    return bot


def _with_deals(platform: Platform, owner_id: int, bot: BotDetail) -> SmartTrade:
    return SmartTrade(bot, deals.list_deals(platform, owner_id, bot_id=bot.id, limit=100).items)


def get_smart_trade(platform: Platform, owner_id: int, trade_id: int) -> SmartTrade:
    with platform.uow() as uow:
        bot = bot_manage.detail_of(_trade_row(uow, owner_id, trade_id))
    return _with_deals(platform, owner_id, bot)


def close_smart_trade(platform: Platform, owner_id: int, trade_id: int) -> list[int]:
    """Close the open position at market (inbox items for the engine; their ids)."""
    trade = get_smart_trade(platform, owner_id, trade_id)
    open_deals = [d.no for d in trade.deals if d.status == "open"]
    if not open_deals:
        raise InvalidConfig("status", "no open position to close; cancel the trade to withdraw its entry")
    return [deals.close_deal(platform, owner_id, trade_id, no) for no in open_deals]


def cancel_smart_trade(platform: Platform, owner_id: int, trade_id: int) -> SmartTrade:
    """Stop the trade and cancel its open orders; coins already bought stay (close the
    trade first to sell them). The orders' cancel commits with the stop, as a kill
    switch's does: a stopped trade is no longer run, so an entry left waiting on the
    exchange would buy later with no target or stop watching it.
    The trade is read once, checked, stopped and answered in one transaction: the answer
    is the row as stored (new status and version), and another kind of bot is never stopped."""
    with platform.uow() as uow:
        _trade_row(uow, owner_id, trade_id)
        bot = bot_manage.detail_of(store_bot_status(uow, owner_id, trade_id, "stopped", CANCEL_REASON))
        request_cancels(uow.session, [trade_id])
    return _with_deals(platform, owner_id, bot)
