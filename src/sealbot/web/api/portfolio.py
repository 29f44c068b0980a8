"""Portfolio holdings at the exchanges: current balances valued in the user's currency,
history for charts, the currency setting, and an on-demand refresh.

``GET /api/v1/portfolio`` (realized P&L from deals) stays in ``misc``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from sealbot.services import portfolio
from sealbot.services.auth import Principal
from sealbot.services.platform import Platform
from sealbot.web.api.common import OptionalId
from sealbot.web.deps import get_platform, scoped
from sealbot.web.schemas import Model

router = APIRouter(prefix="/api/v1/portfolio", tags=["portfolio"])


class HoldingOut(Model):
    asset: str
    free: Decimal
    used: Decimal
    total: Decimal
    price: Decimal | None = Field(description="one unit in the snapshot's currency; null: could not be valued")
    value: Decimal | None
    route: str | None = Field(description="tickers used, e.g. ETH/BTC>BTC/USDT; '=' for the currency itself")


class AccountHoldingsOut(Model):
    account_id: int
    label: str
    exchange: str
    taken_at: datetime
    currency: str
    total_value: Decimal
    unvalued: list[str]
    holdings: list[HoldingOut]


class AssetTotalOut(Model):
    asset: str
    total: Decimal
    value: Decimal | None


class HoldingsOut(Model):
    currency: str
    total_value: Decimal
    accounts: list[AccountHoldingsOut]
    by_asset: list[AssetTotalOut]
    unvalued: list[str] = Field(description="assets that could not be valued (no ticker route to the currency)")
    pending: list[int] = Field(description="linked accounts with no snapshot in the currency yet")
    as_of: datetime | None


class HistoryPointOut(Model):
    at: datetime
    value: Decimal
    accounts: int


class HistoryOut(Model):
    currency: str
    account_id: int | None
    points: list[HistoryPointOut]


class PortfolioSettingsOut(Model):
    currency: str


class PortfolioSettingsIn(BaseModel):
    currency: str = Field(min_length=2, max_length=20, description="asset symbol: USDT, USD, EUR, BTC, ...")


@router.get("/holdings", response_model=HoldingsOut)
def get_holdings(who: Principal = Depends(scoped("portfolio:read")),
                 platform: Platform = Depends(get_platform)) -> HoldingsOut:
    """Each linked account's newest balance snapshot and their sum in your currency."""
    return HoldingsOut.model_validate(portfolio.holdings(platform, who.user_id))


@router.post("/refresh", response_model=HoldingsOut)
async def refresh(account_id: OptionalId = None, who: Principal = Depends(scoped("portfolio:write")),
                  platform: Platform = Depends(get_platform)) -> HoldingsOut:
    """Snapshot balances now (one account or all), instead of waiting for the engine."""
    return HoldingsOut.model_validate(await portfolio.refresh_holdings(platform, who.user_id, account_id))


@router.get("/history", response_model=HistoryOut)
def get_history(account_id: OptionalId = None, since: datetime | None = None, until: datetime | None = None,
                max_points: Annotated[int, Query(ge=2, le=10_000)] = 500,
                who: Principal = Depends(scoped("portfolio:read")),
                platform: Platform = Depends(get_platform)) -> HistoryOut:
    """Value over time in your currency, one account or across accounts, oldest first."""
    return HistoryOut.model_validate(portfolio.history(platform, who.user_id, account_id=account_id, since=since,
                                                       until=until, max_points=max_points))


@router.get("/settings", response_model=PortfolioSettingsOut)
def get_settings(who: Principal = Depends(scoped("portfolio:read")),
                 platform: Platform = Depends(get_platform)) -> PortfolioSettingsOut:
    return PortfolioSettingsOut(currency=portfolio.valuation_currency(platform, who.user_id))


@router.put("/settings", response_model=PortfolioSettingsOut)
def put_settings(body: PortfolioSettingsIn, who: Principal = Depends(scoped("portfolio:write")),
                 platform: Platform = Depends(get_platform)) -> PortfolioSettingsOut:
    """Choose the valuation currency; the next snapshot is valued in it."""
    return PortfolioSettingsOut(currency=portfolio.set_valuation_currency(platform, who.user_id, body.currency))
