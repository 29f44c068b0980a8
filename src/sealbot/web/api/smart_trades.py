"""Smart trades: create (started at once), list, read with its deal, close at market, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from pydantic import Field

from sealbot.services import smart_trades
from sealbot.services.auth import Principal
from sealbot.services.platform import Platform
from sealbot.web.api.common import IdPath, Limit, Offset, paged
from sealbot.web.deps import get_platform, scoped
from sealbot.web.schemas import MAX_ID, BotOut, DealOut, Model, PageOut

router = APIRouter(prefix="/api/v1/smart-trades", tags=["smart trades"])


class SmartTradeIn(Model):
    account_id: int = Field(ge=1, le=MAX_ID)
    name: str = Field(min_length=1, max_length=120)
    config: dict[str, Any] = Field(description="the smart trade's settings (docs/smart-trade.md)")


class SmartTradeOut(Model):
    trade: BotOut
    deals: list[DealOut]


class ClosingOut(Model):
    queued: list[int] = Field(description="inbox items the engine will carry out")


def _out(trade: smart_trades.SmartTrade) -> SmartTradeOut:
    return SmartTradeOut(trade=BotOut.model_validate(trade.bot), deals=[DealOut.model_validate(d) for d in trade.deals])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SmartTradeOut)
async def create(body: SmartTradeIn, who: Principal = Depends(scoped("smart_trades:write")),
                 platform: Platform = Depends(get_platform)) -> SmartTradeOut:
    """Validate and start a trade; an invalid setting is 422 with its field path."""
    return _out(await smart_trades.create_smart_trade(platform, who.user_id, body.account_id, body.name,
                                                      body.config))


@router.get("", response_model=PageOut[BotOut])
def trades(status_: Annotated[str | None, Query(alias="status", max_length=16)] = None, limit: Limit = 50,
           offset: Offset = 0, who: Principal = Depends(scoped("smart_trades:read")),
           platform: Platform = Depends(get_platform)) -> PageOut[BotOut]:
    return paged(smart_trades.list_smart_trades(platform, who.user_id, status=status_, limit=limit, offset=offset),
                 BotOut)


@router.get("/{trade_id}", response_model=SmartTradeOut)
def trade(trade_id: IdPath, who: Principal = Depends(scoped("smart_trades:read")),
          platform: Platform = Depends(get_platform)) -> SmartTradeOut:
    return _out(smart_trades.get_smart_trade(platform, who.user_id, trade_id))


@router.post("/{trade_id}/close", status_code=status.HTTP_202_ACCEPTED, response_model=ClosingOut)
def close(trade_id: IdPath, who: Principal = Depends(scoped("smart_trades:write")),
          platform: Platform = Depends(get_platform)) -> ClosingOut:
    """Close the open position at market (the engine carries it out)."""
    return ClosingOut(queued=smart_trades.close_smart_trade(platform, who.user_id, trade_id))


@router.post("/{trade_id}/cancel", response_model=SmartTradeOut)
def cancel(trade_id: IdPath, who: Principal = Depends(scoped("smart_trades:write")),
           platform: Platform = Depends(get_platform)) -> SmartTradeOut:
    """Stop the trade and cancel its open orders (coins already bought stay in the account)."""
    return _out(smart_trades.cancel_smart_trade(platform, who.user_id, trade_id))
