"""Request and order budgets shared by every bot on the same IP and account.

An exchange bans an account or an IP that overshoots its limits (Binance: HTTP 429,
then 418 with a ban from 2 minutes to 3 days). One bot never overshoots alone; a
thousand bots on one account do, unless they draw from one budget. So:

* ``RateLimit``: at most ``limit`` units per fixed window of ``window`` seconds, windows
  aligned on the wall clock like the exchange counts them (Binance: "a 1 MINUTE interval
  starts every minute", developers.binance.com/docs/binance-spot-api-docs/rest-api/limits;
  the order count likewise per 10 s and per day). ``acquire`` waits for the next window
  rather than overshooting. Windows counted on the process's monotonic clock (which
  starts at boot) would begin at an arbitrary offset from the exchange's, and two of
  them could put twice the limit into one exchange minute.
* ``Budget``: several ``RateLimit`` at once (orders: 50 per 10 s *and* 160,000 per day)
  plus a block after the exchange said stop: ``Retry-After`` after a 429, and a hard
  back-off after a 418 that doubles on each repeat.
* ``Budgets``: the registry, one budget per IP (request weight) and per account (order
  rate), created with Binance's published limits scaled by a safety ``margin``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from sealbot.engine.clock import Clock, SystemClock

BINANCE_WEIGHT_PER_MINUTE = 6000
BINANCE_ORDERS_PER_10S = 50
BINANCE_ORDERS_PER_DAY = 160_000
BAN_BACKOFF_START = 120.0
BAN_BACKOFF_MAX = 3 * 86_400.0
SYNC_GRACE = 2.0


@dataclass
class RateLimit:
    """A fixed-window counter: ``used`` units spent in the window starting at ``start``."""

    limit: int
    window: float
    start: float = 0.0
    used: int = 0

    def _roll(self, now: float) -> None:
        start = (now // self.window) * self.window
        if start != self.start:
            self.start, self.used = start, 0

    def wait_for(self, units: int, now: float) -> float:
        """Seconds until ``units`` fit (0 if they fit now)."""
        self._roll(now)
        if self.used + units <= self.limit:
            return 0.0
        return self.start + self.window - now

    def take(self, units: int, now: float) -> None:
        self._roll(now)
        self.used += units

    def sync(self, used: int, now: float) -> None:
        """Adopt the exchange's own count (e.g. ``X-MBX-USED-WEIGHT-1M``) when it is higher.

        Not in the window's first ``SYNC_GRACE`` seconds: an answer read then may still
        carry the previous window's count (a request sent before the boundary, or clocks
        a little apart), which would hold the whole new window back."""
        self._roll(now)
        if now - self.start >= SYNC_GRACE:
            self.used = max(self.used, used)


def wall_time_of(clock: Clock) -> Callable[[], float]:
    """The time a budget's windows are aligned on: the wall clock the exchange counts by.
    A ``SystemClock``'s monotonic time starts at boot, so it is ``time.time`` there (its
    subclasses too: the demo's accelerated clock speeds up ``now()``, not the exchange's
    minutes); a test's clock, whose monotonic time is moved by hand, stands for it. Not
    ``Clock.wall``: a budget waits on the clock's ``sleep``, which moves a test's or a
    replay's monotonic time, never the real time ``wall`` gives for such a clock."""
    return time.time if isinstance(clock, SystemClock) else clock.monotonic


class Budget:
    """Units drawn from all ``limits`` together; callers queue in arrival order.

    ``wall`` gives the time the windows are aligned on (``wall_time_of(clock)`` unless
    given); waiting is the clock's ``sleep``. The exchange's own count (``observe_used``)
    is per its wall-clock minute, so it is adopted only when the windows run on the wall
    clock (a ``SystemClock``) or ``wall`` was given to stand for it: on a replay or test
    clock the two windows are unrelated, and an adopted count would wait for a window
    end that clock may never reach."""

    def __init__(self, name: str, limits: list[RateLimit], clock: Clock | None = None,
                 wall: Callable[[], float] | None = None) -> None:
        self.name = name
        self.limits = limits
        self.clock: Clock = clock or SystemClock()
        self._now = wall or wall_time_of(self.clock)
        self._counts_like_exchange = wall is not None or isinstance(self.clock, SystemClock)
        self.blocked_until = 0.0
        self.bans = 0
        self._lock = asyncio.Lock()

    async def acquire(self, units: int = 1) -> float:
        """Wait until ``units`` fit every limit and no block is in force, then take them.
        Returns how long the caller waited."""
        if any(units > limit.limit for limit in self.limits):
            raise ValueError(f"{self.name}: {units} units can never fit a limit")
        waited = 0.0
        async with self._lock:
            while True:
                now = self._now()
                wait = max([self.blocked_until - now] + [limit.wait_for(units, now) for limit in self.limits])
                if wait <= 0:
                    for limit in self.limits:
                        limit.take(units, now)
                    return waited
                await self.clock.sleep(wait)
                waited += wait

    def try_acquire(self, units: int = 1) -> bool:
        """Take ``units`` only if they fit right now (never waits)."""
        now = self._now()
        if self.blocked_until > now or any(limit.wait_for(units, now) > 0 for limit in self.limits):
            return False
        for limit in self.limits:
            limit.take(units, now)
        return True

    def rate_limited(self, retry_after: float | None) -> None:
        """The exchange answered 429: stop until ``Retry-After`` (or the window's end)."""
        now = self._now()
        if retry_after is None:
            # no Retry-After: wait out the shortest window (the one a burst overflows)
            retry_after = min(limit.start + limit.window - now for limit in self.limits)
        self.blocked_until = max(self.blocked_until, now + retry_after)

    def banned(self, retry_after: float | None) -> None:
        """The exchange answered 418 (banned): back off hard, doubling on each repeat."""
        backoff = min(BAN_BACKOFF_START * 2**self.bans, BAN_BACKOFF_MAX)
        self.bans += 1
        now = self._now()
        self.blocked_until = max(self.blocked_until, now + max(backoff, retry_after or 0.0))

    def observe_used(self, used: int) -> None:
        """The exchange's count for the first (shortest) window, from a response header."""
        if self.limits and self._counts_like_exchange:
            self.limits[0].sync(used, self._now())


class Budgets:
    """One budget per IP and per account, shared by every bot that uses them."""

    def __init__(self, clock: Clock | None = None, margin: float = 0.9, weight_per_minute: int =
                 BINANCE_WEIGHT_PER_MINUTE, orders_per_10s: int = BINANCE_ORDERS_PER_10S,
                 orders_per_day: int = BINANCE_ORDERS_PER_DAY) -> None:
        self.clock: Clock = clock or SystemClock()
        self.margin = margin
        self.weight_per_minute, self.orders_per_10s, self.orders_per_day = (
            weight_per_minute, orders_per_10s, orders_per_day)
        self._ip: dict[str, Budget] = {}
        self._account: dict[str, Budget] = {}

    def _scaled(self, value: int) -> int:
        return max(1, int(value * self.margin))

    def for_ip(self, ip: str) -> Budget:
        if ip not in self._ip:
            self._ip[ip] = Budget(f"ip {ip}", [RateLimit(self._scaled(self.weight_per_minute), 60.0)], self.clock)
        return self._ip[ip]

    def for_account(self, account: str) -> Budget:
        if account not in self._account:
            self._account[account] = Budget(
                f"account {account}",
                [RateLimit(self._scaled(self.orders_per_10s), 10.0),
                 RateLimit(self._scaled(self.orders_per_day), 86_400.0)],
                self.clock,
            )
        return self._account[account]
