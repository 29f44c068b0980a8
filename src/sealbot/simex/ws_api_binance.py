"""Binance's WebSocket API (``/ws-api/v3``), the part a trading client needs to hear of
its orders at once: the user-data stream subscribed with a signature.

What a client sees is what Binance documents for ``wss://ws-api.binance.com:443/ws-api/v3``
("WebSocket API", "User Data Stream requests"), so ccxt.pro's ``binance.watch_orders`` /
``watch_my_trades`` (spot) run unmodified:

* Requests are JSON text frames ``{"id": ..., "method": ..., "params": {...}}``; every
  answer echoes ``id`` with an HTTP-like ``status``: ``{"id", "status": 200, "result": ...}``
  or ``{"id", "status": 4xx, "error": {"code", "msg"}}``.
* ``userDataStream.subscribe.signature`` with ``apiKey``, ``timestamp``, ``signature``
  (and optional ``recvWindow``): the signature covers every other parameter, sorted by
  name, as ``name=value&...`` (hex HMAC-SHA256 with the key's secret, or base64 Ed25519),
  checked as the REST dialect checks a SIGNED request: unknown, disabled or IP-refused
  key -> -2015 (401); timestamp outside ``recvWindow`` (default 5000 ms, at most 1000 ms
  ahead) -> -1021; bad signature -> -1022; a missing parameter -> -1102. Success answers
  ``{"result": {"subscriptionId": n}}`` (n counts from 0 per connection).
* ``userDataStream.unsubscribe`` (``subscriptionId`` optional: all when absent) and
  ``session.subscriptions`` (``[{"subscriptionId": n}, ...]``).
* Events: ``{"subscriptionId": n, "event": {"e": "executionReport", ...}}`` for every change
  to one of the account's orders as the matching engine makes it (``x``: NEW, TRADE,
  CANCELED, EXPIRED; ``X``: the order's status then), with Binance's fields. They are
  built under the exchange's lock at the moment of the change (``core.OrderListener``),
  so a partial fill and the fill after it are two events with the numbers of each.

Not served (simex has no use for them): other WebSocket API methods (answered 400, code
-1000, naming the method), balance events (``outboundAccountPosition``), the listen-key
streams. ``drop_all`` closes every connection (fault injection, as for the market-data
websocket).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from sealbot.simex.core import Exchange, Order, Trade
from sealbot.simex.http import client_texts, fmt
from sealbot.simex.keys import ApiKey

PATH = "/ws-api/v3"
MAX_RECV_WINDOW = 60000
MAX_SUBSCRIPTIONS = 1000  # per connection, Binance's limit


class _Refused(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


@dataclass(eq=False)  # a connection is itself (kept in a set)
class _Conn:
    ws: WebSocket
    loop: asyncio.AbstractEventLoop
    subs: dict[int, int] = field(default_factory=dict)  # subscription id -> simex account id
    next_id: int = 0
    outbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)


class BinanceWsApi:
    """The ``/ws-api/v3`` route, its connections, and the listener that feeds them."""

    def __init__(self, exchange: Exchange) -> None:
        self.ex = exchange
        self._conns: set[_Conn] = set()
        self._guard = threading.Lock()  # _conns and their subs: the listener runs in any thread
        exchange.order_listeners.append(self._on_order)

    def routes(self) -> list[WebSocketRoute]:
        return [WebSocketRoute(PATH, self._serve)]

    def mount(self, app: Starlette) -> BinanceWsApi:
        """Add the route to ``app`` (one line in ``simex.app``) and keep ``self`` on its state."""
        app.router.routes.extend(self.routes())
        app.state.binance_ws_api = self
        return self

    @property
    def connections(self) -> int:
        return len(self._conns)

    def subscriptions(self) -> int:
        """Live user-data subscriptions over every connection."""
        with self._guard:
            return sum(len(c.subs) for c in self._conns)

    def drop_all(self) -> int:
        """Close every connection (callable from any thread); returns how many."""
        with self._guard:
            conns = list(self._conns)
        for conn in conns:
            if not conn.loop.is_closed():
                asyncio.run_coroutine_threadsafe(self._close(conn), conn.loop).result(timeout=5)
        return len(conns)

    @staticmethod
    async def _close(conn: _Conn) -> None:
        with contextlib.suppress(RuntimeError, OSError):
            await conn.ws.close(code=1001)  # "going away"

    # ----- connection --------------------------------------------------------------------
    async def _serve(self, ws: WebSocket) -> None:
        await ws.accept()
        conn = _Conn(ws, asyncio.get_running_loop())
        with self._guard:
            self._conns.add(conn)
        sender = asyncio.create_task(self._send_loop(conn), name="simex ws-api send")
        client_ip = ws.client.host if ws.client else ""
        try:
            async for text in client_texts(ws):
                conn.outbox.put_nowait(json.dumps(self._request(conn, text, client_ip), separators=(",", ":")))
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away, or drop_all closed the socket under receive()
        finally:
            with self._guard:
                self._conns.discard(conn)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    @staticmethod
    async def _send_loop(conn: _Conn) -> None:
        """One writer per connection: answers and events go out in the order they were made."""
        while True:
            text = await conn.outbox.get()
            await conn.ws.send_text(text)

    # ----- requests ----------------------------------------------------------------------
    def _request(self, conn: _Conn, text: str, client_ip: str) -> dict[str, Any]:
        try:
            request = json.loads(text)
        except ValueError:
            return {"id": None, "status": 400, "error": {"code": -1000, "msg": "Malformed request: not JSON."}}
        if not isinstance(request, dict):
            return {"id": None, "status": 400, "error": {"code": -1000, "msg": "Malformed request: not an object."}}
        rid, method, params = request.get("id"), request.get("method"), request.get("params") or {}
        try:
            if not isinstance(params, dict):
                raise _Refused(-1000, "Malformed request: 'params' must be an object.")
            if method == "userDataStream.subscribe.signature":
                result: Any = {"subscriptionId": self._subscribe(conn, params, client_ip)}
            elif method == "userDataStream.unsubscribe":
                self._unsubscribe(conn, params)
                result = {}
            elif method == "session.subscriptions":
                with self._guard:
                    result = [{"subscriptionId": n} for n in sorted(conn.subs)]
            else:
                raise _Refused(-1000, f"simex serves no WebSocket API method {method!r} (only the user-data "
                                      "stream: userDataStream.subscribe.signature, userDataStream.unsubscribe, "
                                      "session.subscriptions).")
        except _Refused as err:
            return {"id": rid, "status": err.status, "error": {"code": err.code, "msg": err.msg}}
        return {"id": rid, "status": 200, "result": result}

    def _subscribe(self, conn: _Conn, params: dict[str, Any], client_ip: str) -> int:
        key = self._verify(params, client_ip)
        with self._guard:
            if len(conn.subs) >= MAX_SUBSCRIPTIONS:
                raise _Refused(-1000, f"Too many subscriptions on this connection (at most {MAX_SUBSCRIPTIONS}).")
            number = conn.next_id
            conn.next_id += 1
            conn.subs[number] = key.account_id
        return number

    def _unsubscribe(self, conn: _Conn, params: dict[str, Any]) -> None:
        wanted = params.get("subscriptionId")
        with self._guard:
            if wanted is None:
                conn.subs.clear()
                return
            if not isinstance(wanted, int) or wanted not in conn.subs:
                raise _Refused(-1000, f"No subscription with subscriptionId {wanted!r} on this connection.")
            del conn.subs[wanted]

    def _verify(self, params: dict[str, Any], client_ip: str) -> ApiKey:
        """A SIGNED request's checks, in the REST dialect's order (see module doc)."""
        for name in ("apiKey", "timestamp", "signature"):
            if params.get(name) in (None, ""):
                raise _Refused(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
        key = self.ex.keys.get(str(params["apiKey"]))
        if key is None or not key.enabled or not key.allows_ip(client_ip):
            raise _Refused(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        stamp, window = str(params["timestamp"]), str(params.get("recvWindow", 5000))
        if not stamp.isdigit():
            raise _Refused(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
        if not window.isdigit():
            raise _Refused(-1100, "Illegal characters found in parameter 'recvWindow'.")
        if int(window) > MAX_RECV_WINDOW:
            raise _Refused(-1131, "recvWindow must be less than 60000")
        now = int(time.time() * 1000)  # request freshness is judged on the real clock, as REST does
        if int(stamp) > now + 1000 or now - int(stamp) > int(window):
            raise _Refused(-1021, "Timestamp for this request is outside of the recvWindow.")
        payload = "&".join(f"{name}={_text(params[name])}" for name in sorted(params) if name != "signature")
        if not key.verify_binance(payload.encode(), str(params["signature"])):
            raise _Refused(-1022, "Signature for this request is not valid.")
        return key

    # ----- events ------------------------------------------------------------------------
    def _on_order(self, order: Order, execution: str, trade: Trade | None) -> None:
        """Under the exchange's lock, in whatever thread changed the order: build the event
        now (the order changes again later) and hand it to each subscribed connection's loop."""
        with self._guard:
            targets = [(conn, number) for conn in self._conns for number, account in conn.subs.items()
                       if account == order.account_id]
        if not targets:
            return
        event = execution_report(order, execution, trade)
        for conn, number in targets:
            text = json.dumps({"subscriptionId": number, "event": event}, separators=(",", ":"))
            with contextlib.suppress(RuntimeError):  # the connection's loop already closed
                conn.loop.call_soon_threadsafe(conn.outbox.put_nowait, text)


