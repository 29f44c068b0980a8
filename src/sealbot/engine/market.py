"""Reference prices and 24h volumes for the guard, kept fresh per account.

The guard is pure and synchronous; this cache is what feeds it. It is refreshed from
the venue (ticker for bid/ask/last, the last 24 hourly candles for the quote volume,
since ccxt's ticker volume fields differ between exchanges) every ``ttl`` seconds. The
candle feed deliberately does not move it: a single trade on an illiquid pair makes a
candle, and the guard must judge against the book, not against what the bot saw.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal

from sealbot.domain import Pair
from sealbot.engine.clock import Clock, SystemClock
from sealbot.engine.guard import MarketSnapshot
from sealbot.venues.base import Venue
from sealbot.venues.errors import VenueError

log = logging.getLogger(__name__)


class MarketData:
    def __init__(self, venue: Venue, clock: Clock | None = None, ttl: float = 30.0) -> None:
        self.venue, self.ttl = venue, ttl
        self.clock: Clock = clock or SystemClock()
        self._snapshots: dict[Pair, MarketSnapshot] = {}
        self._fetched: dict[Pair, float] = {}

    async def refresh(self, pairs: Iterable[Pair], *, force: bool = False) -> None:
        now = self.clock.monotonic()
        for pair in pairs:
            if not force and now - self._fetched.get(pair, -1e18) < self.ttl:
                continue
            try:
                ticker = await self.venue.fetch_ticker(pair)
                hours = await self.venue.fetch_candles(pair, "1h", limit=24)
            except VenueError as exc:
                log.warning("market data %s: %s", pair, exc)
                continue
            volume = sum((c.close * c.volume for c in hours), Decimal(0))
            self._snapshots[pair] = MarketSnapshot(pair, ticker.bid, ticker.ask, ticker.last, volume)
            self._fetched[pair] = now

    def set(self, snapshot: MarketSnapshot) -> None:
        self._snapshots[snapshot.pair] = snapshot
        self._fetched[snapshot.pair] = self.clock.monotonic()

    def snapshot(self, pair: Pair) -> MarketSnapshot:
        return self._snapshots.get(pair) or MarketSnapshot(pair)
