"""Candles over the exchange's websocket (ccxt.pro ``watch_ohlcv``), polling otherwise.

A ``StreamingSource`` feeds one (feed, pair) stream of the ``FeedHub`` as a
``PollingSource`` does, with lower latency and no request weight: it watches the
pair's base-timeframe klines and publishes each candle once it is closed. ccxt.pro
hands out rows ``[open ms, o, h, l, c, v]`` and not Binance's closed flag, so a candle
counts as closed when a later candle's row appears; if the stream stays quiet past a
candle's close (a message raced past ccxt's future, a silent connection), one REST poll
publishes what closed, so a bot never waits on the stream. The hub drops anything not
newer than its last candle: no duplicate, nothing out of order.

When the stream fails (connection refused or dropped, an exchange error) the source
polls over REST and tries the stream again after ``retry_min`` seconds, doubling up to
``retry_max`` while it keeps failing. A stream silent past ``STALE_AFTER`` candle closes
in a row counts as failed too (a socket ccxt no longer reads, as after KuCoin's "token is
expired": the next session fetches a new token), and so does a subscription unanswered
for as long once its turn on the connection came (ccxt redialled such a socket by itself).
Either way, when no stream on the connection got rows for as long, it is retired from the
pool, so every stream sharing it moves to a fresh one instead of leasing the dead socket
again; a connection other streams still hear from is kept (the pair may just be quiet).
Each (re)subscription (ours, or ccxt's own redial on the next watch) is followed by one
REST poll, and candles seen before it are not published from the stream (they may have
been seen half-formed); a streamed candle that leaves a gap after the hub's last one is
preceded by one poll too, so no candle is lost or published incomplete across a drop.

Where the stream comes from: the same endpoint as the venue's REST candles
(``stream_exchange``). A venue pointed at simex or a testnet streams from there, never
from the real exchange; a venue whose REST groups point at several hosts, or at one
whose websocket cannot be told, is not streamed (``None``: the runner polls). The
ccxt.pro object is public-only: it is built from the exchange id and URLs, never from
the venue's credentials, so no key or signer goes near it. The streams of one endpoint
share such objects, so sockets, through a ``StreamPool`` (``engine.stream_pool``: many
streams per connection, subscriptions paced, dials counted); a source given none has
a pool, and so a socket, of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import ccxt
import ccxt.pro as ccxt_pro

from sealbot.domain import Candle, Pair, timeframe_seconds
from sealbot.engine.candles import FeedHub, PollingSource
from sealbot.engine.clock import Clock, SystemClock
from sealbot.engine.market import _hosts, market_venue
from sealbot.engine.stream_pool import SharedConnection, StreamPool
from sealbot.venues.base import Venue
from sealbot.venues.ccxt_venue import SPOT_OPTIONS
from sealbot.venues.errors import VenueError
from sealbot.venues.markets import to_decimal

log = logging.getLogger(__name__)

# what a failed stream raises: ccxt's errors, the socket's, a timeout
STREAM_ERRORS = (ccxt.BaseError, aiohttp.ClientError, OSError, asyncio.TimeoutError)
# polls in a row made because the stream said nothing past a candle's close, before the
# session is given up and dialled again (ccxt.pro can be left holding a socket whose
# reader died: KuCoin's "token is expired" raises inside its receive loop)
STALE_AFTER = 3
_WS_SCHEME = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def _rebase_ws(node: Any, base: str) -> Any:
    """Every URL of a ccxt ``urls['api']['ws']`` tree moved to ``base``'s host (ws scheme),
    paths kept: ``wss://stream.binance.com:9443/ws`` -> ``ws://127.0.0.1:8001/ws``."""
    if isinstance(node, str) and "://" in node:
        target, parts = urlsplit(base), urlsplit(node)
        return urlunsplit((_WS_SCHEME.get(target.scheme, target.scheme), target.netloc,
                           target.path.rstrip("/") + parts.path, parts.query, parts.fragment))
    if isinstance(node, dict):
        return {key: _rebase_ws(value, base) for key, value in node.items()}
    return node


