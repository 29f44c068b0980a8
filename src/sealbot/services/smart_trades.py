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
from sealbot.services.bots import create_bot, set_bot_status
from sealbot.services.paging import Page
from sealbot.services.platform import Platform

KIND = "smart"


@dataclass(frozen=True, slots=True)
class SmartTrade:
    bot: BotDetail
    deals: list[deals.DealView]


def create_smart_trade(platform: Platform, owner_id: int, account_id: int, name: str,
                       config: Mapping[str, Any]) -> SmartTrade:
    """Validate and start the trade; the engine places its entry on its next pass."""
    view = create_bot(platform, owner_id, account_id, KIND, name, config, start=True)
    return get_smart_trade(platform, owner_id, view.id)


def list_smart_trades(platform: Platform, owner_id: int, *, status: str | None = None, limit: int = 50,
                      offset: int = 0) -> Page[BotDetail]:
    return bot_manage.list_bots(platform, owner_id, status=status, kind=KIND, limit=limit, offset=offset)


def get_smart_trade(platform: Platform, owner_id: int, trade_id: int) -> SmartTrade:
    bot = bot_manage.get_bot(platform, owner_id, trade_id)
    if bot.kind != KIND:
        raise NotFound("smart trade", str(trade_id))  # another kind of bot is not a trade
    return SmartTrade(bot, deals.list_deals(platform, owner_id, bot_id=trade_id, limit=100).items)


def close_smart_trade(platform: Platform, owner_id: int, trade_id: int) -> list[int]:
    """Close the open position at market (inbox items for the engine; their ids)."""
    trade = get_smart_trade(platform, owner_id, trade_id)
    open_deals = [d.no for d in trade.deals if d.status == "open"]
    if not open_deals:
        raise InvalidConfig("status", "no open position to close; cancel the trade to withdraw its entry")
    return [deals.close_deal(platform, owner_id, trade_id, no) for no in open_deals]


def cancel_smart_trade(platform: Platform, owner_id: int, trade_id: int) -> SmartTrade:
    """Stop the trade: no new orders; a filled position stays (close it first to exit)."""
    get_smart_trade(platform, owner_id, trade_id)
    set_bot_status(platform, owner_id, trade_id, "stopped", "cancelled by its owner")
    return get_smart_trade(platform, owner_id, trade_id)
