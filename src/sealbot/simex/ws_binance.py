"""Binance's public market-data websocket, kline streams only, at Binance's own paths.

What a client sees is what Binance documents for ``wss://stream.binance.com:9443``
(spot "WebSocket Streams"), so ccxt.pro's ``binance.watch_ohlcv`` runs unmodified:

* ``/ws`` and ``/ws/<streamName>``: raw streams, events sent bare. ccxt.pro connects
  to ``/ws/<n>`` (its connection number, not a stream name) and subscribes by message;
  a path segment that is not a stream name is ignored, a stream name is subscribed.
* ``/stream?streams=<a>/<b>``: combined streams, each event wrapped as
  ``{"stream": "<name>", "data": <event>}``.
* Messages: ``{"method": "SUBSCRIBE"|"UNSUBSCRIBE", "params": [...], "id": ...}`` answered
  ``{"result": null, "id": ...}``; ``LIST_SUBSCRIPTIONS`` answers the names;
  ``SET_PROPERTY ["combined", bool]`` / ``GET_PROPERTY ["combined"]``. A bad request is
  answered ``{"code": 2|3, "msg": "...", "id": ...}`` as Binance does.
* Stream ``<symbol>@kline_<interval>`` (lowercase symbol, intervals as the REST klines
  endpoint serves them): event ``{"e": "kline", "E", "s", "k": {t, T, s, i, f, L, o, c,
  h, l, v, n, x, q, V, Q, B}}``. Other stream types are refused with an error (simex has
  no trades or book to stream), rather than accepted and left silent.

Klines come from the market clock and the replay, like the REST klines: every
``push_interval`` real seconds (Binance's documented update speed for klines is 2000 ms)
each subscription gets the forming candle, changed or not; when the clock has moved
past its end, every candle that closed meanwhile is sent once with ``x: true`` first (at
most ``CATCH_UP`` of them after a jump). simex has no individual trades: ``n`` is 0, ``f``
and ``L`` are -1, the taker-buy volumes are 0.

Ping/pong is the websocket protocol's own (uvicorn pings every 20 s as Binance does and
answers the client's pings). ``drop_all`` closes every connection (fault injection: a
test's or an operator's way to cut the stream without stopping simex).

Binance's limits are enforced (``WsLimits``, Binance's values by default, smaller in tests):

* more than ``max_messages`` incoming messages within ``message_window`` seconds on one
  connection: it is closed with code 1008 "Too many requests" (Binance: 5 a second;
  its count includes ping and pong frames, which uvicorn answers below the ASGI app, so
  here only text and binary messages count);
* a SUBSCRIBE taking a connection past ``max_streams`` streams (Binance: 1,024) is
  refused with an error reply and changes nothing; a ``/stream?streams=`` URL naming
  more is closed with 1008;
* more than ``max_connections`` new connections from one IP within
  ``connection_window`` seconds (Binance: 300 per 5 minutes) are refused at the
  handshake with HTTP 429 (``{"code": -1003, ...}``, Binance's "too many requests").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from sealbot.simex.binance import INTERVALS
from sealbot.simex.core import Exchange
from sealbot.simex.http import client_texts, fmt
from sealbot.simex.replay import Kline

ZERO = Decimal(0)
CATCH_UP = 1000  # closed candles sent at most after a clock jump (the REST klines limit)

_KLINE = re.compile(r"^([a-z0-9]+)@kline_([0-9]+[smhdwM])$")
_ID = re.compile(r"^[A-Za-z0-9]{1,36}$")


class _BadRequest(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


@dataclass(frozen=True)
class WsLimits:
    """Binance's market-data websocket limits (defaults: Binance spot's documented ones)."""

    max_streams: int = 1024  # streams per connection
    max_messages: int = 5  # incoming messages per message_window per connection
    message_window: float = 1.0  # seconds
    max_connections: int = 300  # new connections per IP per connection_window
    connection_window: float = 300.0  # seconds

    def __post_init__(self) -> None:
        for name in ("max_streams", "max_messages", "max_connections"):
            if getattr(self, name) < 1:
                raise ValueError(f"ws_{name}: must be >= 1")
        for name in ("message_window", "connection_window"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ws_{name}: must be > 0 seconds")


@dataclass
class _Sub:
    symbol: str  # Binance id, upper case
    interval: str
    open_ms: int | None = None  # open time of the forming candle last sent


@dataclass(eq=False)  # a connection is itself, not its contents (kept in a set)
class _Conn:
    ws: WebSocket
    combined: bool
    subs: dict[str, _Sub] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    received: deque[float] = field(default_factory=deque)  # when the messages of the window came

    async def send(self, payload: Any) -> None:
        async with self.lock:
            await self.ws.send_text(json.dumps(payload, separators=(",", ":")))


class BinanceStreams:
    """The websocket routes and the connections they hold, on top of one Exchange."""

    def __init__(self, exchange: Exchange, push_interval: float = 2.0, limits: WsLimits | None = None) -> None:
        if push_interval <= 0:
            raise ValueError("ws_push_interval: must be > 0 seconds")
        self.ex, self.push_interval = exchange, push_interval
        self.limits = limits or WsLimits()
        self._conns: set[_Conn] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dials: dict[str, deque[float]] = {}  # per client IP: when its connections were accepted
        self.accepted = 0  # connections accepted since start (tests count the engine's sockets)
        self.refused = 0  # handshakes refused: too many new connections from one IP
        self.flooded = 0  # connections closed for sending too many messages

    def routes(self) -> list[WebSocketRoute]:
        return [WebSocketRoute("/ws", self._raw), WebSocketRoute("/ws/{name:path}", self._raw),
                WebSocketRoute("/stream", self._combined)]

    @property
    def connections(self) -> int:
        return len(self._conns)

    def stream_counts(self) -> list[int]:
        """How many streams each open connection carries, largest first."""
        return sorted((len(conn.subs) for conn in list(self._conns)), reverse=True)

    def drop_all(self) -> int:
        """Close every stream connection (from any thread but the server's own); returns how many."""
        loop, count = self._loop, len(self._conns)
        if loop is None or not count:
            return 0
        asyncio.run_coroutine_threadsafe(self._close_all(), loop).result(timeout=5)
        return count

    async def _close_all(self) -> None:
        for conn in list(self._conns):
            with contextlib.suppress(RuntimeError, OSError):
                await conn.ws.close(code=1001)  # "going away", as a server shutting down sends

    async def _raw(self, ws: WebSocket) -> None:
        name = ws.path_params.get("name", "")
        await self._serve(ws, combined=False, initial=[name] if _KLINE.match(name) else [])

    async def _combined(self, ws: WebSocket) -> None:
        names = [n for n in ws.query_params.get("streams", "").split("/") if n]
        await self._serve(ws, combined=True, initial=names)

    def _admit(self, ip: str) -> bool:
        """Count a new connection from ``ip``; False when its window is full."""
        now, window = time.monotonic(), self._dials.setdefault(ip, deque())
        while window and window[0] <= now - self.limits.connection_window:
            window.popleft()
        if len(window) >= self.limits.max_connections:
            return False
        window.append(now)
        return True

    def _flooding(self, conn: _Conn) -> bool:
        """Count one incoming message; True when the connection went past the rate."""
        now = time.monotonic()
        conn.received.append(now)
        while conn.received and conn.received[0] <= now - self.limits.message_window:
            conn.received.popleft()
        return len(conn.received) > self.limits.max_messages

    async def _serve(self, ws: WebSocket, *, combined: bool, initial: list[str]) -> None:
        self._loop = asyncio.get_running_loop()
        if not self._admit(ws.client.host if ws.client else "unknown"):
            self.refused += 1
            await ws.send_denial_response(JSONResponse(
                {"code": -1003, "msg": f"Too many new connections; more than {self.limits.max_connections} "
                                       f"in {self.limits.connection_window:g} s from this IP."}, 429))
            return
        await ws.accept()
        self.accepted += 1
        conn = _Conn(ws, combined)
        try:
            self._subscribe(conn, initial)
        except _BadRequest as exc:
            await ws.close(code=1008, reason=exc.msg[:120])
            return
        self._conns.add(conn)
        pusher = asyncio.create_task(self._push_loop(conn), name="simex ws push")
        try:
            async for text in client_texts(ws):
                if self._flooding(conn):
                    self.flooded += 1
                    await ws.close(code=1008, reason="Too many requests")
                    break
                reply = self._command(conn, text)
                await conn.send(reply)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away, or drop_all closed the socket under receive()
        finally:
            self._conns.discard(conn)
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pusher

    # ----- requests ------------------------------------------------------------------
    def _command(self, conn: _Conn, text: str) -> dict[str, Any]:
        req_id: Any = None
        try:
            try:
                req = json.loads(text)
            except ValueError:
                raise _BadRequest(3, "Invalid JSON: expected value at line 1 column 1") from None
            if not isinstance(req, dict):
                raise _BadRequest(3, "Invalid JSON: expected an object")
            req_id = req.get("id")
            if not (req_id is None or (isinstance(req_id, int) and not isinstance(req_id, bool))
                    or (isinstance(req_id, str) and _ID.match(req_id))):
                req_id = None
                raise _BadRequest(2, "Invalid request: request ID must be an unsigned integer")
            method, params = req.get("method"), req.get("params", [])
            if not isinstance(params, list):
                raise _BadRequest(2, "Invalid request: params must be an array")
            if method == "SUBSCRIBE":
                self._subscribe(conn, params)
                return {"result": None, "id": req_id}
            if method == "UNSUBSCRIBE":
                for name in params:
                    conn.subs.pop(str(name), None)
                return {"result": None, "id": req_id}
            if method == "LIST_SUBSCRIPTIONS":
                return {"result": sorted(conn.subs), "id": req_id}
            if method == "SET_PROPERTY":
                if len(params) != 2 or params[0] != "combined":
                    raise _BadRequest(0, "Unknown property")
                if not isinstance(params[1], bool):
                    raise _BadRequest(1, "Invalid value type: expected Boolean")
                conn.combined = params[1]
                return {"result": None, "id": req_id}
            if method == "GET_PROPERTY":
                if params != ["combined"]:
                    raise _BadRequest(0, "Unknown property")
                return {"result": conn.combined, "id": req_id}
            raise _BadRequest(2, "Invalid request: unknown variable")
        except _BadRequest as exc:
            return {"code": exc.code, "msg": exc.msg, "id": req_id}

    def _subscribe(self, conn: _Conn, names: list[Any]) -> None:
        parsed: dict[str, _Sub] = {}
        for name in names:
            match = _KLINE.match(name) if isinstance(name, str) else None
            if match is None:
                raise _BadRequest(2, f"Invalid request: simex streams only <symbol>@kline_<interval>, not {name!r}")
            if match.group(2) not in INTERVALS:
                raise _BadRequest(2, f"Invalid request: unsupported kline interval in {name!r}")
            parsed[name] = _Sub(match.group(1).upper(), match.group(2))
        if len(set(conn.subs) | set(parsed)) > self.limits.max_streams:
            raise _BadRequest(2, f"Invalid request: more than {self.limits.max_streams} streams on one connection")
        for name, sub in parsed.items():
            conn.subs.setdefault(name, sub)  # subscribing again changes nothing, as on Binance

    # ----- pushes --------------------------------------------------------------------
    async def _push_loop(self, conn: _Conn) -> None:
        while True:
            now = self.ex.sync()
            for name, sub in list(conn.subs.items()):
                for event in self._events(sub, now):
                    await conn.send({"stream": name, "data": event} if conn.combined else event)
            await asyncio.sleep(self.push_interval)

    def _events(self, sub: _Sub, now: int) -> list[dict[str, Any]]:
        """The kline events ``sub`` is owed at ``now``: candles closed since the last push
        (``x: true``), then the forming one."""
        replay = self.ex.replays.get(sub.symbol)
        if replay is None or now < replay.start_ms:
            return []  # an unknown symbol streams nothing, as on Binance
        interval_ms = INTERVALS[sub.interval] * 1000
        try:
            forming_open = replay.klines(interval_ms, now, 1)[-1].open_ms
        except (ValueError, IndexError):
            return []  # an interval finer than the market's own candles
        out: list[dict[str, Any]] = []
        if sub.open_ms is not None and forming_open > sub.open_ms:
            first = max(sub.open_ms, forming_open - CATCH_UP * interval_ms)
            closed = replay.klines(interval_ms, forming_open - 1, CATCH_UP, start_ms=first)
            out.extend(self._event(sub, k, now, closed=True) for k in closed)
        forming = replay.klines(interval_ms, now, 1)[-1]
        out.append(self._event(sub, forming, now, closed=False))
        sub.open_ms = forming.open_ms
        return out

    @staticmethod
    def _event(sub: _Sub, k: Kline, now: int, *, closed: bool) -> dict[str, Any]:
        return {"e": "kline", "E": now, "s": sub.symbol, "k": {
            "t": k.open_ms, "T": k.close_ms, "s": sub.symbol, "i": sub.interval, "f": -1, "L": -1,
            "o": fmt(k.open), "c": fmt(k.close), "h": fmt(k.high), "l": fmt(k.low), "v": fmt(k.volume), "n": 0,
            "x": closed, "q": fmt(k.volume * k.close), "V": fmt(ZERO), "Q": fmt(ZERO), "B": "0"}}
