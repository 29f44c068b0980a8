"""What every repository shares: the session, owner-scoped lookups, insert-if-new."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, TypeVar

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
        """The row ``ident`` if ``owner_id`` owns it; otherwise NotFound, exactly as if it did not exist.

        By primary key, so a row the session already holds costs no query: the engine
        checks the same account and bot rows for every order and deal of a candle."""
        row: M | None = self.session.get(model, ident)
        if row is None or getattr(row, "owner_id") != owner_id:  # noqa: B009 - every owned model has it
            raise NotFound(kind, ident)
        return row

    def _insert_new(self, model: type[Base], rows: Sequence[Mapping[str, Any]], conflict: Sequence[str],
                    returning: str) -> builtins.list[Any]:
        """A multi-row INSERT ... ON CONFLICT DO NOTHING; the ``returning``
        column of the rows that were new. What ``_insert_if_new`` does for one row, for a
        batch (a candle's orders) at the cost of one statement."""
        stmt = _insert_statement(self.session.get_bind().dialect.name, model, tuple(conflict), returning)
        self.session.flush()
        # a list of rows: SQLAlchemy sends them as multi-row VALUES ("insertmanyvalues"), in
        # batches within the database's parameter limits, the statement compiled once
        return builtins.list(self.session.execute(stmt, builtins.list(rows)).scalars())

    def _insert_if_new(self, model: type[Base], values: Mapping[str, Any], conflict: Sequence[str]) -> int | None:
        """INSERT ... ON CONFLICT DO NOTHING; the new row's id, or None when the unique key existed.

        One statement on both backends, so a duplicate neither raises nor poisons the
        caller's transaction (no savepoint needed).
        """
        new = self._insert_new(model, [values], conflict, "id")
        return int(new[0]) if new else None


@cache
def _insert_statement(dialect: str, model: type[Base], conflict: tuple[str, ...], returning: str) -> Any:
    """Built once per statement shape: SQLAlchemy computes a statement's cache key on
    every execution of a new statement object (about 30 us for this one), and only once
    for one it has seen; the engine inserts orders and fills on every candle and fill."""
    table: Any = model.__table__
    insert: Any = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:  # pragma: no cover - sealbot supports SQLite and PostgreSQL only
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    return insert(table).on_conflict_do_nothing(index_elements=list(conflict)).returning(table.c[returning])
