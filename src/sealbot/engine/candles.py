"""Market data: one subscription per (venue, pair), fanned out to every bot watching it.

A thousand bots on BTC/USDT must not make a thousand requests: the ``FeedHub`` keeps one
source per (venue, pair) at the base timeframe, aggregates its closed candles into
each timeframe some bot asked for, computes the indicators bots use as start
conditions (with ``talipp``, shared per pair/timeframe/indicator, not per bot) and
delivers ``CandleClosed`` and ``IndicatorUpdated`` events to each subscriber's sink.

Sources: ``PollingSource`` asks the venue for recent candles every ``interval`` seconds
(REST, works on every exchange and on simex); a replayed stream (bench, tests) simply
calls ``FeedHub.publish``. Indicators are floats inside talipp; they never become an
order amount, and reach bots as Decimal.

What "the same venue" means is ``feed_key``: the exchange *and* the endpoint its candles
come from (``engine.market.venue_key``, the identity reference prices are shared
under), so two simex instances both called "binance", or a testnet and the real
exchange, never share a stream and mix their candles; a paper venue shares its data
venue's stream (only the candles: its orders and balances stay its own), and one
without a data venue shares with no one. ``sealbot ingest`` names the venue identity it
polled in each candle, and the worker's ``MarketQueue`` sets ``FeedHub.by_venue`` so its
streams are keyed so too. Only a replayed stream that calls ``publish`` by exchange name
(bench, tests) has streams keyed by exchange name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from talipp import indicators as talipp_indicators

from sealbot.bots.base import Interest
from sealbot.domain import Candle, CandleClosed, Event, IndicatorUpdated, Pair, timeframe_seconds
from sealbot.engine.clock import Clock, SystemClock
from sealbot.engine.market import venue_key
from sealbot.engine.triggers import TriggerIndex
from sealbot.venues.base import Venue
from sealbot.venues.errors import VenueError

log = logging.getLogger(__name__)

Sink = Callable[[str, Event], None]
"""Receives (subscriber id, event); must not block (queue the work, do not do it)."""

# name -> (talipp class, input): "close" indicators take a close price.
INDICATORS: dict[str, Any] = {
    "rsi": talipp_indicators.RSI,
    "sma": talipp_indicators.SMA,
    "ema": talipp_indicators.EMA,
}


def feed_key(exchange: str, venue: Venue, *, by_venue: bool) -> str:
    """The stream an account on ``exchange`` through ``venue`` reads candles from: the
    identity of the venue its candles come from (``by_venue``: the engine polls them
    itself, or the ingestor publishes them under that identity), else the exchange name
    (a replay publishing by name)."""
    return venue_key(venue, candles=True) if by_venue else exchange


def bucket_start(at: datetime, seconds: int) -> datetime:
    """Start of the ``seconds``-long bucket holding ``at`` (aligned on the Unix epoch, as
    exchanges align candles)."""
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


class CandleAggregator:
    """Base-timeframe candles in, closed ``timeframe`` candles out.

    A bucket is emitted as soon as its last base candle arrives, or, when base candles
    are missing (an exchange outage), when a later bucket starts."""

    def __init__(self, base: str, timeframe: str) -> None:
        self.base_s, self.target_s = timeframe_seconds(base), timeframe_seconds(timeframe)
        if self.target_s % self.base_s:
            raise ValueError(f"timeframe {timeframe} is not a multiple of the base timeframe {base}")
        self.timeframe = timeframe
        self._open: Candle | None = None

    def add(self, candle: Candle) -> list[Candle]:
        out: list[Candle] = []
        start = bucket_start(candle.open_time, self.target_s)
        current = self._open
        if current is not None and current.open_time != start:
            if start < current.open_time:
                return []  # an old candle replayed: already accounted for
            out.append(current)
            current = None
        if current is None:
            current = Candle(candle.pair, self.timeframe, start, candle.open, candle.high, candle.low,
                             candle.close, candle.volume)
        else:
            current = Candle(candle.pair, self.timeframe, start, current.open, max(current.high, candle.high),
                             min(current.low, candle.low), candle.close, current.volume + candle.volume)
        if candle.close_time >= current.close_time:
            out.append(current)
            current = None
        self._open = current
        return out


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    name: str
    period: int
    timeframe: str

    def __post_init__(self) -> None:
        if self.name not in INDICATORS:
            raise ValueError(f"indicator: {self.name!r} is not one of {sorted(INDICATORS)}")
        if self.period < 1:
            raise ValueError("indicator: period must be at least 1")


@dataclass
class _Subscriber:
    ident: str
    timeframe: str
    indicators: tuple[IndicatorSpec, ...]
    sink: Sink
    key: int  # subscription order: the key in its timeframe's trigger index


@dataclass
class _Timeframe:
    """The subscribers of one timeframe, indexed by what can wake them."""

    subscribers: dict[int, _Subscriber] = field(default_factory=dict)
    triggers: TriggerIndex = field(default_factory=TriggerIndex)


@dataclass
class _Stream:
    """Everything derived from one (feed, pair) base stream."""

    base: str
    aggregators: dict[str, CandleAggregator] = field(default_factory=dict)
    indicators: dict[IndicatorSpec, Any] = field(default_factory=dict)
    subscribers: dict[str, _Subscriber] = field(default_factory=dict)
    by_timeframe: dict[str, _Timeframe] = field(default_factory=dict)
    by_indicator: dict[IndicatorSpec, dict[int, _Subscriber]] = field(default_factory=dict)
    last_open: datetime | None = None


class FeedHub:
    """Subscriptions keyed by (feed, pair); one stream each, however many bots. ``feed``
    names where the stream's candles come from (``feed_key``)."""

    def __init__(self, base_timeframe: str = "1m") -> None:
        self.base = base_timeframe
        self._streams: dict[tuple[str, Pair], _Stream] = {}
        self._seq = 0
        # streams named by venue identity even where the runner polls none itself: set by
        # whoever publishes them so (the scale-out worker's MarketQueue)
        self.by_venue = False
        self.on_first_subscriber: Callable[[str, Pair], None] | None = None
        self.on_last_unsubscribed: Callable[[str, Pair], None] | None = None

    def subscribe(self, feed: str, pair: Pair, ident: str, timeframe: str, sink: Sink,
                  indicators: tuple[IndicatorSpec, ...] = (), interest: Interest = Interest.ALWAYS) -> None:
        """Deliver ``timeframe`` candles to ``sink`` whenever they reach ``interest``
        (every candle unless told otherwise; ``set_interest`` changes it), and every
        update of ``indicators``."""
        key = (feed, pair)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream(self.base)
            if self.on_first_subscriber:
                self.on_first_subscriber(feed, pair)
        self.unsubscribe(feed, pair, ident, _keep_stream=True)
        self._seq += 1
        sub = _Subscriber(ident, timeframe, indicators, sink, self._seq)
        stream.subscribers[ident] = sub
        for tf in {timeframe, *(spec.timeframe for spec in indicators)}:
            if tf not in stream.aggregators:
                stream.aggregators[tf] = CandleAggregator(self.base, tf)
        group = stream.by_timeframe.setdefault(timeframe, _Timeframe())
        group.subscribers[sub.key] = sub
        group.triggers.set(sub.key, interest)
        for spec in indicators:
            if spec not in stream.indicators:
                stream.indicators[spec] = INDICATORS[spec.name](spec.period)
            stream.by_indicator.setdefault(spec, {})[sub.key] = sub

    def set_interest(self, feed: str, pair: Pair, ident: str, interest: Interest) -> None:
        """From now on, wake ``ident`` only with candles that reach ``interest``."""
        stream = self._streams.get((feed, pair))
        sub = stream.subscribers.get(ident) if stream is not None else None
        if stream is not None and sub is not None:
            stream.by_timeframe[sub.timeframe].triggers.set(sub.key, interest)

    def hold_awake(self, feed: str, pair: Pair, ident: str, held: bool) -> None:
        """While held, every candle reaches ``ident`` whatever its interest (its owner
        still has events queued for it that may change that interest)."""
        stream = self._streams.get((feed, pair))
        sub = stream.subscribers.get(ident) if stream is not None else None
        if stream is not None and sub is not None:
            stream.by_timeframe[sub.timeframe].triggers.hold(sub.key, held)

    def unsubscribe(self, feed: str, pair: Pair, ident: str, *, _keep_stream: bool = False) -> None:
        key = (feed, pair)
        stream = self._streams.get(key)
        if stream is None or ident not in stream.subscribers:
            return
        sub = stream.subscribers.pop(ident)
        group = stream.by_timeframe[sub.timeframe]
        del group.subscribers[sub.key]
        group.triggers.discard(sub.key)
        for spec in sub.indicators:
            stream.by_indicator[spec].pop(sub.key, None)
        if not stream.subscribers and not _keep_stream:
            del self._streams[key]
            if self.on_last_unsubscribed:
                self.on_last_unsubscribed(feed, pair)

    def streams(self) -> list[tuple[str, Pair]]:
        return list(self._streams)

    def subscriber_count(self, feed: str, pair: Pair) -> int:
        stream = self._streams.get((feed, pair))
        return len(stream.subscribers) if stream else 0

    def last_open(self, feed: str, pair: Pair) -> datetime | None:
        stream = self._streams.get((feed, pair))
        return stream.last_open if stream else None

    def publish(self, feed: str, candle: Candle) -> int:
        """Feed one closed base candle; returns how many events were delivered (candles
        only to the subscribers they can wake)."""
        stream = self._streams.get((feed, candle.pair))
        if stream is None or (stream.last_open is not None and candle.open_time <= stream.last_open):
            return 0
        stream.last_open = candle.open_time
        delivered = 0
        closes = [(timeframe, closed) for timeframe, aggregator in stream.aggregators.items()
                  for closed in aggregator.add(candle)]
        # Indicator values of the candles closing now (any timeframe) are known at this
        # moment: bots hear them before the closes, so a decision on a close uses the
        # current value, not the previous candle's (the backtester delivers them so too).
        for _, closed in closes:
            for spec, value in self._update_indicators(stream, closed):
                update = IndicatorUpdated(closed.pair, spec.timeframe, spec.name, spec.period, value,
                                          closed.close_time)
                for sub in list(stream.by_indicator.get(spec, {}).values()):
                    sub.sink(sub.ident, update)
                    delivered += 1
        for timeframe, closed in closes:
            group = stream.by_timeframe.get(timeframe)
            if group is None:
                continue
            event = CandleClosed(closed)
            # only the subscribers this candle can wake: O(log n + woken), not O(n)
            for key in group.triggers.woken(closed.low, closed.high, closed.close_time):
                woken = group.subscribers.get(key)  # None: a sink unsubscribed it just now
                if woken is not None:
                    woken.sink(woken.ident, event)
                    delivered += 1
        return delivered

    @staticmethod
    def _update_indicators(stream: _Stream, candle: Candle) -> list[tuple[IndicatorSpec, Decimal]]:
        out: list[tuple[IndicatorSpec, Decimal]] = []
        for spec, indicator in stream.indicators.items():
            if spec.timeframe != candle.timeframe:
                continue
            indicator.add(float(candle.close))
            value = indicator[-1] if len(indicator) else None
            if value is not None:
                out.append((spec, Decimal(repr(float(value))).quantize(Decimal("0.0001"))))
        return out


