"""Copy sets: one bot config on several accounts, each sized on its own. See
docs/copy-trading.md."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Depends, Response, status
from pydantic import Field

from sealbot.services import copy_trading, webhooks
from sealbot.services.auth import Principal
from sealbot.services.copy_trading import CopySetView, MemberSpec
from sealbot.services.platform import Platform
from sealbot.web.api.common import IdPath
from sealbot.web.deps import get_platform, scoped
from sealbot.web.schemas import MAX_ID, Model, WebhookPolicyIn

router = APIRouter(prefix="/api/v1", tags=["copy trading"])


class MemberIn(Model):
    account_id: int = Field(ge=1, le=MAX_ID)
    multiplier: Decimal | None = Field(default=None, description="scales every size of the config")
    base_size: Decimal | None = Field(default=None, description="fixed entry size; other sizes keep their ratio")


class CopySetIn(Model):
    kind: Literal["signal", "dca"]
    name: str = Field(min_length=1, max_length=100)
    config: dict[str, Any]
    members: list[MemberIn] = Field(min_length=1, max_length=copy_trading.MAX_MEMBERS)
    start: bool = False


class CopySetEditIn(Model):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    config: dict[str, Any] | None = None


class MemberOut(Model):
    bot_id: int
    account_id: int
    multiplier: Decimal | None
    base_size: Decimal | None
    status: str
    pause_reason: str | None
    config: dict[str, Any]


class CopySetOut(Model):
    id: int
    kind: str
    name: str
    config: dict[str, Any]
    members: list[MemberOut]
    has_webhook_secret: bool
    webhook_route: str = Field(description="the bot_uuid (signal body) or bot_id (DCA body) signals must name")


class CopySetSecretOut(Model):
    secret: str = Field(description="put into the alert body; shown once, stored hashed")
    route: str
    url_path: str


class CopySetPolicyOut(Model):
    copy_set_id: int
    allowed_ips: list[str] | None
    max_per_minute: int


def _out(view: CopySetView) -> CopySetOut:
    return CopySetOut(id=view.id, kind=view.kind, name=view.name, config=dict(view.config),
                      members=[MemberOut.model_validate(m) for m in view.members],
                      has_webhook_secret=view.has_webhook_secret, webhook_route=view.webhook_route)


def _spec(m: MemberIn) -> MemberSpec:
    return MemberSpec(m.account_id, m.multiplier, m.base_size)


@router.post("/copy-sets", status_code=status.HTTP_201_CREATED, response_model=CopySetOut)
def create(body: CopySetIn, who: Principal = Depends(scoped("bots:write")),
           platform: Platform = Depends(get_platform)) -> CopySetOut:
    """One config, one member bot per account, each sized by its multiplier or base size.
    Another user's account is 404; an invalid setting is 422 with its field path."""
    return _out(copy_trading.create_copy_set(platform, who.user_id, body.kind, body.name, body.config,
                                             [_spec(m) for m in body.members], start=body.start))


@router.get("/copy-sets", response_model=list[CopySetOut])
def list_sets(who: Principal = Depends(scoped("bots:read")),
              platform: Platform = Depends(get_platform)) -> list[CopySetOut]:
    return [_out(v) for v in copy_trading.list_copy_sets(platform, who.user_id)]


@router.get("/copy-sets/{set_id}", response_model=CopySetOut)
def get_set(set_id: IdPath, who: Principal = Depends(scoped("bots:read")),
            platform: Platform = Depends(get_platform)) -> CopySetOut:
    return _out(copy_trading.get_copy_set(platform, who.user_id, set_id))


@router.post("/copy-sets/{set_id}/members", response_model=CopySetOut)
def add_member(set_id: IdPath, body: MemberIn, who: Principal = Depends(scoped("bots:write")),
               platform: Platform = Depends(get_platform)) -> CopySetOut:
    return _out(copy_trading.add_member(platform, who.user_id, set_id, _spec(body)))


@router.delete("/copy-sets/{set_id}/members/{account_id}", response_model=CopySetOut)
def remove_member(set_id: IdPath, account_id: IdPath, who: Principal = Depends(scoped("bots:write")),
                  platform: Platform = Depends(get_platform)) -> CopySetOut:
    """Take an account out of the set; its member bot (not running) is deleted."""
    return _out(copy_trading.remove_member(platform, who.user_id, set_id, account_id))


@router.patch("/copy-sets/{set_id}", response_model=CopySetOut)
def edit(set_id: IdPath, body: CopySetEditIn, who: Principal = Depends(scoped("bots:write")),
         platform: Platform = Depends(get_platform)) -> CopySetOut:
    """Rename, or replace the config (every member re-sized from it; none may be running)."""
    return _out(copy_trading.edit_copy_set(platform, who.user_id, set_id, name=body.name, config=body.config))


@router.post("/copy-sets/{set_id}/webhook-secret", response_model=CopySetSecretOut)
def webhook_secret(set_id: IdPath, who: Principal = Depends(scoped("bots:write")),
                   platform: Platform = Depends(get_platform)) -> CopySetSecretOut:
    """A new signal secret for the whole set (the old one stops working); shown once."""
    secret = copy_trading.new_copy_set_webhook_secret(platform, who.user_id, set_id)
    return CopySetSecretOut(secret=secret, route=f"{copy_trading.ROUTE_PREFIX}{set_id}", url_path="/api/v1/signals")


@router.get("/copy-sets/{set_id}/webhook-policy", response_model=CopySetPolicyOut)
def get_policy(set_id: IdPath, who: Principal = Depends(scoped("bots:read")),
               platform: Platform = Depends(get_platform)) -> CopySetPolicyOut:
    return CopySetPolicyOut.model_validate(webhooks.copy_set_webhook_policy(platform, who.user_id, set_id))


@router.put("/copy-sets/{set_id}/webhook-policy", response_model=CopySetPolicyOut)
def put_policy(set_id: IdPath, body: WebhookPolicyIn, who: Principal = Depends(scoped("bots:write")),
               platform: Platform = Depends(get_platform)) -> CopySetPolicyOut:
    """Source-IP allow-list ("tradingview" adds TradingView's addresses) and rate limit."""
    policy = webhooks.set_copy_set_webhook_policy(platform, who.user_id, set_id, allowed_ips=body.allowed_ips,
                                                  max_per_minute=body.max_per_minute)
    return CopySetPolicyOut.model_validate(policy)


@router.post("/copy-sets/{set_id}/{action}", response_model=CopySetOut)
def set_status(set_id: IdPath, action: Literal["start", "pause", "stop"],
               who: Principal = Depends(scoped("bots:write")),
               platform: Platform = Depends(get_platform)) -> CopySetOut:
    """Start, pause or stop every member bot together."""
    target = {"start": "running", "pause": "paused", "stop": "stopped"}[action]
    reason = None if action == "start" else f"{'paused' if action == 'pause' else 'stopped'} by its owner"
    return _out(copy_trading.set_copy_set_status(platform, who.user_id, set_id, target, reason))


@router.delete("/copy-sets/{set_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(set_id: IdPath, who: Principal = Depends(scoped("bots:write")),
           platform: Platform = Depends(get_platform)) -> Response:
    copy_trading.delete_copy_set(platform, who.user_id, set_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