def _num(value: Decimal | None) -> str:
    return fmt(value if value is not None else Decimal(0))


def _text(value: Any) -> str:
    """A JSON parameter as it appears in the signed query string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def execution_report(order: Order, execution: str, trade: Trade | None) -> dict[str, Any]:
    """Binance's ``executionReport`` for ``order`` right after a change (times: market time)."""
    at = trade.time_ms if trade is not None else order.update_ms
    cancelled = execution == "CANCELED"
    return {
        "e": "executionReport", "E": at, "s": order.symbol, "c": order.client_id, "S": order.side,
        "o": order.type, "f": order.tif, "q": _num(order.orig_qty), "p": _num(order.price),
        "P": _num(order.stop_price), "F": _num(None), "g": -1, "C": order.client_id if cancelled else "",
        "x": execution, "X": order.status, "r": "NONE", "i": order.id,
        "l": _num(trade.qty if trade else None), "z": _num(order.executed_qty),
        "L": _num(trade.price if trade else None),
        "n": _num(trade.commission) if trade else "0", "N": trade.commission_asset if trade else None,
        "T": at, "t": trade.id if trade else -1, "I": order.id * 2 + (1 if trade else 0),
        "w": order.is_open and order.working, "m": bool(trade and trade.is_maker), "M": trade is not None,
        "O": order.time_ms, "Z": _num(order.cum_quote), "Y": _num(trade.quote_qty if trade else None),
        "Q": _num(order.orig_quote_qty), "W": order.working_ms, "V": "NONE",
    }
