"""A worker's own queue of market data from the ingestors (``market_data = "ingest"``).

The worker binds a routing key on the topic exchange when the first bot of an
(exchange, pair) starts on its runner's ``FeedHub`` and unbinds it when the last one
stops, so only what its owned accounts trade is routed to it. The hub's streams are
keyed here by exchange name, as the ingestor names its candles (routing key and body):
the worker runs its runner with ``poll_feeds`` off, which keys them so
(``engine.candles.feed_key``), so the one endpoint an exchange's ingestor polls is the
one every account of that exchange name reads. The queue is exclusive and
auto-deleted, at most ``MAX_BACKLOG`` messages with the oldest dropped first (a stale
candle is worth less than a fresh one); keys wanted while the connection is down are
bound on the next ``open``.

With ``prices`` (the runner's ``ReferencePrices``) it binds each pair's ticker key too
and feeds the guard's reference prices from the ingestor's tickers; the source then
fetches no ticker itself (``fetch`` off), so N accounts cost the exchange nothing. A
ticker that sat in the queue is adopted with its age (since the ingestor fetched it),
so a backlog cannot pass an old price off as fresh.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractExchange, AbstractIncomingMessage, AbstractQueue

from sealbot.domain import Pair
from sealbot.engine.candles import FeedHub
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
)

log = logging.getLogger(__name__)


class MarketQueue:
    """Feeds ``hub`` (and ``prices``) from the broker: ``received`` counts the messages,
    ``delivered`` the events the hub handed to bots, ``tickers`` the tickers adopted."""

    def __init__(self, topology: Topology, worker_id: str, hub: FeedHub,
                 prices: ReferencePrices | None = None) -> None:
        self.topology, self.worker_id, self.hub, self.prices = topology, worker_id, hub, prices
        if prices is not None:
            prices.fetch = False  # the ingestor's tickers are the only source: no account fetches one
        self.feeds: set[tuple[str, Pair]] = set()  # (exchange, pair) streams bound on the queue
        self.received = 0
        self.delivered = 0
        self.tickers = 0
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
        for exchange, pair in sorted(self.feeds, key=str):
            await self._bind(exchange, pair, bind=True)
        await self._queue.consume(self._on_candle)

    def closed(self) -> None:
        """The connection is gone: the queue went with it (bound again on ``open``)."""
        self._queue, self._exchange = None, None

    async def _on_candle(self, message: AbstractIncomingMessage) -> None:
        self.received += 1
        if message.routing_key is not None and message.routing_key.endswith(f".{TICKER}"):
            self._adopt_ticker(message.body)
            await message.ack()
            return
        try:
            exchange, candle = parse_candle(message.body)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("unreadable candle dropped (%s)", exc)
        else:
            self.delivered += self.hub.publish(exchange, candle)
        await message.ack()

    def _adopt_ticker(self, body: bytes) -> None:
        if self.prices is None:
            return
        try:
            exchange, snapshot, at = parse_ticker(body)
        except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
            log.error("unreadable ticker dropped (%s)", exc)
            return
        self.prices.set(exchange, snapshot, age=(datetime.now(UTC) - at).total_seconds())
        self.tickers += 1

    async def _bind(self, exchange: str, pair: Pair, *, bind: bool) -> None:
        queue, source = self._queue, self._exchange
        if queue is None or source is None:
            return  # bound on the next connect
        keys = [market_key(exchange, pair, self.hub.base)]
        if self.prices is not None:
            keys.append(ticker_key(exchange, pair))
        for key in keys:
            try:
                if bind:
                    await queue.bind(source, routing_key=key)
                else:
                    await queue.unbind(source, routing_key=key)
            except aio_pika.exceptions.AMQPError as exc:  # the connection is going: rebound on reconnect
                log.warning("market data %s: %s failed (%s)", key, "bind" if bind else "unbind", exc)

    def _want(self, exchange: str, pair: Pair) -> None:
        self.feeds.add((exchange, pair))
        self._background(self._bind(exchange, pair, bind=True))

    def _drop(self, exchange: str, pair: Pair) -> None:
        self.feeds.discard((exchange, pair))
        self._background(self._bind(exchange, pair, bind=False))

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


__all__ = ["MarketQueue"]
