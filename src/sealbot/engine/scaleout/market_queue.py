"""A worker's own queue of market data from the ingestors (``market_data = "ingest"``).

The worker binds a routing key on the topic exchange when the first bot of a (venue,
pair) starts on its runner's ``FeedHub`` and unbinds it when the last one stops, so
only what its owned accounts trade is routed to it. The venue is the account's venue
identity (``engine.market.venue_key``: exchange and endpoint; a paper account's data
venue): the hub's streams and the reference prices are keyed by it (this queue sets
``FeedHub.by_venue``), the routing keys name it (``ingest.venue_word``) and so does
every message, so an account on Binance's testnet reads the testnet ingestor's candles
and prices, never those of the live exchange's ingestor, whatever the exchange names.
A message reaches the hub or the prices only for a (venue, pair) bound here, and only
when its routing word matches the venue its body names. The queue is exclusive and
auto-deleted, at most ``MAX_BACKLOG`` messages with the oldest dropped first (a stale
candle is worth less than a fresh one); keys wanted while the connection is down are
bound on the next ``open``.

With ``prices`` (the runner's ``ReferencePrices``) it binds each pair's ticker key too
and feeds the guard's reference prices from the ingestor's tickers; the source then
fetches no ticker itself (``fetch`` off), so N accounts cost the exchange nothing. A
ticker that sat in the queue is adopted with its age (since the ingestor fetched it),
so a backlog cannot pass an old price off as fresh.

A venue no ingestor publishes is not polled here instead: a worker falling back to the
exchange whenever an ingestor is quiet would turn one ingestor's outage into every
worker polling that exchange, over the IP's request weight. Its bots wait (no candle;
no reference price, so the guard refuses and the account keeps reconciling), and
``check`` (each heartbeat round) names each (venue, pair) bound for ``quiet_after``
seconds with no candle since, once, in a warning, counts them in ``waiting`` (the
``sealbot_market_streams_waiting`` gauge, the stats file's ``market_waiting``) and
says when data arrives again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractExchange, AbstractIncomingMessage, AbstractQueue

from sealbot.domain import Pair, timeframe_seconds
from sealbot.engine.candles import FeedHub
from sealbot.engine.guard import MarketSnapshot
from sealbot.engine.market import ReferencePrices
from sealbot.engine.scaleout.broker import Topology
from sealbot.engine.scaleout.ingest import (
    MAX_BACKLOG,
    TICKER,
    declare_market,
    market_key,
    parse_candle,
    parse_ticker,
    ticker_key,
    venue_word,
)

log = logging.getLogger(__name__)


class MarketQueue:
    """Feeds ``hub`` (and ``prices``) from the broker: ``received`` counts the messages,
    ``delivered`` the events the hub handed to bots, ``tickers`` the tickers adopted,
    ``ignored`` the messages for no (venue, pair) bound here; ``waiting`` the bound
    streams no candle came for in ``quiet_after`` seconds (default: two base candles
    and 30 s)."""

    def __init__(self, topology: Topology, worker_id: str, hub: FeedHub,
                 prices: ReferencePrices | None = None, *, quiet_after: float | None = None) -> None:
        self.topology, self.worker_id, self.hub, self.prices = topology, worker_id, hub, prices
        hub.by_venue = True  # the ingestors name the venue they polled: streams are keyed by it
        if prices is not None:
            prices.fetch = False  # the ingestor's tickers are the only source: no account fetches one
        self.quiet_after = quiet_after if quiet_after is not None else 2 * timeframe_seconds(hub.base) + 30.0
        self.feeds: set[tuple[str, Pair]] = set()  # (venue identity, pair) streams bound on the queue
        self.received = 0
        self.delivered = 0
        self.tickers = 0
        self.ignored = 0
        self.waiting: set[tuple[str, Pair]] = set()
        self.last_candle: dict[tuple[str, Pair], float] = {}  # when bound or its last candle came (monotonic)
        self._queue: AbstractQueue | None = None
        self._exchange: AbstractExchange | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        hub.on_first_subscriber = self._want
        hub.on_last_unsubscribed = self._drop

    async def open(self, connection: AbstractConnection) -> None:
        channel = await connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=256)
        self._exchange = await declare_market(channel, self.topology)
        self._queue = await channel.declare_queue(
            f"{self.topology.prefix}.md.{self.worker_id}", exclusive=True, auto_delete=True,
            arguments={"x-max-length": MAX_BACKLOG, "x-overflow": "drop-head"})
        for venue, pair in sorted(self.feeds, key=str):
            await self._bind(venue, pair, bind=True)
        await self._queue.consume(self._on_candle)

    def closed(self) -> None:
        """The connection is gone: the queue went with it (bound again on ``open``)."""
        self._queue, self._exchange = None, None

    async def _on_candle(self, message: AbstractIncomingMessage) -> None:
        self.received += 1
        key = message.routing_key or ""
        ticker = key.endswith(f".{TICKER}")
        try:
            if ticker:
                venue, snapshot, at = parse_ticker(message.body)
                pair = snapshot.pair
            else:
                venue, candle = parse_candle(message.body)
                pair = candle.pair
        except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
            log.error("unreadable %s dropped (%s)", "ticker" if ticker else "candle", exc)
            await message.ack()
            return
        if (venue, pair) not in self.feeds or key.split(".", 1)[0] != venue_word(venue):
            self.ignored += 1  # unbound meanwhile, or a body naming another venue than its key
        elif ticker:
            self._adopt_ticker(venue, snapshot, at)
        else:  # candles are what ``check`` watches: tickers alone (a timeframe no ingestor polls) feed no bot
            self._heard(venue, pair)
            self.delivered += self.hub.publish(venue, candle)
        await message.ack()

    def _adopt_ticker(self, venue: str, snapshot: MarketSnapshot, at: datetime) -> None:
        if self.prices is None:
            return
        self.prices.set(venue, snapshot, age=(datetime.now(UTC) - at).total_seconds())
        self.tickers += 1

    def _heard(self, venue: str, pair: Pair) -> None:
        self.last_candle[(venue, pair)] = time.monotonic()
        if (venue, pair) in self.waiting:
            self.waiting.discard((venue, pair))
            log.info("market data for %s on %s arrives again", pair, venue)

    def check(self, now: float | None = None) -> int:
        """Warn (once each) about the bound streams no candle came for in ``quiet_after``
        seconds (at ``now``, monotonic; default: now); how many there are now."""
        now = time.monotonic() if now is None else now
        for feed in sorted(self.feeds, key=str):
            since = self.last_candle.get(feed)
            if feed not in self.waiting and since is not None and now - since >= self.quiet_after:
                self.waiting.add(feed)
                venue, pair = feed
                log.warning("market data: nothing for %s on %s (routing key %s) for %.0f s: does a `sealbot "
                            "ingest` publish this venue? Its bots wait; they are not fed another endpoint's data",
                            pair, venue, market_key(venue, pair, self.hub.base), now - since)
        return len(self.waiting)

    async def _bind(self, venue: str, pair: Pair, *, bind: bool) -> None:
        queue, source = self._queue, self._exchange
        if queue is None or source is None:
            return  # bound on the next connect
        keys = [market_key(venue, pair, self.hub.base)]
        if self.prices is not None:
            keys.append(ticker_key(venue, pair))
        for key in keys:
            try:
                if bind:
                    await queue.bind(source, routing_key=key)
                else:
                    await queue.unbind(source, routing_key=key)
            except aio_pika.exceptions.AMQPError as exc:  # the connection is going: rebound on reconnect
                log.warning("market data %s: %s failed (%s)", key, "bind" if bind else "unbind", exc)

    def _want(self, venue: str, pair: Pair) -> None:
        self.feeds.add((venue, pair))
        self.last_candle[(venue, pair)] = time.monotonic()
        self._background(self._bind(venue, pair, bind=True))

    def _drop(self, venue: str, pair: Pair) -> None:
        self.feeds.discard((venue, pair))
        self.last_candle.pop((venue, pair), None)
        self.waiting.discard((venue, pair))
        self._background(self._bind(venue, pair, bind=False))

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


__all__ = ["MarketQueue"]