class PollingSource:
    """Keeps one (feed, pair) stream fed by polling ``venue``'s closed candles (a venue of
    that feed: any account's on that endpoint)."""

    def __init__(self, hub: FeedHub, feed: str, venue: Venue, pair: Pair, *, interval: float = 5.0,
                 clock: Clock | None = None, history: int = 3) -> None:
        self.hub, self.feed, self.venue, self.pair = hub, feed, venue, pair
        self.interval, self.history = interval, history
        self.clock: Clock = clock or SystemClock()
        self._task: asyncio.Task[None] | None = None

    async def poll_once(self) -> int:
        """Fetch recent base candles and publish the closed ones not yet seen.

        Closed means closed when the request went out: the answer holds the forming
        candle too, and a minute that ends while the answer travels would otherwise be
        published with the values it had when the exchange answered, as if complete."""
        since = self.hub.last_open(self.feed, self.pair)
        now = self.clock.now()
        candles = await self.venue.fetch_candles(self.pair, self.hub.base, since=since, limit=None if since
                                                 else self.history)
        delivered = 0
        for candle in sorted(candles, key=lambda c: c.open_time):
            if candle.close_time <= now:
                delivered += self.hub.publish(self.feed, candle)
        return delivered

    async def run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except VenueError as exc:  # retried next interval; the error is logged, not hidden
                log.warning("feed %s %s: poll failed: %s", self.feed, self.pair, exc)
            await self.clock.sleep(self.interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"feed {self.feed} {self.pair}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
