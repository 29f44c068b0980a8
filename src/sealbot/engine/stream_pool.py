"""Candle streams share websocket connections, within the exchange's limits.

One ccxt.pro exchange object holds one websocket client per URL, and Binance's
``watch_ohlcv`` puts every kline subscription of an object on the same URL (``/ws/0``,
its ``multipleOHLCV`` stream), so one object is one connection carrying many streams.
The pool hands out those objects per stream endpoint (the feed key, which names the
venue's endpoint), and keeps inside the exchange's documented websocket limits, which
ccxt does not enforce (its ``streamLimits`` spread other channels over URLs, not
klines, and its throttle is the REST rate limit):

* at most ``max_streams`` streams per connection (Binance: 1,024): a further stream
  gets a second object, so a second connection;
* at most ``messages_per_second`` SUBSCRIBE/UNSUBSCRIBE messages per connection
  (Binance cuts a connection past 5 incoming messages a second, pings and pongs
  included): every message waits its turn, evenly spaced;
* at most ``max_connections`` new connections per ``connection_window`` seconds per
  endpoint (Binance: 300 per 5 minutes per IP): a dial over the limit is refused here
  (``StreamRefused``), so the stream stays on REST polling and tries again later.

When a connection's last stream is released the object is closed, so is its socket.
The pacing is written here because neither ccxt nor aiohttp paces websocket messages.

The limits are the exchange's: ``StreamLimits()`` (Binance's) unless ``exchange_limits``
names the exchange of the connection's object. KuCoin's (``KUCOIN_STREAM_LIMITS``): 300
topics per connection, 100 client messages per 10 s (pings included; paced at 8 a
second), and no more than 30 new connections a minute. KuCoin's ccxt.pro object fetches
a connect token (``bullet-public``) before it dials, so several streams may ask it to
watch while no socket exists yet: that is still one dial, counted once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import ccxt

log = logging.getLogger(__name__)

_ERRORS = (ccxt.BaseError, aiohttp.ClientError, OSError, asyncio.TimeoutError)


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """The exchange's websocket limits the engine keeps to (defaults: Binance spot's)."""

    max_streams: int = 1024  # streams per connection
    # SUBSCRIBE/UNSUBSCRIBE messages per second per connection: Binance allows 5, pings and
    # pongs included, so 4 leaves room for those and for jitter on the way
    messages_per_second: float = 4.0
    max_connections: int = 300  # new connections per endpoint per connection_window
    connection_window: float = 300.0  # seconds

    def __post_init__(self) -> None:
        if self.max_streams < 1:
            raise ValueError("stream_limits.max_streams: must be >= 1")
        if self.messages_per_second <= 0:
            raise ValueError("stream_limits.messages_per_second: must be > 0")
        if self.max_connections < 1:
            raise ValueError("stream_limits.max_connections: must be >= 1")
        if self.connection_window <= 0:
            raise ValueError("stream_limits.connection_window: must be > 0 seconds")


# KuCoin's websocket limits (classic API docs): 300 topics per connection; 100 client
# messages per 10 s, pings included (ccxt.pro pings every 18 s), so 8 a second leaves room;
# new connections kept to 30 a minute (KuCoin also caps open connections per user at 50)
KUCOIN_STREAM_LIMITS = StreamLimits(max_streams=300, messages_per_second=8.0, max_connections=30,
                                    connection_window=60.0)
EXCHANGE_STREAM_LIMITS: dict[str, StreamLimits] = {"kucoin": KUCOIN_STREAM_LIMITS}


class StreamRefused(ccxt.RateLimitExceeded):  # type: ignore[misc]  # ccxt is untyped
    """A new connection would go past the endpoint's connection limit: poll and retry later."""


def _socket(exchange: Any) -> Any | None:
    """The object's websocket client (a kline-only object has at most one)."""
    clients = getattr(exchange, "clients", None) or {}
    return next(iter(clients.values()), None)


def _pace_ccxt(exchange: Any, per_second: float) -> None:
    """Set ccxt's own websocket send throttle to the same pace as ours.

    ccxt spends ``options['ws']['cost']`` tokens of its REST token bucket per message sent
    on a socket (Binance: 5, of 20 a second: 4 messages a second). Left alone it would be a
    second, different pace behind ours (slower, or faster and meaningless); matched, ours
    decides and its bucket never queues a message."""
    bucket = getattr(exchange, "tokenBucket", None) or {}
    refill = bucket.get("refillRate")
    if not isinstance(refill, int | float) or refill <= 0:
        return
    options = exchange.options.get("ws")
    if not isinstance(options, dict):
        options = exchange.options["ws"] = {}
    options["cost"] = refill * 1000 / per_second


