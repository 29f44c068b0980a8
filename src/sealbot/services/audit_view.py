"""A user's own audit entries (written by them or about them), newest first."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sealbot.services.paging import Page
from sealbot.services.platform import Platform
from sealbot.store.repositories.web import UserAudit


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]


def my_audit(platform: Platform, owner_id: int, *, action: str | None = None, limit: int = 50,
             offset: int = 0) -> Page[AuditEntry]:
    limit, offset = max(1, min(limit, 200)), max(0, offset)
    with platform.uow() as uow:
        rows, total = UserAudit(uow.session).for_party(f"user:{owner_id}", action=action, limit=limit, offset=offset)
        items = [AuditEntry(r.seq, r.at, r.actor, r.action, r.subject, json.loads(r.details)) for r in rows]
    return Page(items, total, limit, offset)
