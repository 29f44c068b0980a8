"""Alerts for their owner: list (filtered, paged) and acknowledge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sealbot import audit
from sealbot.services.paging import Page, page_of
from sealbot.services.platform import Platform
from sealbot.store.models import AlertRow


@dataclass(frozen=True, slots=True)
class AlertView:
    id: int
    level: str
    code: str
    message: str
    account_id: int | None
    bot_id: int | None
    created_at: datetime
    acknowledged_at: datetime | None


def _view(row: AlertRow) -> AlertView:
    return AlertView(row.id, row.level, row.code, row.message, row.account_id, row.bot_id, row.created_at,
                     row.acknowledged_at)


def list_alerts(platform: Platform, owner_id: int, *, unacknowledged: bool = False, level: str | None = None,
                limit: int = 50, offset: int = 0) -> Page[AlertView]:
    with platform.uow() as uow:
        rows = [_view(r) for r in uow.alerts.list(owner_id, unacknowledged=unacknowledged, limit=10_000)
                if level is None or r.level == level]
    return page_of(rows, limit, offset)


def acknowledge(platform: Platform, owner_id: int, alert_id: int) -> AlertView:
    with platform.uow() as uow:
        row = uow.alerts.acknowledge(owner_id, alert_id)
        audit.record(uow.session, actor=f"user:{owner_id}", action="alert.acknowledged", subject=f"alert:{alert_id}",
                     details={})
        return _view(row)