def stream_exchange(venue: Venue) -> Any | None:
    """A public-only ccxt.pro exchange that streams ``venue``'s candles from the endpoint
    its REST candles come from, or ``None`` when that cannot be done (not a ccxt venue,
    no ccxt.pro class, no ``watchOHLCV``, REST spread over several rewritten hosts)."""
    rest = getattr(market_venue(venue, candles=True), "exchange", None)
    exchange_id = getattr(rest, "id", None)
    if rest is None or not isinstance(exchange_id, str):
        return None
    cls = getattr(ccxt_pro, exchange_id, None)
    if not isinstance(cls, type):
        return None
    config: dict[str, Any] = {"options": copy.deepcopy(SPOT_OPTIONS.get(exchange_id, {})),
                              "timeout": getattr(rest, "timeout", 10_000)}
    pro = cls(config)  # no apiKey, no secret: public market data only
    if not pro.has.get("watchOHLCV"):
        return None
    if not follow_rest(pro, rest):
        return None
    pro.newUpdates = False  # every watch returns the cached rows, not only those new since the last
    return pro


def follow_rest(pro: Any, rest: Any) -> bool:
    """Point the ccxt.pro object ``pro`` where the REST object ``rest`` talks: the testnet
    when ``rest`` is in sandbox mode, the same host when ``rest``'s URLs were rewritten (a
    simex, a proxy: the websocket URLs move there, paths kept), and ``rest``'s loaded
    markets (no second exchangeInfo). False when that cannot be told (``rest``'s URLs
    spread over several rewritten hosts): the caller polls instead."""
    if getattr(rest, "isSandboxModeEnabled", False):
        pro.set_sandbox_mode(True)
    rest_api, pro_api = rest.urls.get("api"), pro.urls.get("api")
    if not isinstance(rest_api, dict) or not isinstance(pro_api, dict):
        return False
    if _hosts(rest_api) != _hosts({k: v for k, v in pro_api.items() if k != "ws"}):  # rewritten (simex, a proxy)
        hosts = _hosts(rest_api)
        if len(hosts) != 1:
            return False  # several hosts: which one serves the websocket cannot be told
        pro.urls["api"] = {**copy.deepcopy(rest_api), "ws": _rebase_ws(pro_api.get("ws", {}), hosts.pop())}
    if getattr(rest, "markets", None):
        pro.set_markets(rest.markets, getattr(rest, "currencies", None))
    return True


