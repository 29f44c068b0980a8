"""A copy of an immutable record with some fields changed, whichever kind it is.

The code base holds two kinds: ``msgspec`` structs (bot states, orders, fills, deals,
commands, the engine's journal records: built in C because the engine makes them on
every step) and dataclasses (pairs, market rules, events, settings). ``dataclasses.replace``
refuses a struct and ``msgspec.structs.replace`` a dataclass, and mypy sees both kinds
as dataclasses, so it cannot tell a wrong call from a right one; code that may meet
either kind calls this.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from msgspec import Struct, structs

T = TypeVar("T")


def evolve(record: T, **changes: Any) -> T:
    if isinstance(record, Struct):
        return structs.replace(record, **changes)
    return dataclasses.replace(record, **changes)  # type: ignore[type-var]


__all__ = ["evolve"]