@dataclass(eq=False)
class SharedConnection:
    """One ccxt.pro object, so one websocket, and the streams leased on it."""

    pool: StreamPool
    endpoint: str
    exchange: Any
    limits: StreamLimits
    streams: set[tuple[str, str]] = field(default_factory=set)  # (symbol, timeframe) leased
    subscribed_on: dict[tuple[str, str], Any] = field(default_factory=dict)  # stream -> socket it was sent on
    unsubscribing: dict[tuple[str, str], asyncio.Task[None]] = field(default_factory=dict)
    next_send: float = 0.0  # monotonic time the next message may go
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    messages: int = 0  # SUBSCRIBE/UNSUBSCRIBE sent through the pacer
    closed: bool = False
    dialling: bool = False  # a dial was counted and no socket has been seen since
    heard: Any = None  # when (the sources' clock) a stream on it last got rows: is the socket alive?

    @property
    def load(self) -> int:
        return len(self.streams) + len(self.unsubscribing)

    async def _turn(self) -> None:
        """Wait for this connection's next message slot (FIFO: the lock queues waiters)."""
        wait = self.next_send - self.pool.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self.next_send = max(self.pool.monotonic(), self.next_send) + 1.0 / self.limits.messages_per_second
        self.messages += 1

    def subscribed(self, stream: tuple[str, str]) -> bool:
        """Whether ``stream`` is subscribed on the current socket (a watch sends nothing)."""
        socket = self.subscribed_on.get(stream)
        return socket is not None and socket is _socket(self.exchange)

    async def watch(self, stream: tuple[str, str], sent: asyncio.Event | None = None) -> list[list[Any]]:
        """``watch_ohlcv(stream)``; when it sends a SUBSCRIBE (not subscribed on the current
        socket), only in its turn, and a dial it makes is counted (``StreamRefused`` when
        over the limit). ``sent`` is set once the watch is on its way (its turn taken), so a
        caller can tell a wait for its turn from a wait for an answer."""
        if self.subscribed(stream):
            if sent is not None:
                sent.set()
            return await self.exchange.watch_ohlcv(*stream)  # type: ignore[no-any-return]
        async with self.lock:
            await self._turn()
            socket = _socket(self.exchange)
            if socket is None:
                if not self.dialling:  # KuCoin: a watch may still be fetching its token, one dial
                    self.pool.count_dial(self.endpoint)
                    self.dialling = True
            else:
                await self._connected(socket)
            rows = asyncio.ensure_future(self.exchange.watch_ohlcv(*stream))
            await asyncio.sleep(0)  # its first step queues the SUBSCRIBE (and dials) before the next turn
            if sent is not None:
                sent.set()
        try:
            result: list[list[Any]] = await rows
        finally:
            self.dialling = False  # connected (or failed): the next socket is a new dial
        self.subscribed_on[stream] = _socket(self.exchange)
        return result

    async def _connected(self, socket: Any) -> None:
        """Wait (holding the turn) for a socket still dialling: ccxt sends the messages
        queued during the dial all at once on connect, so the spacing starts from there."""
        connected = getattr(socket, "connected", None)
        if isinstance(connected, asyncio.Future) and not connected.done():
            with contextlib.suppress(*_ERRORS):  # a failed dial fails the watch that follows
                await asyncio.wait_for(asyncio.shield(connected), 10.0)
            spacing = 1.0 / self.limits.messages_per_second
            self.next_send = max(self.next_send, self.pool.monotonic() + spacing)

    async def _unsubscribe(self, stream: tuple[str, str]) -> None:
        try:
            async with self.lock:
                await self._turn()
                sent = asyncio.ensure_future(self.exchange.un_watch_ohlcv(*stream))
                await asyncio.sleep(0)
            with contextlib.suppress(*_ERRORS):
                await asyncio.wait_for(sent, 2.0)
        finally:
            self.unsubscribing.pop(stream, None)
            self.subscribed_on.pop(stream, None)
            if not self.streams and not self.unsubscribing:
                await self.pool.retire(self)

    async def close(self) -> None:
        self.closed = True
        for task in list(self.unsubscribing.values()):
            if task is not asyncio.current_task():
                task.cancel()
        with contextlib.suppress(*_ERRORS):
            await self.exchange.close()


