"""Bots: create (validated), preview, read, edit, delete, start, pause, stop, webhook settings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status

from sealbot.services import bot_manage, webhooks
from sealbot.services.auth import Principal
from sealbot.services.bots import new_bot, owner_action, reconfigure_bot
from sealbot.services.platform import Platform
from sealbot.web.api.common import IdPath, Limit, Offset, OptionalId, paged
from sealbot.web.deps import get_platform, scoped
from sealbot.web.schemas import (
    BotEditIn,
    BotIn,
    BotOut,
    PageOut,
    PreviewIn,
    WebhookPolicyIn,
    WebhookPolicyOut,
    WebhookSecretOut,
)

router = APIRouter(prefix="/api/v1/bots", tags=["bots"])


@router.get("", response_model=PageOut[BotOut])
def bots(status_: Annotated[str | None, Query(alias="status", max_length=16)] = None,
         kind: Annotated[str | None, Query(max_length=16)] = None, account_id: OptionalId = None,
         limit: Limit = 50, offset: Offset = 0, who: Principal = Depends(scoped("bots:read")),
         platform: Platform = Depends(get_platform)) -> PageOut[BotOut]:
    page = bot_manage.list_bots(platform, who.user_id, status=status_, kind=kind, account_id=account_id,
                                limit=limit, offset=offset)
    return paged(page, BotOut)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=BotOut)
async def create(body: BotIn, who: Principal = Depends(scoped("bots:write")),
                 platform: Platform = Depends(get_platform)) -> BotOut:
    """Create a bot; an invalid setting is 422 with its field path. Each market's tick
    and step sizes and minimums are the account's exchange's (what was sent is
    replaced); a pair it does not list is 422, and so is starting a bot without an
    account."""
    view = await new_bot(platform, who.user_id, body.account_id, body.kind, body.name, body.config,
                         start=body.start)
    return BotOut.model_validate(bot_manage.get_bot(platform, who.user_id, view.id))


@router.post("/preview", response_model=dict[str, Any])
def preview(body: PreviewIn, who: Principal = Depends(scoped("bots:read"))) -> dict[str, Any]:
    """The orders the bot would place if its first order filled at ``price``."""
    return bot_manage.preview(body.kind, body.config, body.price)


@router.get("/{bot_id}", response_model=BotOut)
def bot(bot_id: IdPath, who: Principal = Depends(scoped("bots:read")),
        platform: Platform = Depends(get_platform)) -> BotOut:
    return BotOut.model_validate(bot_manage.get_bot(platform, who.user_id, bot_id))


@router.patch("/{bot_id}", response_model=BotOut)
async def edit(bot_id: IdPath, body: BotEditIn, who: Principal = Depends(scoped("bots:write")),
               platform: Platform = Depends(get_platform)) -> BotOut:
    """Rename, or change the settings of a bot that is not running (markets get the
    exchange's rules, as on create)."""
    return BotOut.model_validate(await reconfigure_bot(platform, who.user_id, bot_id, name=body.name,
                                                       config=body.config))


@router.delete("/{bot_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(bot_id: IdPath, who: Principal = Depends(scoped("bots:write")),
           platform: Platform = Depends(get_platform)) -> Response:
    bot_manage.delete_bot(platform, who.user_id, bot_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{bot_id}/start", response_model=BotOut)
def start(bot_id: IdPath, who: Principal = Depends(scoped("bots:write")),
          platform: Platform = Depends(get_platform)) -> BotOut:
    """Mark the bot running for the engine; a bot without an account is 422 on ``account_id``."""
    owner_action(platform, who.user_id, bot_id, "start")
    return BotOut.model_validate(bot_manage.get_bot(platform, who.user_id, bot_id))


@router.post("/{bot_id}/pause", response_model=BotOut)
def pause(bot_id: IdPath, who: Principal = Depends(scoped("bots:write")),
          platform: Platform = Depends(get_platform)) -> BotOut:
    """No new deals or orders; the bot still follows its open deals' fills and cancels, and
    acts on its deals' requests (close at market, add funds). ``start`` resumes it."""
    owner_action(platform, who.user_id, bot_id, "pause")
    return BotOut.model_validate(bot_manage.get_bot(platform, who.user_id, bot_id))


@router.post("/{bot_id}/stop", response_model=BotOut)
def stop(bot_id: IdPath, who: Principal = Depends(scoped("bots:write")),
         platform: Platform = Depends(get_platform)) -> BotOut:
    owner_action(platform, who.user_id, bot_id, "stop")
    return BotOut.model_validate(bot_manage.get_bot(platform, who.user_id, bot_id))


@router.post("/{bot_id}/webhook-secret", response_model=WebhookSecretOut)
def webhook_secret(bot_id: IdPath, who: Principal = Depends(scoped("bots:write")),
                   platform: Platform = Depends(get_platform)) -> WebhookSecretOut:
    """A new signal secret for the bot (the old one stops working); shown once."""
    return WebhookSecretOut(secret=webhooks.new_webhook_secret(platform, who.user_id, bot_id),
                            url_path="/api/v1/signals")


@router.get("/{bot_id}/webhook-policy", response_model=WebhookPolicyOut)
def get_policy(bot_id: IdPath, who: Principal = Depends(scoped("bots:read")),
               platform: Platform = Depends(get_platform)) -> WebhookPolicyOut:
    return WebhookPolicyOut.model_validate(webhooks.webhook_policy(platform, who.user_id, bot_id))


@router.put("/{bot_id}/webhook-policy", response_model=WebhookPolicyOut)
def put_policy(bot_id: IdPath, body: WebhookPolicyIn, who: Principal = Depends(scoped("bots:write")),
               platform: Platform = Depends(get_platform)) -> WebhookPolicyOut:
    policy = webhooks.set_webhook_policy(platform, who.user_id, bot_id, allowed_ips=body.allowed_ips,
                                         max_per_minute=body.max_per_minute)
    return WebhookPolicyOut.model_validate(policy)
