"""Shared route pieces: bounded id/paging parameters and page conversion."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Path, Query
from pydantic import BaseModel

from sealbot.services.paging import Page
from sealbot.web.schemas import MAX_ID, PageOut

M = TypeVar("M", bound=BaseModel)

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def paged(page: Page[Any], model: type[M], convert: Callable[[Any], M] | None = None) -> PageOut[M]:
    to = convert or model.model_validate
    return PageOut[model](items=[to(x) for x in page.items], total=page.total,  # type: ignore[valid-type]
                          limit=page.limit, offset=page.offset)
