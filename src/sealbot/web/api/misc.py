"""Alerts, the user's own audit log, and the portfolio."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from sealbot.services import alerts, audit_view, portfolio
from sealbot.services.auth import Principal
from sealbot.services.platform import Platform
from sealbot.web.api.common import IdPath, Limit, Offset, paged
from sealbot.web.deps import get_platform, scoped
from sealbot.web.schemas import (
    AlertOut,
    AuditOut,
    DailyProfitOut,
    PageOut,
    PortfolioOut,
    QuoteSummaryOut,
)

router = APIRouter(prefix="/api/v1")


@router.get("/alerts", response_model=PageOut[AlertOut], tags=["alerts"])
def list_alerts(unacknowledged: bool = False, level: Annotated[str | None, Query(max_length=16)] = None,
                limit: Limit = 50, offset: Offset = 0, who: Principal = Depends(scoped("alerts:read")),
                platform: Platform = Depends(get_platform)) -> PageOut[AlertOut]:
    return paged(alerts.list_alerts(platform, who.user_id, unacknowledged=unacknowledged, level=level, limit=limit,
                                    offset=offset), AlertOut)


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertOut, tags=["alerts"])
def acknowledge(alert_id: IdPath, who: Principal = Depends(scoped("alerts:write")),
                platform: Platform = Depends(get_platform)) -> AlertOut:
    return AlertOut.model_validate(alerts.acknowledge(platform, who.user_id, alert_id))


@router.get("/audit", response_model=PageOut[AuditOut], tags=["audit"])
def audit_log(action: Annotated[str | None, Query(max_length=100, description="action prefix, e.g. auth.")] = None,
              limit: Limit = 50, offset: Offset = 0, who: Principal = Depends(scoped("audit:read")),
              platform: Platform = Depends(get_platform)) -> PageOut[AuditOut]:
    """Your own audit entries (what you did, and what was done to your account), newest first."""
    return paged(audit_view.my_audit(platform, who.user_id, action=action, limit=limit, offset=offset), AuditOut)


@router.get("/portfolio", response_model=PortfolioOut, tags=["portfolio"])
def get_portfolio(who: Principal = Depends(scoped("portfolio:read")),
                  platform: Platform = Depends(get_platform)) -> PortfolioOut:
    """Realized profit (today, total, per day) and open deals, per quote currency."""
    p = portfolio.portfolio(platform, who.user_id)
    return PortfolioOut(by_quote=[QuoteSummaryOut.model_validate(q) for q in p.by_quote],
                        daily_profit=[DailyProfitOut(day=d, quote=q, profit=v) for d, q, v in p.daily_profit],
                        open_deals=p.open_deals, closed_deals=p.closed_deals)
