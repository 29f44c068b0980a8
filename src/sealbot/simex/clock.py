"""The market clock: what time it is on the exchange's replayed market.

Two modes, switchable at any time:

* manual (``speed == 0``): time stands still until someone calls ``set`` or
  ``advance`` (tests step it deterministically);
* accelerated replay (``speed > 0``): ``speed`` simulated seconds pass per real
  second (``speed=1`` is real time, ``60`` replays one minute candle per second).

The clock never goes backwards: fills that happened cannot un-happen.
Request freshness (``timestamp``/``recvWindow``) is checked against the real wall
clock, as a real exchange does, not against this clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ClockError(ValueError):
    """A clock change that cannot be made (negative speed, going back in time)."""


class MarketClock:
    """Simulated exchange time in epoch milliseconds."""

    def __init__(self, start_ms: int, speed: float = 0.0, wall: Callable[[], float] = time.monotonic) -> None:
        if speed < 0:
            raise ClockError("speed must be >= 0")
        self._wall = wall
        self._anchor_ms = start_ms
        self._anchor_wall = wall()
        self._speed = speed
        self._lock = threading.Lock()
        self.start_ms = start_ms

    @property
    def speed(self) -> float:
        return self._speed

    def now_ms(self) -> int:
        """Current simulated time."""
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> int:
        if self._speed == 0:
            return self._anchor_ms
        return self._anchor_ms + int((self._wall() - self._anchor_wall) * 1000 * self._speed)

    def set_speed(self, speed: float) -> None:
        """Change the replay speed from now on (0 stops the clock)."""
        if speed < 0:
            raise ClockError("speed must be >= 0")
        with self._lock:
            self._anchor_ms = self._now_locked()
            self._anchor_wall = self._wall()
            self._speed = speed

    def set(self, at_ms: int) -> None:
        """Jump to ``at_ms`` (not earlier than now)."""
        with self._lock:
            now = self._now_locked()
            if at_ms < now:
                raise ClockError(f"cannot go back in time from {now} to {at_ms}")
            self._anchor_ms = at_ms
            self._anchor_wall = self._wall()

    def advance(self, seconds: float) -> int:
        """Move forward by ``seconds`` of simulated time; returns the new time."""
        if seconds < 0:
            raise ClockError("cannot advance by a negative duration")
        with self._lock:
            self._anchor_ms = self._now_locked() + int(seconds * 1000)
            self._anchor_wall = self._wall()
            return self._anchor_ms
