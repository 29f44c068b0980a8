"""Storage errors that callers act on. ``NotFound`` comes from ``sealbot.domain.errors``."""

from __future__ import annotations

from sealbot.domain.errors import SealbotError


class Conflict(SealbotError):
    """A write lost a race or would duplicate a unique thing (a bot saved by someone
    else since it was read, a client order id journalled twice)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind, self.reason = kind, reason
