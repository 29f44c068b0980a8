"""Appending to the audit log within the caller's transaction.

``record`` adds one link to the chain in the *caller's* session: the audit record
commits or rolls back together with the change it describes. The head lock
(``AuditRepository.lock_head``) serialises concurrent appenders, so the chain never
forks.

Details must never hold a secret — no API key, secret, passphrase, password, token or
sealed blob. The audit log is readable by operators and copied into backups; it is
hash-chained, not encrypted, and cannot be edited afterwards to remove a leak. Callers
pass identifiers, hints (an API key's last four characters), reasons and counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from sealbot.audit.chain import canonical_json, normalize_details, record_hash
from sealbot.store.models import AuditRecord
from sealbot.store.repositories.audit import AuditRepository
from sealbot.store.types import utcnow


def record(session: Session, *, actor: str | int, action: str, subject: str | int = "",
           details: Mapping[str, Any] | None = None, at: datetime | None = None) -> AuditRecord:
    """Append one record to the chain inside ``session``'s transaction (not committed here).

    ``actor``: who acted (``user:7``, ``system``, ``signer``); ``action``: dotted verb
    (``account.linked``, ``credential.destroyed``); ``subject``: what it acted on
    (``account:12``). Integer actors/subjects are written as their decimal text.
    """
    repo = AuditRepository(session)
    head = repo.lock_head()
    when = (at or utcnow()).astimezone(UTC)  # microseconds, as both backends store them
    clean = normalize_details(dict(details or {}))
    seq, prev = head.seq + 1, head.hash
    actor_text, subject_text = str(actor), str(subject)
    digest = record_hash(seq=seq, at=when, actor=actor_text, action=action, subject=subject_text,
                         details=clean, prev_hash=prev)
    return repo.append(head, seq=seq, at=when, actor=actor_text, action=action, subject=subject_text,
                       details=canonical_json(clean), prev_hash=prev, hash=digest)


class AuditLog:
    """``record`` bound to a session; fits custody's ``AuditSink`` protocol
    (``record(actor, action, subject, details)``)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, actor: str, action: str, subject: str, details: Mapping[str, object] | None = None) -> None:
        record(self.session, actor=actor, action=action, subject=subject, details=details)
