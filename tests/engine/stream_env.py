"""Helpers for the candle-stream tests on simex (Binance's kline websocket and KuCoin's):
a hub with one subscriber fed by a ``StreamingSource`` on a public simex venue, simex's
clock moved minute by minute, and waits that fail with a message."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from sealbot.domain import Candle, CandleClosed, Event, Pair
from sealbot.engine.candles import FeedHub, feed_key
from sealbot.engine.stream_pool import StreamPool
from sealbot.engine.streaming import StreamingSource
from sealbot.simex import SimexServer
from sealbot.venues.ccxt_venue import CcxtVenue

from .simex_env import MarketClock

START = 1_700_000_040_000  # a minute boundary
PAIR = Pair("BTC", "USDT")


class Feed:
    """A hub with one subscriber fed by a streaming source on a simex venue of ``exchange``."""

    def __init__(self, sx: SimexServer, exchange: str, pool: StreamPool | None = None, pair: Pair = PAIR) -> None:
        self.sx = sx
        self.venue = CcxtVenue(exchange, urls={"api_base": sx.base_url}, timeout_ms=2000)  # public: no key
        self.hub = FeedHub("1m")
        self.key = feed_key(exchange, self.venue, by_venue=True)
        self.got: list[Candle] = []
        self.hub.subscribe(self.key, pair, "bot", "1m", self._sink)
        self.source = StreamingSource(self.hub, self.key, self.venue, pair, interval=0.2, clock=MarketClock(sx),
                                      retry_min=0.2, retry_max=0.4, pool=pool)

    def _sink(self, ident: str, event: Event) -> None:
        assert isinstance(event, CandleClosed)
        self.got.append(event.candle)

    def opens(self) -> list[int]:
        return [int(c.open_time.timestamp() * 1000) for c in self.got]


async def until(check: Callable[[], bool], seconds: float = 8.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def advance(sx: SimexServer, minutes: int) -> None:
    """Move simex's clock minute by minute (20 s steps), letting pushes go out."""
    for _ in range(minutes * 3):
        sx.admin.set_clock(advance_seconds=20)
        await asyncio.sleep(0.03)


async def same_as_rest(feed: Feed, count: int) -> None:
    """The first ``count`` candles received are the exchange's REST candles, value for value."""
    rest = await feed.venue.fetch_candles(PAIR, "1m", since=datetime.fromtimestamp(START / 1000, UTC), limit=count)
    assert [(c.open, c.high, c.low, c.close, c.volume) for c in feed.got[:count]] == [
        (c.open, c.high, c.low, c.close, c.volume) for c in rest]
