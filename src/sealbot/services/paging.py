"""One page of a list: what every list endpoint returns (limit/offset pagination)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
MAX_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def page_of(rows: Sequence[T], limit: int, offset: int) -> Page[T]:
    """Slice an owner-scoped list (the lists are per user and small; the database does
    the heavy filtering)."""
    limit = max(1, min(limit, MAX_LIMIT))
    offset = max(0, offset)
    return Page(list(rows[offset:offset + limit]), len(rows), limit, offset)
