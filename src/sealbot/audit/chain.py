"""The audit chain's canonical encoding and hash.

A record's hash is ``SHA-256`` (lower-case hex) of the UTF-8 bytes of this JSON
object, written with sorted keys, no whitespace (``separators=(",", ":")``) and
non-ASCII characters kept as they are (``ensure_ascii=False``)::

    {"action": ..., "actor": ..., "at": "2026-11-24T13:30:00.123456+00:00",
     "details": {...}, "prev_hash": "<hash of record seq-1>", "seq": 7, "subject": ...}

- ``at`` is UTC, ISO 8601 with exactly six fractional digits and ``+00:00``;
- ``details`` is the parsed details object (itself canonicalised the same way);
- the first record's ``prev_hash`` is 64 zeros (``GENESIS_HASH``).

Anyone can re-check the chain with these rules and a SQL dump; nothing secret enters
the hash. Because ``seq`` and ``prev_hash`` are inside the hash, editing, deleting or
moving a record breaks every later link.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

GENESIS_HASH = "0" * 64


def _default(value: Any) -> Any:
    """JSON forms for the non-JSON types callers commonly put in details."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return format_at(value) if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"audit details: {type(value).__name__} is not JSON-serialisable")


def canonical_json(value: Any) -> str:
    """Sorted-key, compact JSON text; the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False, default=_default)


def normalize_details(details: Any) -> Any:
    """Details as plain JSON values (what will be stored and hashed)."""
    return json.loads(canonical_json(details if details is not None else {}))


def format_at(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("audit: timestamps must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def record_hash(*, seq: int, at: datetime, actor: str, action: str, subject: str, details: Any,
                prev_hash: str) -> str:
    """The hash of one record over its canonical encoding (see the module docstring)."""
    body = {"action": action, "actor": actor, "at": format_at(at), "details": details,
            "prev_hash": prev_hash, "seq": seq, "subject": subject}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()
