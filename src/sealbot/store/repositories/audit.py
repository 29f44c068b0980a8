"""Storage side of the audit log: the chain head lock, appends, ordered reads.

The hash chain itself (canonical encoding, hashing, verification) is ``sealbot.audit``;
this repository only moves rows. It never updates or deletes an ``audit_log`` row (the
database refuses that anyway, see the initial migration).

Serialising appenders: ``lock_head`` takes the chain head row for the rest of the
transaction — ``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite a no-op UPDATE of the
head row, which takes SQLite's single write lock (waiting up to the busy timeout).
Two appenders therefore never read the same head, so the chain cannot fork; the
unique ``seq`` is a second line of defence.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import sqlalchemy as sa

from sealbot.store.models import AuditHead, AuditRecord
from sealbot.store.repositories._base import Repository

GENESIS_HASH = "0" * 64


class AuditRepository(Repository):
    def lock_head(self) -> AuditHead:
        """The chain head, locked until the transaction ends (created on first use)."""
        if self.session.get_bind().dialect.name == "sqlite":
            self.session.execute(sa.update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq)
                                 .execution_options(synchronize_session=False))
        head = self.session.scalar(
            sa.select(AuditHead).where(AuditHead.id == 1).with_for_update().execution_options(populate_existing=True))
        if head is None:  # schema made by create_all, not the migration
            head = AuditHead(id=1, seq=0, hash=GENESIS_HASH)
            self.session.add(head)
            self.session.flush()
        return head

    def head(self) -> AuditHead | None:
        """The head row as stored (no lock), for verification."""
        return self.session.scalar(
            sa.select(AuditHead).where(AuditHead.id == 1).execution_options(populate_existing=True))

    def append(self, head: AuditHead, *, seq: int, at: datetime, actor: str, action: str, subject: str,
               details: str, prev_hash: str, hash: str) -> AuditRecord:
        """Insert the next record and move the (locked) head to it."""
        row = AuditRecord(seq=seq, at=at, actor=actor, action=action, subject=subject, details=details,
                          prev_hash=prev_hash, hash=hash)
        self.session.add(row)
        head.seq, head.hash = seq, hash
        self.session.flush()
        return row

    def in_order(self, batch_size: int = 1000) -> Iterator[AuditRecord]:
        """Every record by ascending seq, read in batches (keyset on seq)."""
        after: int | None = None
        while True:
            stmt = sa.select(AuditRecord).order_by(AuditRecord.seq).limit(batch_size)
            if after is not None:
                stmt = stmt.where(AuditRecord.seq > after)
            rows = list(self.session.scalars(stmt))
            yield from rows
            if len(rows) < batch_size:
                return
            after = rows[-1].seq

    def recent(self, limit: int = 50, *, action: str | None = None, subject: str | None = None) -> list[AuditRecord]:
        stmt = sa.select(AuditRecord)
        if action is not None:
            stmt = stmt.where(AuditRecord.action == action)
        if subject is not None:
            stmt = stmt.where(AuditRecord.subject == subject)
        return list(self.session.scalars(stmt.order_by(AuditRecord.seq.desc()).limit(limit)))

    def count(self, *, action: str | None = None) -> int:
        stmt = sa.select(sa.func.count()).select_from(AuditRecord)
        if action is not None:
            stmt = stmt.where(AuditRecord.action == action)
        return int(self.session.scalar(stmt) or 0)
