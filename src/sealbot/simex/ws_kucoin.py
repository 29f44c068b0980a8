"""KuCoin's classic spot websocket: connect tokens, candles, and the account's order changes.

What a client sees is what KuCoin documents for its classic (non-UTA) websocket, so
ccxt.pro's ``kucoin.watch_ohlcv`` and ``watch_orders`` run unmodified:

* ``POST /api/v1/bullet-public`` (no key) and ``POST /api/v1/bullet-private`` (signed like
  every private REST call, ``simex.kucoin``) answer ``{"code": "200000", "data": {"token",
  "instanceServers": [{"endpoint", "encrypt", "protocol": "websocket", "pingInterval",
  "pingTimeout"}]}}``. The endpoint is this server's ``/endpoint`` (``ws://``, so
  ``encrypt`` is false: simex speaks no TLS). A token is valid ``token_ttl`` seconds
  (KuCoin: 24 h) for any number of connections; a private one is bound to its key's account.
* The websocket at ``<endpoint>?token=...&connectId=...``: an unknown token is refused at
  the handshake (HTTP 401, ``{"code": "400003", ...}``); an expired one is accepted, told
  ``{"type": "error", "code": 401, "data": "token is expired"}`` and closed (ccxt.pro then
  asks for a new token). Otherwise the first message is ``{"id": <connectId>, "type":
  "welcome"}``.
* Client messages: ``{"id", "type": "ping"}`` -> ``{"id", "type": "pong"}``;
  ``{"id", "type": "subscribe"|"unsubscribe", "topic", "privateChannel", "response"}`` ->
  ``{"id", "type": "ack"}`` when ``response`` is true. A refusal is ``{"id", "type":
  "error", "code": <int>, "data": "<why>"}`` (400 bad request, 401 private topic without a
  private token, 404 unknown topic, 509 a limit). A connection that sends nothing for
  ``ping_interval + ping_timeout`` is closed, as KuCoin drops a client that stops pinging.
* ``/market/candles:{SYMBOL}_{type}`` (types as the REST candles endpoint serves them):
  ``{"type": "message", "topic", "subject": "trade.candles.update", "data": {"symbol",
  "candles": [start s, open, close, high, low, volume, turnover], "time": <ns>}}``. Fed from
  the market clock and replay like the Binance kline stream: every ``push_interval`` the
  forming candle, and after a clock jump every candle that closed meanwhile first (at most
  ``CATCH_UP``). KuCoin's candle has no closed flag; a later candle's start says it closed.
* ``/spotMarket/tradeOrders`` (private; the topic ccxt.pro's ``watch_orders`` and
  ``watch_my_trades`` use): ``{"type": "message", "topic", "subject": "orderChange",
  "channelType": "private", "userId", "data": {"symbol", "orderType", "side", "orderId",
  "type", "orderTime", "size", "filledSize", "price", "clientOid", "remainSize", "status",
  "ts"}}`` for every change to one of the token's account's orders, made at the moment of
  the change (``core.OrderListener``): ``type`` ``open`` (status ``open``), ``match``
  (status ``match``, with ``matchPrice``, ``matchSize``, ``tradeId``, ``liquidity``) then
  ``filled`` (status ``done``) when nothing remains, ``canceled`` (status ``done``).

KuCoin's websocket limits (classic API docs, "Request rate limit: Websocket"; every one
configurable, ``KucoinWsLimits``, smaller in tests):

* at most ``max_messages`` client messages per ``message_window`` seconds per connection
  (KuCoin: 100 per 10 s; pings count): past it a message is answered with error 509 and
  not acted on;
* at most ``max_batch`` topics in one subscribe (KuCoin: 100) and ``max_topics`` topics per
  connection (KuCoin: 300): past either the subscribe is refused with 509 and changes nothing;
* at most ``max_connections`` open connections per user (KuCoin: 50; a private token's
  account, a public token's client IP): one more is refused at the handshake (HTTP 429,
  ``{"code": "429000", ...}``).

``drop_all`` closes every connection (fault injection, as for the Binance websockets);
``expire_tokens`` ages every token past its life (tests of the refresh path).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from sealbot.simex.core import Exchange, Order, Trade
from sealbot.simex.http import client_texts, plain
from sealbot.simex.replay import Kline

PATH = "/endpoint"
ORDERS_TOPIC = "/spotMarket/tradeOrders"
CANDLES_PREFIX = "/market/candles:"
CATCH_UP = 1000  # closed candles sent at most after a clock jump
CANDLE_TYPES = {"1min": 60, "3min": 180, "5min": 300, "15min": 900, "30min": 1800, "1hour": 3600,
                "2hour": 7200, "4hour": 14400, "6hour": 21600, "8hour": 28800, "12hour": 43200, "1day": 86400,
                "1week": 604800}
_CANDLE = re.compile(r"^([A-Z0-9]+-[A-Z0-9]+)_([0-9a-z]+)$")


@dataclass(frozen=True)
class KucoinWsLimits:
    """KuCoin's websocket limits and heartbeat (defaults: KuCoin's documented ones)."""

    max_topics: int = 300  # topics per connection
    max_batch: int = 100  # topics per subscribe message
    max_messages: int = 100  # client messages per message_window per connection
    message_window: float = 10.0  # seconds
    max_connections: int = 50  # open connections per user
    ping_interval: float = 18.0  # seconds, told to the client in the bullet answer
    ping_timeout: float = 10.0  # seconds of silence past ping_interval before the server closes
    token_ttl: float = 86400.0  # seconds a connect token stays valid

    def __post_init__(self) -> None:
        for name in ("max_topics", "max_batch", "max_messages", "max_connections"):
            if getattr(self, name) < 1:
                raise ValueError(f"kucoin_ws_{name}: must be >= 1")
        for name in ("message_window", "ping_interval", "ping_timeout", "token_ttl"):
            if getattr(self, name) <= 0:
                raise ValueError(f"kucoin_ws_{name}: must be > 0 seconds")


@dataclass(frozen=True)
class _Token:
    account_id: int | None  # None: a public token
    expires: float  # time.monotonic()


class _Refused(Exception):
    def __init__(self, code: int, data: str) -> None:
        super().__init__(data)
        self.code, self.data = code, data


@dataclass
class _Candles:
    symbol: str  # Binance-style id (simex's key), e.g. BTCUSDT
    kc_symbol: str
    kind: str  # KuCoin candle type, e.g. 1min
    open_ms: int | None = None  # start of the forming candle last sent


@dataclass(eq=False)  # a connection is itself (kept in a set)
class _Conn:
    ws: WebSocket
    loop: asyncio.AbstractEventLoop
    owner: str  # whom its connection counts against: "account:<id>" or "ip:<address>"
    account_id: int | None
    candles: dict[str, _Candles] = field(default_factory=dict)  # topic -> subscription
    private: set[str] = field(default_factory=set)  # private topics subscribed
    received: deque[float] = field(default_factory=deque)
    outbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)

    @property
    def topics(self) -> int:
        return len(self.candles) + len(self.private)

    def put(self, payload: dict[str, Any]) -> None:
        self.outbox.put_nowait(json.dumps(payload, separators=(",", ":")))


class KucoinStreams:
    """Tokens, the ``/endpoint`` route, its connections, and the order listener feeding them."""

    def __init__(self, exchange: Exchange, push_interval: float = 2.0, limits: KucoinWsLimits | None = None) -> None:
        if push_interval <= 0:
            raise ValueError("ws_push_interval: must be > 0 seconds")
        self.ex, self.push_interval = exchange, push_interval
        self.limits = limits or KucoinWsLimits()
        self._tokens: dict[str, _Token] = {}
        self._conns: set[_Conn] = set()
        self._guard = threading.Lock()  # tokens and connections: bullets and the listener run in any thread
        self.accepted = 0  # connections accepted since start
        self.refused = 0  # handshakes refused (unknown token, too many connections)
        self.flooded = 0  # messages answered 509 for going past the message rate
        exchange.order_listeners.append(self._on_order)

    # ----- tokens (the bullet endpoints) -----------------------------------------------
    def bullet(self, account_id: int | None, host: str, scheme: str = "http") -> dict[str, Any]:
        """The ``data`` of a bullet answer: a new token (private when ``account_id``)."""
        token = secrets.token_urlsafe(48)
        with self._guard:
            now = time.monotonic()
            self._tokens = {k: t for k, t in self._tokens.items() if t.expires > now}  # forget the dead
            self._tokens[token] = _Token(account_id, now + self.limits.token_ttl)
        ws_scheme = "wss" if scheme == "https" else "ws"
        return {"token": token, "instanceServers": [{
            "endpoint": f"{ws_scheme}://{host}{PATH}", "encrypt": ws_scheme == "wss", "protocol": "websocket",
            "pingInterval": int(self.limits.ping_interval * 1000),
            "pingTimeout": int(self.limits.ping_timeout * 1000)}]}

    def expire_tokens(self) -> int:
        """Age every token past its life (open connections stay); returns how many."""
        with self._guard:
            self._tokens = {k: _Token(t.account_id, 0.0) for k, t in self._tokens.items()}
            return len(self._tokens)

    # ----- mounting and inspection ------------------------------------------------------
    def routes(self) -> list[WebSocketRoute]:
        return [WebSocketRoute(PATH, self._serve)]

    def mount(self, app: Starlette) -> KucoinStreams:
        app.router.routes.extend(self.routes())
        app.state.kucoin_streams = self
        return self

    @property
    def connections(self) -> int:
        return len(self._conns)

    def topic_counts(self) -> list[int]:
        """How many topics each open connection carries, largest first."""
        with self._guard:
            return sorted((c.topics for c in self._conns), reverse=True)

    def private_subscriptions(self) -> int:
        with self._guard:
            return sum(len(c.private) for c in self._conns)

    def drop_all(self) -> int:
        """Close every connection (callable from any thread); returns how many."""
        with self._guard:
            conns = list(self._conns)
        for conn in conns:
            if not conn.loop.is_closed():
                asyncio.run_coroutine_threadsafe(self._close(conn.ws), conn.loop).result(timeout=5)
        return len(conns)

    @staticmethod
    async def _close(ws: WebSocket, code: int = 1001) -> None:
        with contextlib.suppress(RuntimeError, OSError):
            await ws.close(code=code)

    # ----- connection -------------------------------------------------------------------
    async def _serve(self, ws: WebSocket) -> None:
        with self._guard:
            token = self._tokens.get(ws.query_params.get("token", ""))
        ip = ws.client.host if ws.client else "unknown"
        if token is None:
            self.refused += 1
            await ws.send_denial_response(JSONResponse({"code": "400003", "msg": "token is invalid"}, 401))
            return
        owner = f"account:{token.account_id}" if token.account_id is not None else f"ip:{ip}"
        conn = _Conn(ws, asyncio.get_running_loop(), owner, token.account_id)
        with self._guard:
            crowded = sum(c.owner == owner for c in self._conns) >= self.limits.max_connections
            if not crowded:
                self._conns.add(conn)
        if crowded:
            self.refused += 1
            await ws.send_denial_response(JSONResponse(
                {"code": "429000", "msg": f"exceed max connection count limitation of "
                                          f"{self.limits.max_connections} per user"}, 429))
            return
        try:
            await ws.accept()
            self.accepted += 1
            connect_id = ws.query_params.get("connectId") or secrets.token_hex(8)
            if token.expires <= time.monotonic():
                await ws.send_text(json.dumps({"id": connect_id, "type": "error", "code": 401,
                                               "data": "token is expired"}))
                await self._close(ws, 1008)
                return
            conn.put({"id": connect_id, "type": "welcome"})
            await self._run(conn)
        finally:
            with self._guard:
                self._conns.discard(conn)

    async def _run(self, conn: _Conn) -> None:
        tasks = [asyncio.create_task(self._send_loop(conn), name="simex kucoin ws send"),
                 asyncio.create_task(self._push_loop(conn), name="simex kucoin ws push")]
        silence = self.limits.ping_interval + self.limits.ping_timeout
        texts = client_texts(conn.ws)
        try:
            while True:
                try:
                    text = await asyncio.wait_for(anext(texts), silence)
                except TimeoutError:
                    await self._close(conn.ws, 1000)  # no ping within the timeout: KuCoin drops the client
                    return
                except StopAsyncIteration:
                    return
                reply = self._message(conn, text)
                if reply is not None:
                    conn.put(reply)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away, or drop_all closed the socket under receive()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    @staticmethod
    async def _send_loop(conn: _Conn) -> None:
        """One writer per connection: replies, candles and order changes in the order made."""
        while True:
            await conn.ws.send_text(await conn.outbox.get())

    def _flooding(self, conn: _Conn) -> bool:
        now = time.monotonic()
        conn.received.append(now)
        while conn.received and conn.received[0] <= now - self.limits.message_window:
            conn.received.popleft()
        return len(conn.received) > self.limits.max_messages

    # ----- client messages --------------------------------------------------------------
    def _message(self, conn: _Conn, text: str) -> dict[str, Any] | None:
        msg_id: Any = None
        try:
            try:
                request = json.loads(text)
            except ValueError:
                raise _Refused(400, "message is not valid JSON") from None
            if not isinstance(request, dict):
                raise _Refused(400, "message is not a JSON object")
            msg_id = request.get("id")
            if self._flooding(conn):
                self.flooded += 1
                raise _Refused(509, f"exceed max permits per second: more than {self.limits.max_messages} "
                                    f"messages in {self.limits.message_window:g} s")
            kind = request.get("type")
            if kind == "ping":
                return {"id": msg_id, "type": "pong", "timestamp": time.time_ns() // 1000}
            if kind not in ("subscribe", "unsubscribe"):
                raise _Refused(415, "type is not supported")
            topic = request.get("topic")
            if not isinstance(topic, str) or not topic:
                raise _Refused(400, "topic is required")
            if kind == "subscribe":
                self._subscribe(conn, topic, bool(request.get("privateChannel")))
            else:
                self._unsubscribe(conn, topic)
            return {"id": msg_id, "type": "ack"} if request.get("response") is True else None
        except _Refused as err:
            return {"id": msg_id, "type": "error", "code": err.code, "data": err.data}

    def _parse(self, conn: _Conn, topic: str) -> tuple[dict[str, _Candles], set[str]]:
        """The candle subscriptions and private topics ``topic`` names, or ``_Refused``."""
        if topic == ORDERS_TOPIC:
            if conn.account_id is None:
                raise _Refused(401, f"topic {topic} needs a private token (bullet-private)")
            return {}, {topic}
        if not topic.startswith(CANDLES_PREFIX):
            raise _Refused(404, f"topic {topic} is not found (simex serves {CANDLES_PREFIX}<symbol>_<type> "
                                f"and {ORDERS_TOPIC})")
        names = [n for n in topic[len(CANDLES_PREFIX):].split(",") if n]
        if len(names) > self.limits.max_batch:
            raise _Refused(509, f"exceed max subscription count limitation of {self.limits.max_batch} per time")
        parsed: dict[str, _Candles] = {}
        for name in names:
            match = _CANDLE.match(name)
            if match is None or match.group(2) not in CANDLE_TYPES:
                raise _Refused(404, f"topic {CANDLES_PREFIX}{name} is not found")
            symbol = match.group(1).replace("-", "")
            if symbol not in self.ex.markets:
                raise _Refused(404, f"topic {CANDLES_PREFIX}{name} is not found")
            parsed[CANDLES_PREFIX + name] = _Candles(symbol, match.group(1), match.group(2))
        if not parsed:
            raise _Refused(400, f"topic {topic} names no symbol")
        return parsed, set()

    def _subscribe(self, conn: _Conn, topic: str, private_channel: bool) -> None:
        candles, private = self._parse(conn, topic)
        if private and not private_channel:
            raise _Refused(401, f"topic {topic} is private: subscribe with privateChannel true")
        with self._guard:
            total = len(set(conn.candles) | set(candles)) + len(conn.private | private)
            if total > self.limits.max_topics:
                raise _Refused(509, f"exceed max subscription count limitation of {self.limits.max_topics} "
                                    "per connection")
            for name, sub in candles.items():
                conn.candles.setdefault(name, sub)  # subscribing again changes nothing
            conn.private |= private

    def _unsubscribe(self, conn: _Conn, topic: str) -> None:
        candles, private = self._parse(conn, topic)
        with self._guard:
            for name in candles:
                conn.candles.pop(name, None)
            conn.private -= private

    # ----- candles ------------------------------------------------------------------------
    async def _push_loop(self, conn: _Conn) -> None:
        while True:
            now = self.ex.sync()
            for topic, sub in list(conn.candles.items()):
                for candle in self._candles(sub, now):
                    conn.put({"type": "message", "topic": topic, "subject": "trade.candles.update",
                              "data": {"symbol": sub.kc_symbol, "candles": candle, "time": now * 1_000_000}})
            await asyncio.sleep(self.push_interval)

    def _candles(self, sub: _Candles, now: int) -> list[list[str]]:
        """The candle arrays ``sub`` is owed at ``now``: those closed since the last push,
        then the forming one."""
        replay = self.ex.replays.get(sub.symbol)
        if replay is None or now < replay.start_ms:
            return []
        interval_ms = CANDLE_TYPES[sub.kind] * 1000
        try:
            forming = replay.klines(interval_ms, now, 1)[-1]
        except (ValueError, IndexError):
            return []  # a type finer than the market's own candles
        out: list[list[str]] = []
        if sub.open_ms is not None and forming.open_ms > sub.open_ms:
            first = max(sub.open_ms, forming.open_ms - CATCH_UP * interval_ms)
            closed = replay.klines(interval_ms, forming.open_ms - 1, CATCH_UP, start_ms=first)
            out.extend(_candle(k) for k in closed)
        out.append(_candle(forming))
        sub.open_ms = forming.open_ms
        return out

    # ----- order changes --------------------------------------------------------------------
    def _on_order(self, order: Order, execution: str, trade: Trade | None) -> None:
        """Under the exchange's lock, in whatever thread changed the order: build the messages
        now (the order changes again later) and hand them to each subscribed connection."""
        with self._guard:
            targets = [c for c in self._conns if c.account_id == order.account_id and ORDERS_TOPIC in c.private]
        if not targets:
            return
        messages = [{"type": "message", "topic": ORDERS_TOPIC, "subject": "orderChange", "channelType": "private",
                     "userId": str(order.account_id), "data": data}
                    for data in self.order_changes(order, execution, trade)]
        for conn in targets:
            for message in messages:
                text = json.dumps(message, separators=(",", ":"))
                with contextlib.suppress(RuntimeError):  # the connection's loop already closed
                    conn.loop.call_soon_threadsafe(conn.outbox.put_nowait, text)

    def order_changes(self, order: Order, execution: str, trade: Trade | None) -> list[dict[str, Any]]:
        """KuCoin's ``orderChange`` data for one change of ``order`` (two for a last fill)."""
        at_ns = (trade.time_ms if trade is not None else order.update_ms) * 1_000_000
        base = {"symbol": self.ex.markets[order.symbol].kucoin_symbol,
                "orderType": "market" if order.type == "MARKET" else "limit", "side": order.side.lower(),
                "orderId": str(order.id), "orderTime": order.time_ms * 1_000_000, "size": plain(order.orig_qty),
                "filledSize": plain(order.executed_qty), "price": plain(order.price or Decimal(0)),
                "clientOid": order.client_id, "remainSize": plain(order.remaining), "ts": at_ns}
        if execution == "NEW":
            return [{**base, "type": "open", "status": "open"}]
        if execution == "TRADE" and trade is not None:
            match = {**base, "type": "match", "status": "match", "matchPrice": plain(trade.price),
                     "matchSize": plain(trade.qty), "tradeId": str(trade.id),
                     "liquidity": "maker" if trade.is_maker else "taker"}
            if order.is_open:
                return [match]
            return [match, {**base, "type": "filled", "status": "done"}]
        return [{**base, "type": "canceled", "status": "done"}]  # CANCELED, EXPIRED


def _candle(k: Kline) -> list[str]:
    return [str(k.open_ms // 1000), plain(k.open), plain(k.close), plain(k.high), plain(k.low), plain(k.volume),
            plain(k.volume * k.close)]
