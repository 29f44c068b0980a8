"""The pre-trade limits a user stores for all their accounts (``user_guard_limits``).

Each account's own limits live beside the copy sets (``copysets.GuardLimitsRepository``),
where they were introduced; the engine reads both into one ``GuardPolicy``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from sealbot.domain.errors import NotFound
from sealbot.store.models import UserGuardLimits
from sealbot.store.repositories._base import Repository
from sealbot.store.types import utcnow


class UserGuardLimitsRepository(Repository):
    def get(self, user_id: int) -> dict[str, Any] | None:
        row = self.session.get(UserGuardLimits, user_id)
        return dict(row.limits) if row is not None else None

    def put(self, user_id: int, limits: Mapping[str, Any]) -> dict[str, Any]:
        row = self.session.get(UserGuardLimits, user_id)
        if row is None:
            row = UserGuardLimits(user_id=user_id, limits=dict(limits))
            self.session.add(row)
        else:
            row.limits, row.updated_at = dict(limits), utcnow()
        self.session.flush()
        return dict(row.limits)

    def clear(self, user_id: int) -> None:
        row = self.session.get(UserGuardLimits, user_id)
        if row is None:
            raise NotFound("guard limits", f"of user {user_id}")
        self.session.delete(row)
        self.session.flush()

    # -- system-wide read for the engine --
    def all(self) -> dict[int, dict[str, Any]]:
        return {r.user_id: dict(r.limits) for r in self.session.scalars(sa.select(UserGuardLimits))}
