"""Deals: list (filtered), detail with orders and fills, close at market, add funds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from sealbot.domain import Fill, Order
from sealbot.services import deals
from sealbot.services.auth import Principal
from sealbot.services.platform import Platform
from sealbot.web.api.common import IdPath, Limit, Offset, OptionalId, paged
from sealbot.web.deps import get_platform, scoped
from sealbot.web.schemas import (
    AddFundsIn,
    CandleOut,
    DealChartOut,
    DealDetailOut,
    DealOut,
    FillOut,
    MarkerOut,
    OrderOut,
    PageOut,
    Queued,
)

router = APIRouter(prefix="/api/v1", tags=["deals"])


def order_out(o: Order) -> OrderOut:
    return OrderOut(client_order_id=str(o.client_id), pair=o.pair.symbol, side=o.side.value, type=o.type.value,
                    amount=o.amount, price=o.price, status=o.status.value, filled=o.filled,
                    average_price=o.average_price)


def fill_out(f: Fill) -> FillOut:
    return FillOut(client_order_id=str(f.client_id), trade_id=f.trade_id, side=f.side.value, price=f.price,
                   amount=f.amount, fee=f.fee, fee_currency=f.fee_currency, at=f.at)


@router.get("/deals", response_model=PageOut[DealOut])
def list_deals(bot_id: OptionalId = None, status_: Annotated[str | None, Query(alias="status", max_length=16)] = None,
               pair: Annotated[str | None, Query(max_length=42)] = None, limit: Limit = 50, offset: Offset = 0,
               who: Principal = Depends(scoped("deals:read")),
               platform: Platform = Depends(get_platform)) -> PageOut[DealOut]:
    return paged(deals.list_deals(platform, who.user_id, bot_id=bot_id, status=status_, pair=pair, limit=limit,
                                  offset=offset), DealOut)


@router.get("/bots/{bot_id}/deals/{no}", response_model=DealDetailOut)
def deal(bot_id: IdPath, no: IdPath, who: Principal = Depends(scoped("deals:read")),
         platform: Platform = Depends(get_platform)) -> DealDetailOut:
    detail = deals.deal_detail(platform, who.user_id, bot_id, no)
    return DealDetailOut(deal=DealOut.model_validate(detail.deal), orders=[order_out(o) for o in detail.orders],
                         fills=[fill_out(f) for f in detail.fills])


@router.post("/bots/{bot_id}/deals/{no}/close", status_code=status.HTTP_202_ACCEPTED, response_model=Queued)
def close(bot_id: IdPath, no: IdPath, who: Principal = Depends(scoped("deals:write")),
          platform: Platform = Depends(get_platform)) -> Queued:
    """Ask the bot to close the deal at market (the engine carries it out)."""
    return Queued(queued=deals.close_deal(platform, who.user_id, bot_id, no))


@router.post("/bots/{bot_id}/deals/{no}/add-funds", status_code=status.HTTP_202_ACCEPTED, response_model=Queued)
def add_funds(bot_id: IdPath, no: IdPath, body: AddFundsIn, who: Principal = Depends(scoped("deals:write")),
              platform: Platform = Depends(get_platform)) -> Queued:
    return Queued(queued=deals.add_funds(platform, who.user_id, bot_id, no, body.amount, body.amount_type,
                                         body.price))


@router.get("/bots/{bot_id}/deals/{no}/chart", response_model=DealChartOut)
async def chart(bot_id: IdPath, no: IdPath, who: Principal = Depends(scoped("deals:read")),
                platform: Platform = Depends(get_platform)) -> DealChartOut:
    """Candles around the deal and a marker per fill (entry, safety order, exit)."""
    data = await deals.deal_chart(platform, who.user_id, bot_id, no)
    return DealChartOut(
        pair=data.pair, timeframe=data.timeframe, candles_error=data.candles_error,
        candles=[CandleOut(time=int(c.open_time.timestamp()), open=c.open, high=c.high, low=c.low, close=c.close)
                 for c in data.candles],
        markers=[MarkerOut(time=int(m.at.timestamp()), kind=m.kind, side=m.side, price=m.price,  # type: ignore[arg-type]
                           amount=m.amount) for m in data.markers])
