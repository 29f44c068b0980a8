"""The pre-trade limits users store: their own (every account) and each account's. See
docs/engine.md (Guard) and docs/copy-trading.md (per-account limits)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Response, status
from pydantic import ConfigDict, Field

from sealbot.services import guard_limits
from sealbot.services.auth import Principal
from sealbot.services.platform import Platform
from sealbot.web.api.common import IdPath
from sealbot.web.deps import get_platform, scoped
from sealbot.web.schemas import Model

router = APIRouter(prefix="/api/v1", tags=["guard limits"])


class GuardLimitsIn(Model):
    """Settings left out take the engine's defaults; ``null`` switches a limit off where
    that is allowed (not ``max_deviation_pct`` or ``min_quote_volume_24h``). An unknown
    setting is refused: a typo must not store an empty set of limits over the user's."""

    model_config = ConfigDict(extra="forbid")

    max_deviation_pct: Decimal | None = None
    max_order_notional: Decimal | None = None
    max_daily_notional: Decimal | None = None
    allowed_pairs: list[str] | None = None
    min_quote_volume_24h: Decimal | None = None


class UserGuardLimitsOut(Model):
    limits: dict[str, Any] | None = Field(description="your own limits; null: the engine's defaults apply")


class GuardLimitsOut(Model):
    account_id: int
    limits: dict[str, Any] | None = Field(description="the account's own limits; null: only the user's apply")


@router.get("/guard-limits", response_model=UserGuardLimitsOut)
def get_user_limits(who: Principal = Depends(scoped("accounts:read")),
                    platform: Platform = Depends(get_platform)) -> UserGuardLimitsOut:
    return UserGuardLimitsOut(limits=guard_limits.user_guard_limits(platform, who.user_id))


@router.put("/guard-limits", response_model=UserGuardLimitsOut)
def put_user_limits(body: GuardLimitsIn, who: Principal = Depends(scoped("accounts:write")),
                    platform: Platform = Depends(get_platform)) -> UserGuardLimitsOut:
    """Your pre-trade limits for all your accounts (the daily total counts every one of
    them); they judge the engine's next order, within about a second."""
    given = body.model_dump(mode="json", exclude_unset=True)
    return UserGuardLimitsOut(limits=guard_limits.set_user_guard_limits(platform, who.user_id, given))


@router.delete("/guard-limits", status_code=status.HTTP_204_NO_CONTENT)
def clear_user_limits(who: Principal = Depends(scoped("accounts:write")),
                      platform: Platform = Depends(get_platform)) -> Response:
    guard_limits.clear_user_guard_limits(platform, who.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/accounts/{account_id}/guard-limits", response_model=GuardLimitsOut)
def get_limits(account_id: IdPath, who: Principal = Depends(scoped("accounts:read")),
               platform: Platform = Depends(get_platform)) -> GuardLimitsOut:
    return GuardLimitsOut(account_id=account_id,
                          limits=guard_limits.account_guard_limits(platform, who.user_id, account_id))


@router.put("/accounts/{account_id}/guard-limits", response_model=GuardLimitsOut)
def put_limits(account_id: IdPath, body: GuardLimitsIn, who: Principal = Depends(scoped("accounts:write")),
               platform: Platform = Depends(get_platform)) -> GuardLimitsOut:
    """The account's own pre-trade limits, applied on top of yours; settings left out
    take the engine's defaults. They judge the engine's next order, within about a second."""
    given = body.model_dump(mode="json", exclude_unset=True)
    return GuardLimitsOut(account_id=account_id,
                          limits=guard_limits.set_account_guard_limits(platform, who.user_id, account_id, given))


@router.delete("/accounts/{account_id}/guard-limits", status_code=status.HTTP_204_NO_CONTENT)
def clear_limits(account_id: IdPath, who: Principal = Depends(scoped("accounts:write")),
                 platform: Platform = Depends(get_platform)) -> Response:
    guard_limits.clear_account_guard_limits(platform, who.user_id, account_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
