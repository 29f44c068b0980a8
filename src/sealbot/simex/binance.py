"""Binance spot dialect, at Binance's own paths (/api/v3, /sapi/v1, and the futures
exchangeInfo endpoints ccxt reads while loading markets).

Security follows Binance's rules: ``X-MBX-APIKEY`` names the key; SIGNED endpoints
need ``timestamp`` (within ``recvWindow``, default 5000 ms, max 60000, and at most
1000 ms ahead of the server) and ``signature`` over the query string followed by
the request body (without the signature parameter): hex HMAC-SHA256 with the
key's secret, or base64 Ed25519 for a key registered with a public key.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealbot.simex.binance_params import REASONS, BinanceError, Ctx, bad_key, mandatory
from sealbot.simex.core import STOP_TYPES, Exchange, Order, OrderRequest, Trade
from sealbot.simex.errors import Reason, SimexError
from sealbot.simex.http import Incoming, apply_faults, fmt, json_response, read_request
from sealbot.simex.keys import PERMISSIONS, ApiKey
from sealbot.simex.ratelimit import WeightLimiter

INTERVALS = {"1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "2h": 7200, "4h": 14400,
             "6h": 21600, "8h": 28800, "12h": 43200, "1d": 86400, "3d": 259200, "1w": 604800}
NONE, KEY, SIGNED = 0, 1, 2
# myTrades: startTime and endTime at most 24 hours apart (-1127 beyond).
MY_TRADES_WINDOW_MS = 24 * 3600 * 1000


Handler = Callable[[Ctx], Any]


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    security: int = NONE
    weight: Callable[[dict[str, str]], int] = lambda p: 1
    permission: str | None = None


def _wall_ms() -> int:
    return int(time.time() * 1000)


class BinanceDialect:
    """Routes and handlers of the Binance spot API on top of one Exchange."""

    def __init__(self, exchange: Exchange, limiter: WeightLimiter) -> None:
        self.ex = exchange
        self.limiter = limiter

    # ----- plumbing ----------------------------------------------------------------
    def routes(self) -> list[Route]:
        by_path: dict[str, dict[str, Endpoint]] = {}
        for ep in self._endpoints():
            by_path.setdefault(ep.path, {})[ep.method] = ep
        return [Route(path, self._make(eps), methods=list(eps)) for path, eps in by_path.items()]

    def _make(self, eps: dict[str, Endpoint]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await self._serve(eps[request.method], request)
        return endpoint

    async def _serve(self, ep: Endpoint, request: Request) -> Response:
        req = await read_request(request)
        weight = ep.weight(req.params)
        self.ex.requests.add(req.method, req.path, weight)
        verdict = self.limiter.charge(req.ip, weight)
        headers = {"X-MBX-USED-WEIGHT-1M": str(verdict.used)}
        if verdict.status == 418:
            return json_response({"code": -1003, "msg": f"Way too much request weight used; IP banned until "
                                  f"{verdict.banned_until_ms}. Please use WebSocket Streams for live updates to "
                                  "avoid bans."}, 418, {**headers, "Retry-After": str(verdict.retry_after)})
        if verdict.status == 429:
            return self._too_many(headers, verdict.retry_after)
        early = await apply_faults(self.ex.faults, req.headers.get("x-mbx-apikey"), req.path,
                                   lambda: self._too_many(headers, 60))
        if early is not None:
            return early
        try:
            key = self._authenticate(ep, req)
            result = ep.handler(Ctx(req, key))
        except BinanceError as err:
            return json_response({"code": err.code, "msg": err.msg}, err.status, headers)
        except SimexError as err:
            code, status = REASONS[err.reason]
            if err.reason is Reason.UNKNOWN_ORDER and req.method == "DELETE":
                code = -2011
            return json_response({"code": code, "msg": err.message}, status, headers)
        return json_response(result, 200, headers)

    def _too_many(self, headers: dict[str, str], retry_after: int) -> Response:
        return json_response({"code": -1003, "msg": f"Too much request weight used; current limit is "
                              f"{self.limiter.limit} request weight per 1 MINUTE. Please use WebSocket Streams "
                              "for live updates to avoid polling the API."}, 429,
                             {**headers, "Retry-After": str(retry_after)})

    def _authenticate(self, ep: Endpoint, req: Incoming) -> ApiKey | None:
        if ep.security == NONE:
            return None
        name = req.headers.get("x-mbx-apikey")
        if not name:
            raise BinanceError(-2014, "API-key format invalid.", 401)
        key = self.ex.keys.get(name)
        if key is None or not key.enabled or not key.allows_ip(req.ip):
            raise bad_key()
        if ep.security == SIGNED:
            self._verify(key, req)
        if ep.permission is not None and ep.permission not in key.permissions:
            raise bad_key()
        return key

    @staticmethod
    def _verify(key: ApiKey, req: Incoming) -> None:
        stamp = req.params.get("timestamp")
        if not stamp or not stamp.isdigit():
            raise mandatory("timestamp")
        window = req.params.get("recvWindow") or "5000"
        if not window.isdigit():
            raise BinanceError(-1100, "Illegal characters found in parameter 'recvWindow'.")
        if int(window) > 60000:
            raise BinanceError(-1131, "recvWindow must be less than 60000")
        now = _wall_ms()
        if int(stamp) > now + 1000 or now - int(stamp) > int(window):
            raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
        signature: str | None = None
        parts: list[str] = []
        for text in (req.query, req.body.decode(errors="replace")):
            kept = []
            for item in text.split("&") if text else []:
                if item.startswith("signature="):
                    signature = unquote(item[len("signature="):])
                else:
                    kept.append(item)
            parts.append("&".join(kept))
        query, body = parts
        if signature is None:
            raise mandatory("signature")
        if not key.verify_binance((query + body).encode(), signature):
            raise BinanceError(-1022, "Signature for this request is not valid.")

    # ----- rendering ---------------------------------------------------------------
    def _order_json(self, o: Order, full: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "symbol": o.symbol, "orderId": o.id, "orderListId": -1, "clientOrderId": o.client_id,
            "price": fmt(o.price), "origQty": fmt(o.orig_qty), "executedQty": fmt(o.executed_qty),
            "cummulativeQuoteQty": fmt(o.cum_quote), "status": o.status, "timeInForce": o.tif, "type": o.type,
            "side": o.side, "stopPrice": fmt(o.stop_price), "icebergQty": fmt(Decimal(0)), "time": o.time_ms,
            "updateTime": o.update_ms, "isWorking": o.working, "workingTime": o.working_ms if o.working else -1,
            "origQuoteOrderQty": fmt(o.orig_quote_qty), "selfTradePreventionMode": "NONE",
        }
        if full:
            out["fills"] = [{"price": fmt(t.price), "qty": fmt(t.qty), "commission": fmt(t.commission),
                             "commissionAsset": t.commission_asset, "tradeId": t.id} for t in o.trades]
        return out

    def _new_order_json(self, o: Order, resp_type: str) -> dict[str, Any]:
        ack = {"symbol": o.symbol, "orderId": o.id, "orderListId": -1, "clientOrderId": o.client_id,
               "transactTime": o.time_ms}
        if resp_type == "ACK":
            return ack
        full = self._order_json(o, resp_type == "FULL")
        for drop in ("time", "updateTime", "isWorking", "icebergQty"):
            full.pop(drop, None)
        if o.type not in STOP_TYPES:
            full.pop("stopPrice", None)
        return {**ack, **full}

    @staticmethod
    def _trade_json(t: Trade) -> dict[str, Any]:
        return {"symbol": t.symbol, "id": t.id, "orderId": t.order_id, "orderListId": -1, "price": fmt(t.price),
                "qty": fmt(t.qty), "quoteQty": fmt(t.quote_qty), "commission": fmt(t.commission),
                "commissionAsset": t.commission_asset, "time": t.time_ms, "isBuyer": t.side == "BUY",
                "isMaker": t.is_maker, "isBestMatch": True}

    def _symbol_json(self, symbol: str) -> dict[str, Any]:
        m = self.ex.markets[symbol]
        return {
            "symbol": symbol, "status": "TRADING", "baseAsset": m.base, "baseAssetPrecision": 8,
            "quoteAsset": m.quote, "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": False, "ocoAllowed": False, "otoAllowed": False, "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False, "cancelReplaceAllowed": False, "amendAllowed": False,
            "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": fmt(m.tick), "maxPrice": fmt(m.max_price),
                 "tickSize": fmt(m.tick)},
                {"filterType": "LOT_SIZE", "minQty": fmt(m.min_qty), "maxQty": fmt(m.max_qty),
                 "stepSize": fmt(m.step)},
                {"filterType": "MARKET_LOT_SIZE", "minQty": fmt(Decimal(0)), "maxQty": fmt(m.max_qty),
                 "stepSize": fmt(Decimal(0))},
                {"filterType": "NOTIONAL", "minNotional": fmt(m.min_notional), "applyMinToMarket": True,
                 "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            ],
            "permissions": [], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "NONE",
            "allowedSelfTradePreventionModes": ["NONE"],
        }

    def _symbol_param(self, ctx: Ctx, required: bool = True) -> str | None:
        symbol = ctx.need("symbol") if required else ctx.get("symbol")
        if symbol is not None:
            self.ex.market(symbol)
        return symbol

    def _symbols_list(self, ctx: Ctx) -> list[str]:
        symbol = ctx.get("symbol")
        if symbol is not None:
            self.ex.market(symbol)
            return [symbol]
        many = ctx.get("symbols")
        if many is not None:
            try:
                names = json.loads(many)
            except ValueError:
                raise BinanceError(-1100, "Illegal characters found in parameter 'symbols'.") from None
            for name in names:
                self.ex.market(name)
            return list(names)
        return list(self.ex.markets)

    # ----- public endpoints --------------------------------------------------------
    def ping(self, ctx: Ctx) -> Any:
        return {}

    def server_time(self, ctx: Ctx) -> Any:
        return {"serverTime": _wall_ms()}

    def exchange_info(self, ctx: Ctx) -> Any:
        return {"timezone": "UTC", "serverTime": _wall_ms(),
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                     "limit": self.limiter.limit},
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                ],
                "exchangeFilters": [], "symbols": [self._symbol_json(s) for s in self._symbols_list(ctx)]}

    def empty_exchange_info(self, ctx: Ctx) -> Any:
        return {"timezone": "UTC", "serverTime": _wall_ms(), "rateLimits": [], "exchangeFilters": [],
                "assets": [], "symbols": []}

    def depth(self, ctx: Ctx) -> Any:
        symbol = self._symbol_param(ctx)
        assert symbol is not None
        limit = min(ctx.integer("limit", 100) or 100, 5000)
        self.ex.sync()
        m = self.ex.markets[symbol]
        bid, ask = self.ex.book(symbol)
        size = (m.min_notional * 100 / ask / m.step).to_integral_value() * m.step
        levels = min(limit, 20)
        bids = [[fmt(bid - i * m.tick), fmt(size)] for i in range(levels) if bid - i * m.tick > 0]
        asks = [[fmt(ask + i * m.tick), fmt(size)] for i in range(levels)]
        return {"lastUpdateId": self.ex.synced_ms, "bids": bids, "asks": asks}

    def klines(self, ctx: Ctx) -> Any:
        symbol = self._symbol_param(ctx)
        assert symbol is not None
        interval = ctx.need("interval")
        if interval not in INTERVALS:
            raise BinanceError(-1120, "Invalid interval.")
        limit = min(ctx.integer("limit", 500) or 500, 1000)
        now = self.ex.sync()
        try:
            rows = self.ex.replays[symbol].klines(INTERVALS[interval] * 1000, now, limit, ctx.integer("startTime"),
                                                  ctx.integer("endTime"))
        except ValueError:
            raise BinanceError(-1120, "Invalid interval.") from None
        return [[k.open_ms, fmt(k.open), fmt(k.high), fmt(k.low), fmt(k.close), fmt(k.volume), k.close_ms,
                 fmt(k.volume * k.close), 0, "0", "0", "0"] for k in rows]

    def avg_price(self, ctx: Ctx) -> Any:
        symbol = self._symbol_param(ctx)
        assert symbol is not None
        now = self.ex.sync()
        replay = self.ex.replays[symbol]
        recent = replay.klines(replay.interval_ms, now, max(1, 300_000 // replay.interval_ms))
        closes = [k.close for k in recent] or [self.ex.price(symbol)]
        m = self.ex.markets[symbol]
        return {"mins": 5, "price": fmt((sum(closes, Decimal(0)) / len(closes)).quantize(m.tick)),
                "closeTime": now}

    def system_status(self, ctx: Ctx) -> Any:
        return {"status": 0, "msg": "normal"}

    def ticker_price(self, ctx: Ctx) -> Any:
        symbols = self._symbols_list(ctx)
        self.ex.sync()
        rows = [{"symbol": s, "price": fmt(self.ex.price(s))} for s in symbols]
        return rows[0] if ctx.get("symbol") else rows

    def book_ticker(self, ctx: Ctx) -> Any:
        symbols = self._symbols_list(ctx)
        self.ex.sync()
        rows = []
        for s in symbols:
            bid, ask = self.ex.book(s)
            rows.append({"symbol": s, "bidPrice": fmt(bid), "bidQty": "1.00000000", "askPrice": fmt(ask),
                         "askQty": "1.00000000"})
        return rows[0] if ctx.get("symbol") else rows

    def ticker_24hr(self, ctx: Ctx) -> Any:
        symbols = self._symbols_list(ctx)
        now = self.ex.sync()
        rows = []
        for s in symbols:
            replay = self.ex.replays[s]
            candles = replay.klines(replay.interval_ms, now, 86400000 // replay.interval_ms)
            last = self.ex.price(s)
            bid, ask = self.ex.book(s)
            first = candles[0].open if candles else last
            high = max((k.high for k in candles), default=last)
            low = min((k.low for k in candles), default=last)
            volume = sum((k.volume for k in candles), Decimal(0))
            change = last - first
            rows.append({
                "symbol": s, "priceChange": fmt(change),
                "priceChangePercent": fmt(change * 100 / first if first else Decimal(0), Decimal("0.001")),
                "weightedAvgPrice": fmt((first + last) / 2), "prevClosePrice": fmt(first), "lastPrice": fmt(last),
                "lastQty": "0.00000000", "bidPrice": fmt(bid), "bidQty": "1.00000000", "askPrice": fmt(ask),
                "askQty": "1.00000000", "openPrice": fmt(first), "highPrice": fmt(high), "lowPrice": fmt(low),
                "volume": fmt(volume), "quoteVolume": fmt(volume * last),
                "openTime": candles[0].open_ms if candles else now, "closeTime": now, "firstId": 0, "lastId": 0,
                "count": len(candles)})
        return rows[0] if ctx.get("symbol") else rows

    # ----- trading -----------------------------------------------------------------
    def _parse_order(self, ctx: Ctx) -> tuple[OrderRequest, str]:
        symbol = self._symbol_param(ctx)
        assert symbol is not None
        side = ctx.need("side")
        if side not in ("BUY", "SELL"):
            raise BinanceError(-1117, "Invalid side.")
        kind = ctx.need("type")
        if kind not in ("LIMIT", "MARKET", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
            raise BinanceError(-1116, "Invalid orderType.")
        tif = ctx.get("timeInForce")
        qty, quote_qty = ctx.decimal("quantity"), ctx.decimal("quoteOrderQty")
        price, stop = ctx.decimal("price"), ctx.decimal("stopPrice")
        if kind == "MARKET":
            if qty is None and quote_qty is None:
                raise BinanceError(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were "
                                          "empty/null!")
            if qty is not None and quote_qty is not None:
                raise BinanceError(-1106, "Parameter 'quoteOrderQty' sent when not required.")
            for name, value in (("price", price), ("timeInForce", tif), ("stopPrice", stop)):
                if value is not None:
                    raise BinanceError(-1106, f"Parameter '{name}' sent when not required.")
        else:
            if quote_qty is not None:
                raise BinanceError(-1106, "Parameter 'quoteOrderQty' sent when not required.")
            needed = ["quantity", "price"] + (["timeInForce"] if kind != "LIMIT_MAKER" else [])
            needed += ["stopPrice"] if kind in STOP_TYPES else []
            for name in needed:
                ctx.need(name)
            if kind == "LIMIT_MAKER" and tif is not None:
                raise BinanceError(-1106, "Parameter 'timeInForce' sent when not required.")
            if kind in ("LIMIT", "LIMIT_MAKER") and stop is not None:
                raise BinanceError(-1106, "Parameter 'stopPrice' sent when not required.")
        if tif is not None and tif not in ("GTC", "IOC", "FOK"):
            raise BinanceError(-1115, "Invalid timeInForce.")
        client_id = ctx.get("newClientOrderId")
        if client_id is not None and not re.match(r"^[.A-Za-z:/0-9_-]{1,36}$", client_id):
            raise BinanceError(-1100, "Illegal characters found in parameter 'newClientOrderId'; legal range is "
                                      "'^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.")
        default_resp = "FULL" if kind in ("MARKET", "LIMIT") else "ACK"
        resp_type = ctx.get("newOrderRespType") or default_resp
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise BinanceError(-1100, "Illegal characters found in parameter 'newOrderRespType'.")
        return OrderRequest(symbol, side, kind, tif or "GTC", qty, quote_qty, price, stop, client_id), resp_type

    def new_order(self, ctx: Ctx) -> Any:
        assert ctx.key is not None
        request, resp_type = self._parse_order(ctx)
        order = self.ex.place(ctx.key, request)
        return self._new_order_json(order, resp_type)

    def test_order(self, ctx: Ctx) -> Any:
        self._parse_order(ctx)
        return {}

    def _order_ref(self, ctx: Ctx) -> tuple[str, int | None, str | None]:
        symbol = self._symbol_param(ctx)
        assert symbol is not None
        order_id = ctx.integer("orderId")
        client_id = ctx.get("origClientOrderId")
        if order_id is None and client_id is None:
            raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were "
                                      "empty/null!")
        return symbol, order_id, client_id

    def get_order(self, ctx: Ctx) -> Any:
        symbol, order_id, client_id = self._order_ref(ctx)
        self.ex.sync()
        return self._order_json(self.ex.find(ctx.account_id, symbol, order_id, client_id))

    def cancel_order(self, ctx: Ctx) -> Any:
        symbol, order_id, client_id = self._order_ref(ctx)
        order = self.ex.cancel(ctx.account_id, symbol, order_id, client_id)
        return self._cancel_json(order, ctx.get("newClientOrderId"))

    def _cancel_json(self, order: Order, new_client_id: str | None) -> dict[str, Any]:
        out = self._order_json(order)
        for drop in ("time", "updateTime", "isWorking", "icebergQty", "workingTime", "origQuoteOrderQty"):
            out.pop(drop, None)
        if order.type not in STOP_TYPES:
            out.pop("stopPrice", None)
        out["origClientOrderId"] = order.client_id
        out["clientOrderId"] = new_client_id or f"cancel{order.id}"
        out["transactTime"] = self.ex.synced_ms
        return out

    def open_orders(self, ctx: Ctx) -> Any:
        symbol = self._symbol_param(ctx, required=False)
        return [self._order_json(o) for o in self.ex.open_orders(ctx.account_id, symbol)]

    def cancel_open_orders(self, ctx: Ctx) -> Any:
        symbol = self._symbol_param(ctx)
        assert symbol is not None
        return [self._cancel_json(o, None) for o in self.ex.cancel_all(ctx.account_id, symbol)]

    @staticmethod
    def _window(ctx: Ctx, rows: list[Any], time_of: Callable[[Any], int], id_of: Callable[[Any], int],
                from_name: str) -> list[Any]:
        limit = min(ctx.integer("limit", 500) or 500, 1000)
        start, end, from_id = ctx.integer("startTime"), ctx.integer("endTime"), ctx.integer(from_name)
        if start is not None:
            rows = [r for r in rows if time_of(r) >= start]
        if end is not None:
            rows = [r for r in rows if time_of(r) <= end]
        if from_id is not None:
            return [r for r in rows if id_of(r) >= from_id][:limit]
        return rows[-limit:]

    def all_orders(self, ctx: Ctx) -> Any:
        symbol = self._symbol_param(ctx)
        rows = [o for o in self.ex.all_orders(ctx.account_id) if o.symbol == symbol]
        rows = self._window(ctx, rows, lambda o: o.time_ms, lambda o: o.id, "orderId")
        return [self._order_json(o) for o in rows]

    def my_trades(self, ctx: Ctx) -> Any:
        """``GET /api/v3/myTrades`` as Binance documents it: the supported combinations are
        symbol alone (the most recent trades), + orderId, + fromId (trades with id >= fromId),
        + orderId + fromId, + startTime and/or endTime (filtered by execution time, at most
        24 hours apart); any other combination is -1128, a wider window -1127. Pages hold
        ``limit`` trades (default 500, at most 1,000), oldest first.

        What Binance answers to startTime or endTime alone is not documented; simex reads it
        as a 24-hour window from startTime (or up to endTime), oldest first, and sealbot's
        venue never relies on it (it always sends both ends)."""
        symbol = self._symbol_param(ctx)
        limit = min(ctx.integer("limit", 500) or 500, 1000)
        order_id, from_id = ctx.integer("orderId"), ctx.integer("fromId")
        start, end = ctx.integer("startTime"), ctx.integer("endTime")
        timed = start is not None or end is not None
        if timed and (from_id is not None or order_id is not None):
            raise BinanceError(-1128, "Combination of optional parameters invalid.")
        if start is not None and end is not None and end - start > MY_TRADES_WINDOW_MS:
            raise BinanceError(-1127, "More than 24 hours between startTime and endTime.")
        rows = sorted(self.ex.my_trades(ctx.account_id, symbol), key=lambda t: t.id)
        if order_id is not None:
            rows = [t for t in rows if t.order_id == order_id]
        if from_id is not None:
            rows = [t for t in rows if t.id >= from_id][:limit]
        elif timed:
            low = start if start is not None else (end or 0) - MY_TRADES_WINDOW_MS
            high = end if end is not None else (start or 0) + MY_TRADES_WINDOW_MS
            rows = [t for t in rows if low <= t.time_ms <= high][:limit]
        elif order_id is not None:
            rows = rows[:limit]
        else:
            rows = rows[-limit:]
        return [self._trade_json(t) for t in rows]

    def account(self, ctx: Ctx) -> Any:
        assert ctx.key is not None
        self.ex.sync()
        acct = self.ex.account(ctx.account_id)
        omit = (ctx.get("omitZeroBalances") or "false").lower() == "true"
        balances = [{"asset": a, "free": fmt(b.free), "locked": fmt(b.locked)}
                    for a, b in sorted(acct.balances.items()) if not omit or b.free or b.locked]
        bps = int(acct.maker_fee * 10000), int(acct.taker_fee * 10000)
        return {"makerCommission": bps[0], "takerCommission": bps[1], "buyerCommission": 0, "sellerCommission": 0,
                "commissionRates": {"maker": fmt(acct.maker_fee), "taker": fmt(acct.taker_fee),
                                    "buyer": fmt(Decimal(0)), "seller": fmt(Decimal(0))},
                "canTrade": "spot" in ctx.key.permissions, "canWithdraw": "withdrawals" in ctx.key.permissions,
                "canDeposit": True, "brokered": False, "requireSelfTradePrevention": False, "preventSor": False,
                "updateTime": self.ex.synced_ms, "accountType": "SPOT", "balances": balances,
                "permissions": ["SPOT"], "uid": acct.id}

    def api_restrictions(self, ctx: Ctx) -> Any:
        key = ctx.key
        assert key is not None
        out: dict[str, Any] = {"ipRestrict": bool(key.ip_whitelist), "createTime": key.created_ms}
        for name, field in PERMISSIONS.items():
            out[field] = name in key.permissions
        out["enablePortfolioMarginTrading"] = False
        out["enableFixApiTrade"] = False
        out["enableFixReadOnly"] = False
        return out

    def capital_config(self, ctx: Ctx) -> Any:
        acct = self.ex.account(ctx.account_id)
        assets = sorted({a for m in self.ex.markets.values() for a in (m.base, m.quote)})
        rows = []
        for asset in assets:
            bal = acct.balances.get(asset)
            network = {"network": asset, "coin": asset, "name": asset, "isDefault": True, "depositEnable": True,
                       "withdrawEnable": True, "depositDesc": "", "withdrawDesc": "", "specialTips": "",
                       "withdrawIntegerMultiple": "0.00000001", "withdrawFee": "0", "withdrawMin": "0",
                       "withdrawMax": "9999999999", "minConfirm": 1, "unLockConfirm": 0, "sameAddress": False,
                       "busy": False, "resetAddressStatus": False, "addressRegex": "", "memoRegex": ""}
            rows.append({"coin": asset, "name": asset, "depositAllEnable": True, "withdrawAllEnable": True,
                         "free": fmt(bal.free if bal else Decimal(0)),
                         "locked": fmt(bal.locked if bal else Decimal(0)), "freeze": "0", "withdrawing": "0",
                         "ipoing": "0", "ipoable": "0", "storage": "0", "isLegalMoney": False, "trading": True,
                         "networkList": [network]})
        return rows

    def empty_list(self, ctx: Ctx) -> Any:
        return []

    def _endpoints(self) -> list[Endpoint]:
        def by_symbol(with_symbol: int, without: int) -> Callable[[dict[str, str]], int]:
            return lambda p: with_symbol if p.get("symbol") else without

        def depth_weight(p: dict[str, str]) -> int:
            limit = int(p["limit"]) if p.get("limit", "").isdigit() else 100
            return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250

        e = Endpoint
        return [
            e("GET", "/api/v3/ping", self.ping),
            e("GET", "/api/v3/time", self.server_time),
            e("GET", "/api/v3/exchangeInfo", self.exchange_info, weight=lambda p: 20),
            e("GET", "/api/v3/depth", self.depth, weight=depth_weight),
            e("GET", "/api/v3/klines", self.klines, weight=lambda p: 2),
            e("GET", "/api/v3/avgPrice", self.avg_price, weight=lambda p: 2),
            e("GET", "/sapi/v1/system/status", self.system_status),
            e("GET", "/api/v3/ticker/price", self.ticker_price, weight=by_symbol(2, 4)),
            e("GET", "/api/v3/ticker/bookTicker", self.book_ticker, weight=by_symbol(2, 4)),
            e("GET", "/api/v3/ticker/24hr", self.ticker_24hr, weight=by_symbol(2, 80)),
            e("POST", "/api/v3/order", self.new_order, SIGNED, permission="spot"),
            e("POST", "/api/v3/order/test", self.test_order, SIGNED, permission="spot"),
            e("GET", "/api/v3/order", self.get_order, SIGNED, weight=lambda p: 4),
            e("DELETE", "/api/v3/order", self.cancel_order, SIGNED, permission="spot"),
            e("GET", "/api/v3/openOrders", self.open_orders, SIGNED, weight=by_symbol(6, 80)),
            e("DELETE", "/api/v3/openOrders", self.cancel_open_orders, SIGNED, permission="spot"),
            e("GET", "/api/v3/allOrders", self.all_orders, SIGNED, weight=lambda p: 20),
            e("GET", "/api/v3/myTrades", self.my_trades, SIGNED, weight=lambda p: 20),
            e("GET", "/api/v3/account", self.account, SIGNED, weight=lambda p: 20),
            e("GET", "/sapi/v1/account/apiRestrictions", self.api_restrictions, SIGNED),
            e("GET", "/sapi/v1/capital/config/getall", self.capital_config, SIGNED, weight=lambda p: 10),
            e("GET", "/sapi/v1/margin/allPairs", self.empty_list, SIGNED),
            e("GET", "/sapi/v1/margin/isolated/allPairs", self.empty_list, SIGNED, weight=lambda p: 10),
            e("GET", "/fapi/v1/exchangeInfo", self.empty_exchange_info),
            e("GET", "/dapi/v1/exchangeInfo", self.empty_exchange_info),
        ]
