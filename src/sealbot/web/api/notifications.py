"""Alert delivery channels: list, add (a webhook's signing key is shown once), change,
rotate a webhook's key (shown once again), delete, send a test alert. Scoped like alerts
(``alerts:read`` / ``alerts:write``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Response, status
from pydantic import Field

from sealbot.services import notifications
from sealbot.services.auth import Principal
from sealbot.services.platform import Platform
from sealbot.web.api.common import IdPath
from sealbot.web.deps import get_platform, scoped
from sealbot.web.schemas import Model

router = APIRouter(prefix="/api/v1")

Kind = Literal["webhook", "email", "telegram"]
Level = Literal["info", "warning", "critical"]


class ChannelIn(Model):
    kind: Kind
    target: str = Field(min_length=1, max_length=2048,
                        description="webhook: an http(s) URL; email: one address; telegram: a chat id or @channel")
    min_level: Level = Field(default="warning", description="alerts below this level are not sent here")
    enabled: bool = True


class ChannelPatch(Model):
    enabled: bool | None = None
    min_level: Level | None = None


class ChannelOut(Model):
    id: int
    kind: str
    target: str
    min_level: str
    enabled: bool
    created_at: datetime
    last_delivery_at: datetime | None = Field(description="when an alert last went out through this channel")
    last_error: str | None = Field(description="why the last failed delivery failed (cleared by a success)")
    last_error_at: datetime | None


class ChannelCreatedOut(ChannelOut):
    secret: str | None = Field(description="webhook only: the HMAC-SHA256 key that signs every request "
                                           "(X-Sealbot-Signature); shown once, never again")


class SendResultOut(Model):
    ok: bool
    error: str | None


@router.get("/notifications", response_model=list[ChannelOut], tags=["notifications"])
def list_channels(who: Principal = Depends(scoped("alerts:read")),
                  platform: Platform = Depends(get_platform)) -> list[ChannelOut]:
    return [ChannelOut.model_validate(c) for c in notifications.list_channels(platform, who.user_id)]


@router.post("/notifications", status_code=status.HTTP_201_CREATED, response_model=ChannelCreatedOut,
             tags=["notifications"])
def create_channel(body: ChannelIn, who: Principal = Depends(scoped("alerts:write")),
                   platform: Platform = Depends(get_platform)) -> ChannelCreatedOut:
    """Add a channel. For a webhook, the response carries its signing key: the only time it is shown."""
    created = notifications.add_channel(platform, who.user_id, body.kind, body.target, min_level=body.min_level,
                                        enabled=body.enabled)
    view = ChannelOut.model_validate(created.channel)
    return ChannelCreatedOut(**view.model_dump(), secret=created.secret)


@router.get("/notifications/{channel_id}", response_model=ChannelOut, tags=["notifications"])
def get_channel(channel_id: IdPath, who: Principal = Depends(scoped("alerts:read")),
                platform: Platform = Depends(get_platform)) -> ChannelOut:
    return ChannelOut.model_validate(notifications.get_channel(platform, who.user_id, channel_id))


@router.patch("/notifications/{channel_id}", response_model=ChannelOut, tags=["notifications"])
def update_channel(channel_id: IdPath, body: ChannelPatch, who: Principal = Depends(scoped("alerts:write")),
                   platform: Platform = Depends(get_platform)) -> ChannelOut:
    """Switch a channel on or off, or change its minimum level (the target is fixed: add a new channel)."""
    return ChannelOut.model_validate(notifications.update_channel(platform, who.user_id, channel_id,
                                                                  enabled=body.enabled, min_level=body.min_level))


@router.post("/notifications/{channel_id}/secret", response_model=ChannelCreatedOut, tags=["notifications"])
def rotate_secret(channel_id: IdPath, who: Principal = Depends(scoped("alerts:write")),
                  platform: Platform = Depends(get_platform)) -> ChannelCreatedOut:
    """A new signing key for a webhook channel, shown once; the old key stops working at once."""
    rotated = notifications.rotate_webhook_secret(platform, who.user_id, channel_id)
    return ChannelCreatedOut(**ChannelOut.model_validate(rotated.channel).model_dump(), secret=rotated.secret)


@router.delete("/notifications/{channel_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["notifications"])
def delete_channel(channel_id: IdPath, who: Principal = Depends(scoped("alerts:write")),
                   platform: Platform = Depends(get_platform)) -> Response:
    notifications.delete_channel(platform, who.user_id, channel_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/notifications/{channel_id}/test", response_model=SendResultOut, tags=["notifications"])
async def send_test(channel_id: IdPath, who: Principal = Depends(scoped("alerts:write")),
                    platform: Platform = Depends(get_platform)) -> SendResultOut:
    """Send an info-level test alert through this channel now; the outcome is also kept on the channel."""
    result = await notifications.send_test(platform, who.user_id, channel_id)
    return SendResultOut(ok=result.ok, error=result.error)
