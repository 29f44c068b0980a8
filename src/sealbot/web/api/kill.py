"""Kill switches: stop every bot of one of your accounts, all of yours, or (admins) all."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from sealbot.services import auth, kill_switch
from sealbot.services.auth import Principal
from sealbot.services.platform import Platform
from sealbot.web.deps import get_platform, principal, scoped
from sealbot.web.schemas import MAX_ID

router = APIRouter(prefix="/api/v1", tags=["kill switch"])


class KillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: int | None = Field(default=None, ge=1, le=MAX_ID,
                                   description="only this account's bots (default: all yours)")


class KillOut(BaseModel):
    scope: str
    stopped_bots: list[int]


@router.post("/kill-switch", response_model=KillOut)
def engage(body: KillIn, who: Principal = Depends(scoped("bots:write")),
           platform: Platform = Depends(get_platform)) -> KillOut:
    """Stop your running and paused bots (of one account, or all); the engine cancels
    their open orders. Keys stay linked and deals stay open: start the bots again later."""
    result = kill_switch.kill_switch(platform, who.user_id, owner_id=who.user_id, account_id=body.account_id)
    return KillOut(scope=result.scope, stopped_bots=result.stopped_bots)


@router.post("/admin/kill-switch", response_model=KillOut, tags=["admin"])
def engage_everywhere(who: Principal = Depends(principal), platform: Platform = Depends(get_platform)) -> KillOut:
    """Stop every user's bots (instance admins only)."""
    auth.require_admin(who)
    result = kill_switch.kill_switch(platform, who.user_id, owner_id=None)
    return KillOut(scope=result.scope, stopped_bots=result.stopped_bots)