class StreamPool:
    """The shared connections of one process, per stream endpoint (see module doc)."""

    def __init__(self, limits: StreamLimits | None = None, monotonic: Callable[[], float] = time.monotonic,
                 exchange_limits: dict[str, StreamLimits] | None = None) -> None:
        self.limits = limits or StreamLimits()  # an exchange's not named in exchange_limits (Binance's)
        self.exchange_limits = dict(EXCHANGE_STREAM_LIMITS if exchange_limits is None else exchange_limits)
        self._endpoint_limits: dict[str, StreamLimits] = {}  # the limits each endpoint was leased under
        # real seconds, whatever the engine's clock: the exchange counts messages and dials in real time
        self.monotonic = monotonic
        self._conns: dict[str, list[SharedConnection]] = {}
        self._dials: dict[str, deque[float]] = {}
        self.dials = 0  # connections opened (all endpoints)

    def connections(self, endpoint: str | None = None) -> list[SharedConnection]:
        if endpoint is not None:
            return list(self._conns.get(endpoint, []))
        return [c for conns in self._conns.values() for c in conns]

    def limits_for(self, exchange_id: str | None) -> StreamLimits:
        """The limits of ``exchange_id``'s websocket (``self.limits`` when not named)."""
        return self.exchange_limits.get(exchange_id or "", self.limits)

    def _limits_at(self, endpoint: str) -> StreamLimits:
        """An endpoint's limits: those it was leased under, else those of the exchange its
        key starts with (a user-data stream's ``kucoin@...``), else the default."""
        known = self._endpoint_limits.get(endpoint)
        return known if known is not None else self.limits_for(endpoint.split("@", 1)[0])

    def count_dial(self, endpoint: str) -> None:
        """One more connection to ``endpoint``, or ``StreamRefused`` if the window is full."""
        limits = self._limits_at(endpoint)
        now, window = self.monotonic(), self._dials.setdefault(endpoint, deque())
        while window and window[0] <= now - limits.connection_window:
            window.popleft()
        if len(window) >= limits.max_connections:
            log.warning("stream endpoint %s: connection limit reached, its streams poll until the window allows",
                        endpoint)
            raise StreamRefused(f"{endpoint}: {limits.max_connections} new websocket connections in "
                                f"{limits.connection_window:g} s already; polling until the window allows")
        window.append(now)
        self.dials += 1

    async def lease(self, endpoint: str, stream: tuple[str, str],
                    factory: Callable[[], Any | None]) -> SharedConnection | None:
        """A connection with room for ``stream`` (a new object from ``factory`` when every
        one is full), or ``None`` when ``factory`` offers no stream."""
        conns = self._conns.setdefault(endpoint, [])
        for held in conns:
            pending = held.unsubscribing.get(stream)
            if pending is not None:  # leased again while its UNSUBSCRIBE is queued or on the wire
                await asyncio.wait({pending})
        conn = next((c for c in conns if not c.closed and c.load < c.limits.max_streams), None)
        if conn is None:
            exchange = factory()
            if exchange is None:
                return None
            exchange.open()  # bind it to this loop now: markets copied in, so no request has done it yet
            limits = self._endpoint_limits[endpoint] = self.limits_for(getattr(exchange, "id", None))
            _pace_ccxt(exchange, limits.messages_per_second)
            conn = SharedConnection(self, endpoint, exchange, limits)
            conns.append(conn)
        conn.streams.add(stream)
        return conn

    async def release(self, conn: SharedConnection, stream: tuple[str, str]) -> None:
        """``stream`` stops: unsubscribe it in the background (paced) if others stay on the
        connection, or close the connection if it was the last."""
        conn.streams.discard(stream)
        if not conn.streams:  # the last: closing the socket ends every subscription, pending UNSUBSCRIBEs too
            await self.retire(conn)
        elif stream in conn.subscribed_on and conn.subscribed_on[stream] is _socket(conn.exchange) \
                and stream not in conn.unsubscribing and not conn.closed:
            conn.unsubscribing[stream] = asyncio.create_task(conn._unsubscribe(stream),
                                                             name=f"unsubscribe {conn.endpoint} {stream[0]}")
        else:
            conn.subscribed_on.pop(stream, None)

    async def retire(self, conn: SharedConnection) -> None:
        conns = self._conns.get(conn.endpoint, [])
        if conn in conns:
            conns.remove(conn)
        if not conns:
            self._conns.pop(conn.endpoint, None)
        await conn.close()  # again if a cancel cut the first close short: ccxt's close is idempotent


__all__ = ["EXCHANGE_STREAM_LIMITS", "KUCOIN_STREAM_LIMITS", "SharedConnection", "StreamLimits", "StreamPool",
           "StreamRefused"]
