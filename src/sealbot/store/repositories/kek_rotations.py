"""KEK rotation progress. A rotation is (from_kek -> to_kek) plus a cursor, the last
credential id rewrapped; committing the cursor with each batch makes a killed
rotation resume after the last committed batch."""

from __future__ import annotations

import builtins
from datetime import datetime

import sqlalchemy as sa

from sealbot.domain.errors import NotFound
from sealbot.store.models import KekRotation
from sealbot.store.repositories._base import Repository
from sealbot.store.types import utcnow


class KekRotationRepository(Repository):
    def start_or_resume(self, from_kek: str, to_kek: str) -> KekRotation:
        """The unfinished rotation from ``from_kek`` to ``to_kek``, or a new one."""
        row = self.unfinished(from_kek, to_kek)
        if row is None:
            row = KekRotation(from_kek=from_kek, to_kek=to_kek, cursor=0, done=0)
            self.session.add(row)
            self.session.flush()
        return row

    def unfinished(self, from_kek: str | None = None, to_kek: str | None = None) -> KekRotation | None:
        stmt = sa.select(KekRotation).where(KekRotation.finished_at.is_(None))
        if from_kek is not None:
            stmt = stmt.where(KekRotation.from_kek == from_kek)
        if to_kek is not None:
            stmt = stmt.where(KekRotation.to_kek == to_kek)
        return self.session.scalar(stmt.order_by(KekRotation.id.desc()).limit(1))

    def get(self, rotation_id: int) -> KekRotation:
        row = self.session.get(KekRotation, rotation_id)
        if row is None:
            raise NotFound("kek rotation", rotation_id)
        return row

    def advance(self, rotation_id: int, cursor: int, done_delta: int) -> KekRotation:
        row = self.get(rotation_id)
        if cursor < row.cursor:
            raise ValueError("kek rotation cursor only moves forward")
        row.cursor, row.done = cursor, row.done + done_delta
        return row

    def finish(self, rotation_id: int, at: datetime | None = None) -> KekRotation:
        row = self.get(rotation_id)
        row.finished_at = at or utcnow()
        return row

    def list(self) -> builtins.list[KekRotation]:
        return list(self.session.scalars(sa.select(KekRotation).order_by(KekRotation.id)))
