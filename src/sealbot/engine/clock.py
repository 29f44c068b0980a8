"""The engine's only source of time, injected so tests are deterministic.

Bots never read a clock (time reaches them in events); the engine's shell does, for
rate budgets, polling intervals and timers. ``FakeClock`` lets a test advance time
instead of sleeping.

``now()`` is the engine's time, which a replay or the demo may run fast; ``wall()`` is
the time an exchange judges a signed request's freshness by, which only a test that
stands in for the exchange's clock may move.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def now(self) -> datetime: ...

    def wall(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall-clock time and real sleeping."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wall(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """Time that moves only when a sleeper asks it to: ``sleep(s)`` advances it by ``s``.

    Sleepers still yield to the event loop, so concurrent waiters interleave in order."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.t = start
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    def wall(self) -> datetime:
        """The test's clock stands for the exchange's too."""
        return self.now()

    def advance(self, seconds: float) -> None:
        self.t += seconds

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.slept.append(seconds)
            self.t += seconds
        await asyncio.sleep(0)
