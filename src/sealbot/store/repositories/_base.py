"""What every repository shares: the session, owner-scoped lookups, insert-if-new."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from sealbot.domain.errors import NotFound
from sealbot.store.models import Base

M = TypeVar("M", bound=Base)


class Repository:
    """Holds the unit of work's session; never commits (the unit of work does)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _owned(self, model: type[M], owner_id: int, ident: int, kind: str) -> M:
        """The row ``ident`` if ``owner_id`` owns it; otherwise NotFound, exactly as if it did not exist."""
        table: Any = model
        row: M | None = self.session.scalar(sa.select(model).where(table.id == ident, table.owner_id == owner_id))
        if row is None:
            raise NotFound(kind, ident)
        return row

    def _insert_if_new(self, model: type[Base], values: Mapping[str, Any], conflict: Sequence[str]) -> int | None:
        """INSERT ... ON CONFLICT DO NOTHING; the new row's id, or None when the unique key existed.

        One statement on both backends, so a duplicate neither raises nor poisons the
        caller's transaction (no savepoint needed).
        """
        table: Any = model.__table__
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql":
            stmt: Any = postgresql.insert(table).values(**values).on_conflict_do_nothing(index_elements=list(conflict))
        elif dialect == "sqlite":
            stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing(index_elements=list(conflict))
        else:  # pragma: no cover - sealbot supports SQLite and PostgreSQL only
            raise RuntimeError(f"unsupported database dialect {dialect!r}")
        self.session.flush()
        new_id = self.session.execute(stmt.returning(table.c.id)).scalar_one_or_none()
        return int(new_id) if new_id is not None else None
