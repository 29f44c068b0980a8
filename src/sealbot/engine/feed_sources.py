"""The candle sources of one engine process: one per (feed, pair) some bot watches.

The ``FeedHub`` says when a stream gets its first bot and loses its last; this keeps a
source for each one in between, streaming over the exchange's websocket where the venue
offers it (``engine.streaming``, its connections shared through the process's
``StreamPool``) and polling over REST otherwise (``engine.candles.PollingSource``),
through the venue of an account on that feed. When that account stops, the source moves
to another account's venue on the same feed, so the other accounts' bots keep their
candles."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sealbot.domain import Pair
from sealbot.engine.candles import FeedHub, PollingSource
from sealbot.engine.clock import Clock
from sealbot.engine.stream_pool import StreamPool
from sealbot.engine.streaming import StreamingSource, stream_exchange
from sealbot.venues.base import Venue

Source = PollingSource | StreamingSource


class FeedSources:
    """Opens and closes the sources (``open`` and ``close`` are the hub's first-subscriber
    and last-unsubscribed hooks; see module doc). ``venue_for(feed)``
    is a venue of an account on ``feed`` (None when none is left); ``streaming`` and
    ``background`` come from the runner's settings."""

    def __init__(self, hub: FeedHub, venue_for: Callable[[str], Venue | None], pool: StreamPool, *, clock: Clock,
                 interval: float, streaming: bool, retry_max: float, background: bool) -> None:
        self.venue_for, self.pool, self.clock = venue_for, pool, clock
        self.interval, self.streaming, self.retry_max, self.background = interval, streaming, retry_max, background
        self.hub = hub
        self.sources: dict[tuple[str, Pair], Source] = {}

    def open(self, feed: str, pair: Pair) -> None:
        """A stream's first bot: stream it (or poll it) through the venue of an account on that feed."""
        venue = self.venue_for(feed)
        if venue is None:
            return
        source: Source
        if self.streaming and stream_exchange(venue) is not None:
            source = StreamingSource(self.hub, feed, venue, pair, interval=self.interval, clock=self.clock,
                                     retry_max=self.retry_max, pool=self.pool)
        else:
            source = PollingSource(self.hub, feed, venue, pair, interval=self.interval, clock=self.clock)
        self.sources[(feed, pair)] = source
        if self.background:
            source.start()

    def close(self, feed: str, pair: Pair) -> None:
        source = self.sources.pop((feed, pair), None)
        if source is not None:
            task = asyncio.ensure_future(source.stop())
            task.add_done_callback(lambda _t: None)

    async def poll_once(self) -> int:
        """Poll every source once (what the background tasks do each interval)."""
        return sum([await source.poll_once() for source in list(self.sources.values())])

    def hand_over(self, closing: Venue, feed: str) -> None:
        """``closing``'s account stopped: its sources that other accounts still read use
        another venue on ``feed`` from now on."""
        for source in self.sources.values():
            if source.venue is closing:
                source.venue = self.venue_for(feed) or source.venue

    async def stop(self) -> None:
        for source in list(self.sources.values()):
            await source.stop()
        self.sources.clear()
