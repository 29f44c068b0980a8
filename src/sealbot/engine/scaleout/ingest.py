"""Market data over the broker: one ingestor per venue (exchange endpoint) and egress IP
polls closed candles and publishes them to a topic exchange; workers bind only what
they run.

Every message names the venue it came from: the identity reference prices and candle
streams are shared under in the engine (``engine.market.venue_key``, e.g.
``binance@https://api.binance.com,...`` or ``binance@http://127.0.0.1:8001`` for a
simex), since an exchange name alone cannot tell Binance's testnet from Binance. In the
body as it is; in the routing key as one topic word, ``venue_word``:
``<exchange>@<12 hex digits of the identity's SHA-256>`` (no dot inside, whatever the
URLs hold). Routing key: ``<venue word>.<BASE><QUOTE>.<timeframe>`` (e.g.
``binance@f6a83bae3d02.BTCUSDT.1m``) on the topic exchange ``<prefix>.market``. A worker
in ``market_data = "ingest"`` mode keeps one queue of its own (``<prefix>.md.<worker>``:
exclusive, auto-deleted, at most ``MAX_BACKLOG`` messages, the oldest dropped first,
since a stale candle is worth less than a fresh one) and binds a key when the first bot
of a (venue, pair) starts on it, unbinds it when the last one stops. Candles reach the
runner's ``FeedHub`` exactly as the embedded engine's polling source delivers them, so
bots cannot tell the difference; the hub drops a candle it has already seen
(redelivery, two ingestors).

Tickers too, throttled: at most one per pair per ``ticker_interval`` seconds (checked
each round, so in practice every ``ceil(ticker_interval / interval)`` rounds), routing
key ``<venue word>.<BASE><QUOTE>.ticker``, carrying bid, ask, last, the 24 h quote
volume and when they were fetched. A worker in ``ingest`` mode binds the ticker key of
every pair it binds candles for and feeds the guard's shared ``ReferencePrices`` with
them; it then fetches no ticker at all (see ``engine.market``).

One ingestor per venue and IP keeps request-weight budgets honest: N workers polling
the same pairs would spend N times the weight.

Where the venue offers a kline websocket (``engine.streaming.stream_exchange``: Binance,
its testnet, a simex), ``run`` streams the candles instead of polling them, with the
embedded engine's own sources (``CandleStreams``: one ``StreamingSource`` per pair on one
``StreamPool``, so the pairs share connections within the exchange's limits, fall back
to REST polling while a stream is down, back-fill after it, and publish each closed
candle once); ``stream=False`` polls as before. Tickers are fetched over REST either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from datetime import UTC, datetime
from decimal import Decimal

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange

from sealbot.domain import CandleClosed, Event, Pair
from sealbot.domain.candles import Candle
from sealbot.engine.candles import FeedHub
from sealbot.engine.clock import Clock, SystemClock
from sealbot.engine.guard import MarketSnapshot
from sealbot.engine.market import fetch_snapshot, venue_key
from sealbot.engine.scaleout.broker import Topology
from sealbot.engine.stream_pool import StreamLimits, StreamPool
from sealbot.engine.streaming import StreamingSource, stream_exchange
from sealbot.venues.base import Venue
from sealbot.venues.errors import VenueError

log = logging.getLogger(__name__)
MAX_BACKLOG = 10_000


def market_exchange(topology: Topology) -> str:
    return f"{topology.prefix}.market"


def venue_word(venue: str) -> str:
    """The routing-key word of a venue identity: its exchange name (characters a topic
    word cannot hold replaced) and 12 hex digits of the whole identity's SHA-256, so two
    endpoints of one exchange get two words, none with a dot in it."""
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in venue.split("@", 1)[0]) or "venue"
    return f"{name}@{hashlib.sha256(venue.encode()).hexdigest()[:12]}"


def market_key(venue: str, pair: Pair, timeframe: str) -> str:
    """``<venue word>.<BASE><QUOTE>.<timeframe>`` for a venue identity (``venue_key``)."""
    return f"{venue_word(venue)}.{pair.base}{pair.quote}.{timeframe}"


TICKER = "ticker"  # the last word of a ticker's routing key (no timeframe is called that)


def ticker_key(venue: str, pair: Pair) -> str:
    return market_key(venue, pair, TICKER)


async def declare_market(channel: AbstractChannel, topology: Topology) -> AbstractExchange:
    return await channel.declare_exchange(market_exchange(topology), aio_pika.ExchangeType.TOPIC, durable=True)


def candle_body(venue: str, candle: Candle) -> bytes:
    """The candle as JSON text, naming the venue identity it came from (and, for people
    reading a queue, its exchange)."""
    return json.dumps({"venue": venue, "exchange": venue.split("@", 1)[0], "pair": str(candle.pair.symbol),
                       "timeframe": candle.timeframe,
                       "open_time": candle.open_time.isoformat(), "open": str(candle.open), "high": str(candle.high),
                       "low": str(candle.low), "close": str(candle.close), "volume": str(candle.volume)},
                      separators=(",", ":")).encode()


def parse_candle(body: bytes) -> tuple[str, Candle]:
    """(venue identity, candle); prices stay Decimal from text end to end. A body
    without a venue (an ingestor older than venue identities) is refused (KeyError):
    its exchange name cannot say which endpoint it polled."""
    data = json.loads(body)
    candle = Candle(Pair.parse(data["pair"]), data["timeframe"], datetime.fromisoformat(data["open_time"]),
                    Decimal(data["open"]), Decimal(data["high"]), Decimal(data["low"]), Decimal(data["close"]),
                    Decimal(data["volume"]))
    return str(data["venue"]), candle


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def ticker_body(venue: str, snapshot: MarketSnapshot, at: datetime) -> bytes:
    return json.dumps({"venue": venue, "exchange": venue.split("@", 1)[0], "pair": str(snapshot.pair.symbol),
                       "bid": _text(snapshot.bid), "ask": _text(snapshot.ask), "last": _text(snapshot.last),
                       "quote_volume_24h": _text(snapshot.quote_volume_24h), "at": at.isoformat()},
                      separators=(",", ":")).encode()


def parse_ticker(body: bytes) -> tuple[str, MarketSnapshot, datetime]:
    """(venue identity, snapshot, when the ingestor fetched it); prices stay Decimal."""
    data = json.loads(body)
    snapshot = MarketSnapshot(Pair.parse(data["pair"]), _decimal(data["bid"]), _decimal(data["ask"]),
                              _decimal(data["last"]), _decimal(data["quote_volume_24h"]))
    at = datetime.fromisoformat(data["at"])
    if at.tzinfo is None:
        raise ValueError("at: needs a time zone")
    return str(data["venue"]), snapshot, at


class CandleStreams:
    """The ingestor's pairs streamed as the embedded engine streams them: a hub of its
    own keyed by the venue identity, one ``StreamingSource`` per pair on one
    ``StreamPool``; each closed candle, once, comes out of ``queue``."""

    def __init__(self, venue: Venue, identity: str, pairs: list[Pair], timeframe: str, *, interval: float,
                 clock: Clock, limits: StreamLimits | None = None, retry_max: float = 300.0) -> None:
        self.hub = FeedHub(timeframe)
        self.pool = StreamPool(limits)
        self.queue: asyncio.Queue[Candle] = asyncio.Queue()
        self.sources: dict[Pair, StreamingSource] = {}
        for pair in pairs:
            self.hub.subscribe(identity, pair, "ingest", timeframe, self._sink)
            self.sources[pair] = StreamingSource(self.hub, identity, venue, pair, interval=interval, clock=clock,
                                                 retry_max=retry_max, pool=self.pool)

    def _sink(self, _ident: str, event: Event) -> None:
        if isinstance(event, CandleClosed):
            self.queue.put_nowait(event.candle)

    def start(self) -> None:
        for source in self.sources.values():
            source.start()

    async def stop(self) -> None:
        for source in self.sources.values():
            await source.stop()


class Ingestor:
    """Polls ``venue`` for the closed candles of ``pairs`` and publishes each once, and
    their tickers at most once per ``ticker_interval`` seconds (``None``: no tickers),
    under the venue identity ``identity`` (default: ``venue_key(venue)``, the endpoint
    it polls, which is what the workers' accounts on that endpoint read)."""

    def __init__(self, venue: Venue, exchange: str, pairs: list[Pair], broker_url: str, topology: Topology, *,
                 timeframe: str = "1m", interval: float = 5.0, history: int = 3,
                 ticker_interval: float | None = 15.0, identity: str | None = None, stream: bool = True,
                 stream_limits: StreamLimits | None = None, clock: Clock | None = None) -> None:
        if ticker_interval is not None and ticker_interval <= 0:
            raise ValueError("ticker_interval: must be positive (None: no tickers)")
        self.venue, self.exchange, self.pairs = venue, exchange, list(pairs)
        self.identity = identity or venue_key(venue)
        self.broker_url, self.topology, self.timeframe = broker_url, topology, timeframe
        self.interval, self.history, self.ticker_interval = interval, history, ticker_interval
        self.published = 0
        self.tickers = 0  # tickers published
        self._last: dict[Pair, datetime] = {}
        self._ticked: dict[Pair, float] = {}  # pair -> monotonic time its last ticker was fetched
        self._exchange: AbstractExchange | None = None
        # run() streams where the venue offers it (None: polls); built there, on the running loop
        self.stream, self.stream_limits = stream, stream_limits
        self.clock: Clock = clock or SystemClock()  # what "closed" is judged by
        self.streams: CandleStreams | None = None

    async def _publish_candle(self, pair: Pair, candle: Candle) -> None:
        assert self._exchange is not None
        await self._exchange.publish(
            aio_pika.Message(candle_body(self.identity, candle), content_type="application/json",
                             delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT),
            routing_key=market_key(self.identity, pair, self.timeframe))
        self._last[pair] = candle.open_time
        self.published += 1

    async def _forward(self, streams: CandleStreams) -> None:
        """Publish the streamed candles as they close (the hub let each through once)."""
        while True:
            candle = await streams.queue.get()
            await self._publish_candle(candle.pair, candle)

    async def poll_once(self) -> int:
        """One round over every pair; how many candles were published."""
        if self._exchange is None:
            raise RuntimeError("ingestor is not connected")
        now = self.clock.now()
        sent = 0
        for pair in self.pairs:
            since = self._last.get(pair)
            try:
                candles = await self.venue.fetch_candles(pair, self.timeframe, since=since,
                                                         limit=None if since else self.history)
            except VenueError as exc:  # retried next round; logged, not hidden
                log.warning("ingest %s %s: %s", self.exchange, pair, exc)
                continue
            for candle in sorted(candles, key=lambda c: c.open_time):
                if candle.close_time > now or (since is not None and candle.open_time <= since):
                    continue
                await self._publish_candle(pair, candle)
                since = candle.open_time
                sent += 1
        return sent

    async def publish_tickers(self) -> int:
        """Publish the ticker of every pair whose last one is ``ticker_interval`` old
        (a failed fetch is retried next round); how many were published."""
        if self._exchange is None:
            raise RuntimeError("ingestor is not connected")
        if self.ticker_interval is None:
            return 0
        sent = 0
        for pair in self.pairs:
            now = time.monotonic()
            last = self._ticked.get(pair)
            if last is not None and now - last < self.ticker_interval:
                continue
            try:
                snapshot = await fetch_snapshot(self.venue, pair)
            except VenueError as exc:  # retried next round; logged, not hidden
                log.warning("ingest %s %s ticker: %s", self.exchange, pair, exc)
                continue
            self._ticked[pair] = now
            await self._exchange.publish(
                aio_pika.Message(ticker_body(self.identity, snapshot, datetime.now(UTC)),
                                 content_type="application/json", delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT),
                routing_key=ticker_key(self.identity, pair))
            sent += 1
        self.tickers += sent
        return sent

    async def run(self, stop: asyncio.Event) -> None:
        connection = await aio_pika.connect(self.broker_url)
        log.info("ingest %s: publishing as venue %s (routing word %s)", self.exchange, self.identity,
                 venue_word(self.identity))
        async with connection:
            self._exchange = await declare_market(await connection.channel(), self.topology)
            streams = forward = None
            if self.stream and stream_exchange(self.venue) is not None:
                streams = self.streams = CandleStreams(self.venue, self.identity, self.pairs, self.timeframe,
                                                       interval=self.interval, clock=self.clock,
                                                       limits=self.stream_limits)
                forward = asyncio.create_task(self._forward(streams), name=f"ingest {self.exchange} forward")
                streams.start()
                log.info("ingest %s: streaming %d pairs over the websocket", self.exchange, len(self.pairs))
            try:
                while not stop.is_set():
                    if streams is None:
                        await self.poll_once()
                    await self.publish_tickers()
                    with contextlib.suppress(TimeoutError):  # asyncio.timeout: 3.11's wait_for may swallow a cancel
                        async with asyncio.timeout(self.interval):
                            await stop.wait()
            finally:
                if streams is not None:
                    await streams.stop()
                if forward is not None:
                    forward.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await forward
        self._exchange = None

    async def connect(self) -> aio_pika.abc.AbstractConnection:
        """Connect and declare without looping (tests, one-shot use); the caller closes."""
        connection = await aio_pika.connect(self.broker_url)
        self._exchange = await declare_market(await connection.channel(), self.topology)
        return connection