class StreamingSource:
    """Keeps one (feed, pair) stream fed from the exchange's kline stream; polls over
    REST while the stream is down (see module doc)."""

    def __init__(self, hub: FeedHub, feed: str, venue: Venue, pair: Pair, *,
                 exchange_factory: Callable[[], Any | None] | None = None, interval: float = 5.0,
                 clock: Clock | None = None, history: int = 3, retry_min: float = 1.0,
                 retry_max: float = 300.0, pool: StreamPool | None = None) -> None:
        if retry_min <= 0 or retry_max < retry_min:
            raise ValueError("stream retry: need 0 < retry_min <= retry_max")
        self.hub, self.feed, self.pair = hub, feed, pair
        self.clock: Clock = clock or SystemClock()
        self.interval, self.retry_min, self.retry_max = interval, retry_min, retry_max
        self.poller = PollingSource(hub, feed, venue, pair, interval=interval, clock=self.clock, history=history)
        self._factory = exchange_factory or (lambda: stream_exchange(self.venue))
        # the connection this stream shares (a pool of its own when none is given: one socket)
        self.pool = pool or StreamPool()
        self._conn: SharedConnection | None = None
        self._forming: list[Any] | None = None  # the newest row seen: its candle may still change
        self._sockets: tuple[Any, ...] = ()  # ccxt's websocket clients when rows were last taken
        self._answered_on: Any = None  # the socket this stream's subscription was last answered on
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.streaming = False  # subscribed and receiving (False: polling)
        self.sessions = 0  # subscriptions answered, each on a new socket (1 + reconnects, ccxt's own included)
        self.streamed = 0  # candles published from the stream (the polls' are the poller's)

    @property
    def venue(self) -> Venue:
        """The venue polls go through (the runner swaps it when its account stops; the
        open stream, built from the same endpoint, is not tied to it)."""
        return self.poller.venue

    @venue.setter
    def venue(self, venue: Venue) -> None:
        self.poller.venue = venue

    async def poll_once(self) -> int:
        """One REST poll (what the runner's ``poll_feeds_once`` asks of every source)."""
        return await self.poller.poll_once()

    async def run(self) -> None:
        delay = self.retry_min
        while not self._stopping:
            try:
                await self._session()
            except STREAM_ERRORS as exc:  # logged, then polled over REST until the retry
                log.warning("feed %s %s: stream failed, polling for %g s: %s", self.feed, self.pair, delay,
                            type(exc).__name__ if isinstance(exc, ccxt.BaseError) else exc)
            finally:
                await self._close_exchange()
                if self.streaming:
                    delay = self.retry_min  # it was up: the next failure starts the backoff over
                self.streaming = False
            await self._poll_for(delay)
            delay = min(delay * 2, self.retry_max)

    async def _session(self) -> None:
        symbol, timeframe = self.pair.symbol, self.hub.base
        stream = (symbol, timeframe)
        conn = self._conn = await self.pool.lease(self.feed, stream, self._factory)
        if conn is None:
            raise ccxt.NotSupported(f"{self.feed}: no candle stream")
        exchange = conn.exchange
        self._forming, self._sockets, self._answered_on = None, (), None
        rows = await self._subscribe(conn, stream)  # in its turn, polled over REST meanwhile
        self.streaming = True
        late = 0  # intervals in a row the stream was silent past a candle's close
        while not self._stopping:
            self._count_socket(conn, stream)
            await self._take(exchange, rows)
            if not conn.subscribed(stream):  # a new socket (ccxt redials on this watch): in its turn again
                rows = await self._subscribe(conn, stream)
                continue
            try:
                rows = await asyncio.wait_for(conn.watch(stream), self.interval)
                conn.heard = self.clock.now()
                late = 0
            except TimeoutError:
                rows = []
                if self._forming is not None and self._row_close(self._forming) <= self.clock.now():
                    await self._backfill()  # the stream is late with the next candle: REST has it
                    late += 1
                    if late >= STALE_AFTER:  # a socket that died without ccxt noticing: dial afresh
                        await self._dead(conn, "stream silent")

    async def _subscribe(self, conn: SharedConnection, stream: tuple[str, str]) -> list[list[Any]]:
        """The stream's first rows on the current socket. Its SUBSCRIBE waits its turn on the
        shared connection (a burst of pairs subscribes a few a second), so meanwhile the
        pair is polled over REST every ``interval``: none waits for its candles."""
        sent = asyncio.Event()
        watch = asyncio.ensure_future(conn.watch(stream, sent))
        answer_by: datetime | None = None  # once its turn came: a subscription unanswered by then is dead
        try:
            while True:
                done, _ = await asyncio.wait({watch}, timeout=self.interval)
                if done:
                    conn.heard = self.clock.now()
                    return watch.result()
                await self._backfill()
                if sent.is_set():
                    now = self.clock.now()
                    answer_by = answer_by or now + self._stale_after
                    if now >= answer_by:  # ccxt redialled a socket that never answers (KuCoin: an expired token)
                        await self._dead(conn, "subscription unanswered")
        finally:
            if not watch.done():
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError, *STREAM_ERRORS):
                    await watch

    def _count_socket(self, conn: SharedConnection, stream: tuple[str, str]) -> None:
        """Count a subscription answered on a socket this stream had no answer on yet: the
        session's first, or a reconnect inside the session (ccxt redialled a dropped socket on
        a watch, and the stream subscribed again there, or the watch itself did when the drop
        landed between two watches). A stream back after a drop counts as such whichever
        way it came back: KuCoin's comes back inside the session when ccxt's redial with the
        old token is told "token is expired", as ccxt then fetches a new token on the next watch."""
        socket = conn.subscribed_on.get(stream)
        if socket is not None and socket is not self._answered_on:
            self._answered_on = socket
            self.sessions += 1

    @property
    def _stale_after(self) -> timedelta:
        """How long unanswered counts as dead: ``STALE_AFTER`` base candles."""
        return STALE_AFTER * timedelta(seconds=timeframe_seconds(self.hub.base))

    async def _dead(self, conn: SharedConnection, what: str) -> None:
        """This stream went unanswered: fail this session. When no stream on ``conn`` got
        rows for as long either, its socket is dead without ccxt saying so: retire it from
        the pool too (every stream on it fails over to polling and leases a fresh
        connection, none re-leases this one). A connection other streams still hear from is
        kept: this pair may merely be quiet (KuCoin sends a candle on a trade)."""
        if conn.heard is None or self.clock.now() - conn.heard >= self._stale_after:
            await self.pool.retire(conn)
        raise ccxt.NetworkError(f"{self.feed} {self.pair}: {what} past {STALE_AFTER} candle closes; "
                                f"connection retired")

    async def _take(self, exchange: Any, rows: list[list[Any]]) -> None:
        """Publish the candles ``rows`` show closed: every row older than the newest.

        Rows live in ccxt's cache across a reconnect, and a new subscription is sent only
        the forming candle: a row last updated on a socket that is gone may be a candle
        seen half-formed. So on a new socket (this session's first, or one ccxt dialled
        by itself after a drop) only the newest row is kept, and what closed before it
        comes from one REST poll; so too with the first rows taken on a socket seen first
        without rows (the watch that redialled timed out before the answer)."""
        sockets = tuple(exchange.clients.values())
        if len(sockets) != len(self._sockets) or any(a is not b for a, b in zip(sockets, self._sockets,
                                                                                  strict=False)) \
                or (rows and self._forming is None):  # the first rows on this socket came after a watch timed out
            self._sockets = sockets
            self._forming = max(rows, key=lambda r: r[0]) if rows else None
            await self._backfill()  # after (re)subscribing: what closed while not streaming
            return
        for row in sorted(rows[-3:], key=lambda r: r[0]):
            forming = self._forming
            if forming is not None and row[0] > forming[0]:
                await self._publish(forming)
            if forming is None or row[0] >= forming[0]:
                self._forming = row

    async def _publish(self, row: list[Any]) -> None:
        candle = self._candle(row)
        last = self.hub.last_open(self.feed, self.pair)
        if last is not None and candle.open_time - last > timedelta(seconds=timeframe_seconds(self.hub.base)):
            await self._backfill()  # a gap after the hub's last candle: fill it before moving on
            last = self.hub.last_open(self.feed, self.pair)
        if last is None or candle.open_time > last:
            self.hub.publish(self.feed, candle)
            self.streamed += 1

    async def _backfill(self) -> None:
        try:
            await self.poller.poll_once()
        except VenueError as exc:  # the next close or the next poll tries again
            log.warning("feed %s %s: back-fill poll failed: %s", self.feed, self.pair, exc)

    async def _poll_for(self, seconds: float) -> None:
        """Poll over REST every ``interval`` for ``seconds`` (the stream is down)."""
        until = self.clock.monotonic() + seconds
        while not self._stopping:
            await self._backfill()
            left = until - self.clock.monotonic()
            if left <= 0:
                return
            await self.clock.sleep(min(self.interval, left))

    def _candle(self, row: list[Any]) -> Candle:
        ts, o, h, lo, c, v = row[:6]
        return Candle(self.pair, self.hub.base, datetime.fromtimestamp(int(ts) / 1000, tz=UTC), _dec(o), _dec(h),
                      _dec(lo), _dec(c), _dec(v))

    def _row_close(self, row: list[Any]) -> datetime:
        return datetime.fromtimestamp(int(row[0]) / 1000, tz=UTC) + timedelta(seconds=timeframe_seconds(self.hub.base))

    async def _close_exchange(self) -> None:
        """Leave the shared connection: unsubscribed (paced, in the background) while other
        streams stay on it, closed with its socket when this was the last."""
        conn = self._conn
        if conn is not None:  # cleared only once done: a cancel in the middle leaves it for stop() to finish
            await self.pool.release(conn, (self.pair.symbol, self.hub.base))
            self._conn = None

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self.run(), name=f"stream {self.feed} {self.pair}")

    async def stop(self) -> None:
        """Stop streaming and polling; the stream has left its shared connection before this
        returns (unsubscribed in the background, or the socket closed if it was the last)."""
        task, self._task = self._task, None
        self._stopping = True
        while task is not None and not task.done():
            # cancelled again until done: on Python 3.11 a wait_for whose inner call ends
            # as the cancel arrives returns its result and the cancel is lost
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.warning("feed %s %s: stream task ended with %r", self.feed, self.pair, task.exception())
        await self._close_exchange()


def _dec(value: Any) -> Decimal:
    result = to_decimal(value)
    if result is None:
        raise ccxt.BadResponse(f"not a number in a kline: {value!r}")
    return result
