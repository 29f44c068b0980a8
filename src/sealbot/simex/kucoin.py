"""KuCoin spot dialect (classic, non-HF endpoints), at KuCoin's own paths.

Authentication follows KuCoin's API-key version 2: headers ``KC-API-KEY``,
``KC-API-TIMESTAMP`` (ms, within 5 s of the server), ``KC-API-PASSPHRASE`` =
base64 HMAC-SHA256 of the passphrase with the secret (version 1: the passphrase
itself), ``KC-API-KEY-VERSION`` and ``KC-API-SIGN`` = base64 HMAC-SHA256 of
``timestamp + METHOD + path?query + body`` with the secret. Answers are
``{"code": "200000", "data": ...}``; errors ``{"code": "<code>", "msg": ...}``.

simex keeps one book for both dialects: a key created with a ``passphrase`` can
trade the same account through either.

``POST /api/v1/bullet-public`` and ``/api/v1/bullet-private`` hand out websocket connect
tokens through ``bullet`` (``simex.ws_kucoin``, which serves the websocket itself).
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealbot.simex.core import Exchange, Order, OrderRequest, Trade
from sealbot.simex.errors import Reason, SimexError
from sealbot.simex.http import Incoming, apply_faults, json_response, plain, read_request
from sealbot.simex.keys import ApiKey
from sealbot.simex.ratelimit import WeightLimiter

CANDLE_TYPES = {"1min": 60, "3min": 180, "5min": 300, "15min": 900, "30min": 1800, "1hour": 3600,
                "2hour": 7200, "4hour": 14400, "6hour": 21600, "8hour": 28800, "12hour": 43200, "1day": 86400,
                "1week": 604800}
DAY_MS = 24 * 3600 * 1000
FILLS_WINDOW_MS = 7 * DAY_MS  # /api/v1/fills: at most 7 days between startAt and endAt
KC_PERMISSIONS = {"reading": "General", "spot": "Spot", "margin": "Margin", "futures": "Futures",
                  "withdrawals": "Withdrawal", "internal_transfer": "InnerTransfer", "universal_transfer": "Transfer",
                  "options": "Options"}


class KucoinError(Exception):
    def __init__(self, code: str, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


_FILTER_MSGS = {"LOT_SIZE": "Order size increment invalid.",
                "NOTIONAL": "Order size below the minimum requirement.",
                "PRICE_FILTER": "Price increment invalid."}


def _render(err: SimexError, cancelling: bool) -> KucoinError:
    r = err.reason
    if r is Reason.INSUFFICIENT_BALANCE:
        return KucoinError("200004", "Balance insufficient!")
    if r is Reason.UNKNOWN_SYMBOL:
        return KucoinError("400100", "Unsupported trading pair.")
    if r is Reason.FILTER:
        return KucoinError("400100", _FILTER_MSGS.get(err.detail, "Parameter Error"))
    if r is Reason.DUPLICATE_ORDER:
        return KucoinError("126044", "clientOid duplicate")
    if r is Reason.WOULD_TAKE:
        return KucoinError("300000", "Post only order would be filled immediately.")
    if r is Reason.REJECTED:
        return KucoinError("400200", "Forbidden to place an order")
    if r is Reason.UNKNOWN_ORDER:
        return KucoinError("400100", "order_not_exist_or_not_allow_to_cancel" if cancelling else "order not exist.",
                           404 if not cancelling else 400)
    return KucoinError("400100", err.message)


@dataclass
class KcCtx:
    req: Incoming
    key: ApiKey | None
    path_params: dict[str, str]
    body: dict[str, Any]

    @property
    def account_id(self) -> int:
        assert self.key is not None
        return self.key.account_id

    def get(self, name: str) -> str | None:
        value = self.body.get(name, self.req.params.get(name))
        return None if value in (None, "") else str(value)

    def decimal(self, name: str) -> Decimal | None:
        value = self.get(name)
        if value is None:
            return None
        try:
            out = Decimal(value)
        except InvalidOperation:
            raise KucoinError("400100", f"{name} invalid") from None
        if not out.is_finite() or out <= 0:
            raise KucoinError("400100", f"{name} invalid")
        return out


Handler = Callable[[KcCtx], Any]
# (account id or None for a public token, the Host the client asked, its scheme) -> bullet data
Bullet = Callable[[int | None, str, str], dict[str, Any]]


# Request weights, as KuCoin publishes them per endpoint (default 2).
WEIGHTS = {"/api/v1/market/allTickers": 15, "/api/v1/market/candles": 3, "/api/v1/accounts": 5,
           "/api/v1/user/api-key": 20, "/api/v1/fills": 10, "/api/v3/currencies": 3, "/api/v2/symbols": 4,
           "/api/v1/symbols": 4, "/api/v3/market/orderbook/level2": 3, "/api/v1/bullet-public": 10,
           "/api/v1/bullet-private": 10}


class KucoinDialect:
    """Routes of the KuCoin spot API. Rate limit: one pool per client IP, ``limiter.limit``
    weight per 30 s, answered with 429000 and KuCoin's ``gw-ratelimit-*`` headers."""

    def __init__(self, exchange: Exchange, limiter: WeightLimiter | None = None,
                 bullet: Bullet | None = None) -> None:
        self.ex = exchange
        self.limiter = limiter or WeightLimiter(limit=4000, ban_after=10**9, window_s=30)
        self.bullet = bullet  # issues websocket connect tokens (simex.ws_kucoin); None: no websocket

    # ----- plumbing ----------------------------------------------------------------
    def routes(self) -> list[Route]:
        table: list[tuple[str, str, Handler, bool, str | None]] = [
            ("GET", "/api/v1/timestamp", self.timestamp, False, None),
            ("GET", "/api/v1/status", self.status, False, None),
            ("GET", "/api/v1/symbols", self.symbols, False, None),
            ("GET", "/api/v2/symbols", self.symbols, False, None),
            ("GET", "/api/v3/currencies", self.currencies, False, None),
            ("GET", "/api/v1/market/allTickers", self.all_tickers, False, None),
            ("GET", "/api/v1/market/stats", self.stats, False, None),
            ("GET", "/api/v1/market/orderbook/level1", self.level1, False, None),
            ("GET", "/api/v1/market/orderbook/level2_20", self.level2, False, None),
            ("GET", "/api/v1/market/orderbook/level2_100", self.level2, False, None),
            ("GET", "/api/v1/market/candles", self.candles, False, None),
            ("GET", "/api/v3/market/orderbook/level2", self.level2, True, None),
            ("GET", "/api/v1/contracts/active", self.empty_list, False, None),
            ("GET", "/api/v1/hf/accounts/opened", self.hf_opened, True, None),
            ("GET", "/api/v3/margin/symbols", self.margin_symbols, True, None),
            ("GET", "/api/ua/v1/account/mode", self.account_mode, True, None),
            ("GET", "/api/v1/isolated/symbols", self.empty_list, True, None),
            ("GET", "/api/v1/user/api-key", self.api_key_info, True, None),
            ("GET", "/api/v1/accounts", self.accounts, True, None),
            ("POST", "/api/v1/orders", self.place, True, "spot"),
            ("GET", "/api/v1/orders", self.list_orders, True, None),
            ("DELETE", "/api/v1/orders", self.cancel_all, True, "spot"),
            ("GET", "/api/v1/orders/{orderId}", self.get_order, True, None),
            ("DELETE", "/api/v1/orders/{orderId}", self.cancel, True, "spot"),
            ("GET", "/api/v1/order/client-order/{clientOid}", self.get_by_client, True, None),
            ("DELETE", "/api/v1/order/client-order/{clientOid}", self.cancel_by_client, True, "spot"),
            ("GET", "/api/v1/fills", self.fills, True, None),
            ("POST", "/api/v1/bullet-public", self.bullet_public, False, None),
            ("POST", "/api/v1/bullet-private", self.bullet_private, True, None),
        ]
        grouped: dict[str, dict[str, tuple[Handler, bool, str | None]]] = {}
        for method, path, fn, private, perm in table:
            grouped.setdefault(path, {})[method] = (fn, private, perm)
        return [Route(path, self._make(eps), methods=list(eps)) for path, eps in grouped.items()]

    def _make(self, eps: dict[str, tuple[Handler, bool, str | None]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            fn, private, perm = eps[request.method]
            req = await read_request(request)
            weight = WEIGHTS.get(req.path, 2)
            self.ex.requests.add(req.method, req.path, weight)
            verdict = self.limiter.charge(req.ip, weight)
            headers = {"gw-ratelimit-limit": str(self.limiter.limit),
                       "gw-ratelimit-remaining": str(max(0, self.limiter.limit - verdict.used)),
                       "gw-ratelimit-reset": str(int(self.limiter.window_s * 1000 - time.time() * 1000
                                                     % (self.limiter.window_s * 1000)))}
            if verdict.status != 200:
                return self._too_many(headers)
            early = await apply_faults(self.ex.faults, req.headers.get("kc-api-key"), req.path, self._too_many)
            if early is not None:
                return early
            try:
                body: dict[str, Any] = {}
                if req.body and "json" in req.headers.get("content-type", ""):
                    try:
                        body = json.loads(req.body)
                    except ValueError:
                        raise KucoinError("400100", "Parameter Error: body is not JSON") from None
                key = self._authenticate(req, perm) if private else None
                result = fn(KcCtx(req, key, {k: str(v) for k, v in request.path_params.items()}, body))
            except KucoinError as err:
                return json_response({"code": err.code, "msg": err.msg}, err.status, headers)
            except SimexError as err:
                rendered = _render(err, request.method == "DELETE")
                return json_response({"code": rendered.code, "msg": rendered.msg}, rendered.status, headers)
            return json_response({"code": "200000", "data": result}, 200, headers)
        return endpoint

    @staticmethod
    def _too_many(headers: dict[str, str] | None = None) -> Response:
        return json_response({"code": "429000", "msg": "Too many requests. System-level rate limit exceeded."}, 429,
                             headers)

    def _authenticate(self, req: Incoming, permission: str | None) -> ApiKey:
        h = req.headers
        name, sign, stamp, passphrase = (h.get("kc-api-key"), h.get("kc-api-sign"), h.get("kc-api-timestamp"),
                                         h.get("kc-api-passphrase"))
        if not (name and sign and stamp and passphrase):
            raise KucoinError("400001", "Please check the header of your request for KC-API-KEY, KC-API-SIGN, "
                                        "KC-API-TIMESTAMP, KC-API-PASSPHRASE", 401)
        if not stamp.isdigit() or abs(int(stamp) - int(time.time() * 1000)) > 5000:
            raise KucoinError("400002", "KC-API-TIMESTAMP Invalid -- Time differs from server time by more than "
                                        "5 seconds", 401)
        key = self.ex.keys.get(name)
        if key is None or not key.enabled:
            raise KucoinError("400003", "KC-API-KEY not exists", 401)
        if key.secret is None or key.passphrase is None:
            raise KucoinError("400004", "Invalid KC-API-PASSPHRASE", 401)
        version = h.get("kc-api-key-version", "1")
        expected_pass = key.hmac_b64(key.passphrase.encode()) if version in ("2", "3") else key.passphrase
        if not hmac.compare_digest(expected_pass.encode(), passphrase.encode()):
            raise KucoinError("400004", "Invalid KC-API-PASSPHRASE", 401)
        target = req.path + (f"?{req.query}" if req.query else "")
        payload = (stamp + req.method + target).encode() + req.body
        if not hmac.compare_digest(key.hmac_b64(payload).encode(), sign.encode()):
            raise KucoinError("400005", "Invalid KC-API-SIGN", 401)
        if not key.allows_ip(req.ip):
            raise KucoinError("400006", f"Invalid request ip, the current clientIp is:{req.ip}", 401)
        if permission is not None and permission not in key.permissions:
            raise KucoinError("400007", "Access denied, require more permission.", 401)
        return key

    # ----- rendering ---------------------------------------------------------------
    def _spec(self, kc_symbol: str | None) -> str:
        if kc_symbol is None:
            raise KucoinError("400100", "symbol is required")
        binance_id = kc_symbol.replace("-", "")
        if binance_id not in self.ex.markets or "-" not in kc_symbol:
            raise KucoinError("400100", "Unsupported trading pair.")
        return binance_id

    def _kc(self, symbol: str) -> str:
        return self.ex.markets[symbol].kucoin_symbol

    def _order_json(self, o: Order) -> dict[str, Any]:
        fee = sum((t.commission for t in o.trades), Decimal(0))
        spec = self.ex.markets[o.symbol]
        return {
            "id": str(o.id), "symbol": self._kc(o.symbol), "opType": "DEAL", "type": o.type.lower()
            if o.type in ("LIMIT", "MARKET") else "limit", "side": o.side.lower(),
            "price": plain(o.price) if o.price is not None else "0", "size": plain(o.orig_qty),
            "funds": plain(o.orig_quote_qty), "dealFunds": plain(o.cum_quote), "dealSize": plain(o.executed_qty),
            "fee": plain(fee), "feeCurrency": spec.base if o.side == "BUY" else spec.quote, "stp": "", "stop": "",
            "stopTriggered": False, "stopPrice": "0", "timeInForce": o.tif, "postOnly": o.type == "LIMIT_MAKER",
            "hidden": False, "iceberg": False, "visibleSize": "0", "cancelAfter": 0, "channel": "API",
            "clientOid": o.client_id, "remark": None, "tags": None, "isActive": o.is_open,
            "cancelExist": o.status in ("CANCELED", "EXPIRED") and o.remaining > 0, "createdAt": o.time_ms,
            "tradeType": "TRADE",
        }

    def _fill_json(self, t: Trade) -> dict[str, Any]:
        acct = self.ex.accounts[t.account_id]
        return {"symbol": self._kc(t.symbol), "tradeId": str(t.id), "orderId": str(t.order_id),
                "counterOrderId": "simex", "side": t.side.lower(), "liquidity": "maker" if t.is_maker else "taker",
                "forceTaker": False, "price": plain(t.price), "size": plain(t.qty), "funds": plain(t.quote_qty),
                "fee": plain(t.commission), "feeRate": plain(acct.maker_fee if t.is_maker else acct.taker_fee),
                "feeCurrency": t.commission_asset, "stop": "", "type": "limit", "createdAt": t.time_ms,
                "tradeType": "TRADE"}

    @staticmethod
    def _page(ctx: KcCtx, rows: list[Any]) -> dict[str, Any]:
        size = min(int(ctx.get("pageSize") or 50), 500)
        page = max(int(ctx.get("currentPage") or 1), 1)
        chunk = rows[(page - 1) * size: page * size]
        return {"currentPage": page, "pageSize": size, "totalNum": len(rows),
                "totalPage": (len(rows) + size - 1) // size, "items": chunk}

    # ----- public --------------------------------------------------------------------
    def timestamp(self, ctx: KcCtx) -> Any:
        return int(time.time() * 1000)

    def status(self, ctx: KcCtx) -> Any:
        return {"status": "open", "msg": ""}

    def symbols(self, ctx: KcCtx) -> Any:
        rows = []
        for m in self.ex.markets.values():
            rows.append({"symbol": m.kucoin_symbol, "name": m.kucoin_symbol, "baseCurrency": m.base,
                         "quoteCurrency": m.quote, "feeCurrency": m.quote, "market": m.quote,
                         "baseMinSize": plain(m.min_qty), "quoteMinSize": plain(m.min_notional),
                         "baseMaxSize": plain(m.max_qty), "quoteMaxSize": "99999999",
                         "baseIncrement": plain(m.step), "quoteIncrement": "0.00000001",
                         "priceIncrement": plain(m.tick), "priceLimitRate": "0.1", "minFunds": plain(m.min_notional),
                         "isMarginEnabled": False, "enableTrading": True, "feeCategory": 1,
                         "makerFeeCoefficient": "1.00", "takerFeeCoefficient": "1.00", "st": False})
        return rows

    def currencies(self, ctx: KcCtx) -> Any:
        assets = sorted({a for m in self.ex.markets.values() for a in (m.base, m.quote)})
        return [{"currency": a, "name": a, "fullName": a, "precision": 8, "confirms": None, "contractAddress": None,
                 "isMarginEnabled": False, "isDebitEnabled": False,
                 "chains": [{"chainName": a, "withdrawalMinSize": "0", "depositMinSize": "0", "withdrawFeeRate": "0",
                             "withdrawalMinFee": "0", "isWithdrawEnabled": True, "isDepositEnabled": True,
                             "confirms": 1, "preConfirms": 1, "contractAddress": "", "withdrawPrecision": 8,
                             "maxWithdraw": None, "maxDeposit": None, "needTag": False, "chainId": a.lower()}]}
                for a in assets]

    def _ticker(self, symbol: str) -> dict[str, Any]:
        replay = self.ex.replays[symbol]
        now = self.ex.synced_ms
        candles = replay.klines(replay.interval_ms, now, 86400000 // replay.interval_ms)
        last = self.ex.price(symbol)
        bid, ask = self.ex.book(symbol)
        first = candles[0].open if candles else last
        vol = sum((k.volume for k in candles), Decimal(0))
        acct_fee = self.ex.default_taker_fee
        return {"symbol": self._kc(symbol), "symbolName": self._kc(symbol), "buy": plain(bid), "sell": plain(ask),
                "bestBidSize": "1", "bestAskSize": "1",
                "changeRate": plain((last - first) / first) if first else "0", "changePrice": plain(last - first),
                "high": plain(max((k.high for k in candles), default=last)),
                "low": plain(min((k.low for k in candles), default=last)), "vol": plain(vol),
                "volValue": plain(vol * last), "last": plain(last), "averagePrice": plain((first + last) / 2),
                "takerFeeRate": plain(acct_fee), "makerFeeRate": plain(self.ex.default_maker_fee),
                "takerCoefficient": "1", "makerCoefficient": "1", "time": now}

    def all_tickers(self, ctx: KcCtx) -> Any:
        self.ex.sync()
        return {"time": self.ex.synced_ms, "ticker": [self._ticker(s) for s in self.ex.markets]}

    def stats(self, ctx: KcCtx) -> Any:
        symbol = self._spec(ctx.get("symbol"))
        self.ex.sync()
        return self._ticker(symbol)

    def level1(self, ctx: KcCtx) -> Any:
        symbol = self._spec(ctx.get("symbol"))
        self.ex.sync()
        bid, ask = self.ex.book(symbol)
        return {"time": self.ex.synced_ms, "sequence": str(self.ex.synced_ms), "price": plain(self.ex.price(symbol)),
                "size": "0", "bestBid": plain(bid), "bestBidSize": "1", "bestAsk": plain(ask), "bestAskSize": "1"}

    def level2(self, ctx: KcCtx) -> Any:
        symbol = self._spec(ctx.get("symbol"))
        self.ex.sync()
        m = self.ex.markets[symbol]
        bid, ask = self.ex.book(symbol)
        depth = 20 if ctx.req.path.endswith("_20") else 100
        return {"time": self.ex.synced_ms, "sequence": str(self.ex.synced_ms),
                "bids": [[plain(bid - i * m.tick), "1"] for i in range(depth) if bid - i * m.tick > 0],
                "asks": [[plain(ask + i * m.tick), "1"] for i in range(depth)]}

    def candles(self, ctx: KcCtx) -> Any:
        symbol = self._spec(ctx.get("symbol"))
        kind = ctx.get("type") or "1min"
        if kind not in CANDLE_TYPES:
            raise KucoinError("400100", "type invalid")
        now = self.ex.sync()
        start, end = ctx.get("startAt"), ctx.get("endAt")
        try:
            rows = self.ex.replays[symbol].klines(CANDLE_TYPES[kind] * 1000, now, 1500,
                                                  int(start) * 1000 if start and start != "0" else None,
                                                  int(end) * 1000 if end and end != "0" else None)
        except ValueError:
            raise KucoinError("400100", "type invalid") from None
        return [[str(k.open_ms // 1000), plain(k.open), plain(k.close), plain(k.high), plain(k.low), plain(k.volume),
                 plain(k.volume * k.close)] for k in reversed(rows)]

    def empty_list(self, ctx: KcCtx) -> Any:
        return []

    def bullet_public(self, ctx: KcCtx) -> Any:
        """``POST /api/v1/bullet-public``: a public websocket token (simex.ws_kucoin)."""
        return self._bullet(ctx, None)

    def _bullet(self, ctx: KcCtx, account_id: int | None) -> Any:
        if self.bullet is None:
            raise KucoinError("400100", "simex serves no KuCoin websocket here")
        host = ctx.req.headers.get("host", "127.0.0.1")
        return self.bullet(account_id, host, ctx.req.headers.get("x-forwarded-proto", "http"))

    # ----- private -------------------------------------------------------------------
    def bullet_private(self, ctx: KcCtx) -> Any:
        """``POST /api/v1/bullet-private``: a websocket token bound to the key's account."""
        return self._bullet(ctx, ctx.account_id)

    def hf_opened(self, ctx: KcCtx) -> Any:
        return False

    def account_mode(self, ctx: KcCtx) -> Any:
        return {"selfAccountMode": "CLASSIC"}

    def margin_symbols(self, ctx: KcCtx) -> Any:
        return {"timestamp": self.ex.synced_ms, "items": []}

    def api_key_info(self, ctx: KcCtx) -> Any:
        key = ctx.key
        assert key is not None
        perms = ",".join(KC_PERMISSIONS[p] for p in sorted(key.permissions, key=list(KC_PERMISSIONS).index))
        return {"remark": key.label, "apiKey": key.key, "apiVersion": 3, "permission": perms,
                "ipWhitelist": ",".join(key.ip_whitelist), "createdAt": key.created_ms, "uid": key.account_id,
                "isMaster": True}

    def accounts(self, ctx: KcCtx) -> Any:
        self.ex.sync()
        acct = self.ex.account(ctx.account_id)
        kind, currency = ctx.get("type"), ctx.get("currency")
        if kind not in (None, "trade"):
            return []
        return [{"id": f"{acct.id}-{asset}", "currency": asset, "type": "trade", "balance": plain(b.free + b.locked),
                 "available": plain(b.free), "holds": plain(b.locked)}
                for asset, b in sorted(acct.balances.items()) if currency in (None, asset)]

    def place(self, ctx: KcCtx) -> Any:
        assert ctx.key is not None
        symbol = self._spec(ctx.get("symbol"))
        side = (ctx.get("side") or "").upper()
        if side not in ("BUY", "SELL"):
            raise KucoinError("400100", "side invalid")
        kind = ctx.get("type") or "limit"
        client_oid = ctx.get("clientOid") or uuid.uuid4().hex
        if len(client_oid) > 40:
            raise KucoinError("400100", "clientOid invalid")
        if kind == "market":
            size, funds = ctx.decimal("size"), ctx.decimal("funds")
            if (size is None) == (funds is None):
                raise KucoinError("400100", "Either size or funds must be provided, not both")
            request = OrderRequest(symbol, side, "MARKET", "GTC", size, funds, None, None, client_oid)
        elif kind == "limit":
            price, size = ctx.decimal("price"), ctx.decimal("size")
            if price is None or size is None:
                raise KucoinError("400100", "price and size are required for a limit order")
            tif = ctx.get("timeInForce") or "GTC"
            if tif not in ("GTC", "IOC", "FOK"):
                raise KucoinError("400100", "timeInForce invalid")
            post_only = str(ctx.get("postOnly")).lower() == "true"
            request = OrderRequest(symbol, side, "LIMIT_MAKER" if post_only else "LIMIT", tif, size, None, price,
                                   None, client_oid)
        else:
            raise KucoinError("400100", "type invalid")
        order = self.ex.place(ctx.key, request)
        return {"orderId": str(order.id)}

    def _order_id(self, ctx: KcCtx) -> int:
        raw = ctx.path_params.get("orderId", "")
        if not raw.isdigit():
            raise SimexError(Reason.UNKNOWN_ORDER, "order not exist.")
        return int(raw)

    def _owned(self, ctx: KcCtx, order_id: int) -> Order:
        order = self.ex.orders.get(order_id)
        if order is None or order.account_id != ctx.account_id:
            raise SimexError(Reason.UNKNOWN_ORDER, "order not exist.")
        return order

    def get_order(self, ctx: KcCtx) -> Any:
        self.ex.sync()
        return self._order_json(self._owned(ctx, self._order_id(ctx)))

    def get_by_client(self, ctx: KcCtx) -> Any:
        self.ex.sync()
        oid = ctx.path_params["clientOid"]
        for order in reversed(self.ex.orders_by_account.get(ctx.account_id, [])):
            if order.client_id == oid:
                return self._order_json(order)
        raise SimexError(Reason.UNKNOWN_ORDER, "order not exist.")

    def cancel(self, ctx: KcCtx) -> Any:
        order = self._owned(ctx, self._order_id(ctx))
        self.ex.cancel(ctx.account_id, order.symbol, order_id=order.id)
        return {"cancelledOrderIds": [str(order.id)]}

    def cancel_by_client(self, ctx: KcCtx) -> Any:
        oid = ctx.path_params["clientOid"]
        for order in reversed(self.ex.orders_by_account.get(ctx.account_id, [])):
            if order.client_id == oid:
                self.ex.cancel(ctx.account_id, order.symbol, order_id=order.id)
                return {"cancelledOrderId": str(order.id), "clientOid": oid}
        raise SimexError(Reason.UNKNOWN_ORDER, "order not exist.")

    def cancel_all(self, ctx: KcCtx) -> Any:
        symbols = [self._spec(ctx.get("symbol"))] if ctx.get("symbol") else list(self.ex.markets)
        done = [o for s in symbols for o in self.ex.cancel_all(ctx.account_id, s)]
        return {"cancelledOrderIds": [str(o.id) for o in done]}

    def list_orders(self, ctx: KcCtx) -> Any:
        status = ctx.get("status")
        symbol = self._spec(ctx.get("symbol")) if ctx.get("symbol") else None
        rows = [o for o in self.ex.all_orders(ctx.account_id) if symbol in (None, o.symbol)
                and (status is None or (status == "active") == o.is_open)]
        rows.sort(key=lambda o: o.id, reverse=True)
        return self._page(ctx, [self._order_json(o) for o in rows])

    def fills(self, ctx: KcCtx) -> Any:
        """``GET /api/v1/fills`` as KuCoin documents it: newest first, paged by
        ``currentPage``/``pageSize``, over a time range of at most 7 days (400100 beyond):
        ``startAt`` alone means ``[startAt, startAt + 7 days]``, ``endAt`` alone
        ``[endAt - 7 days, endAt]``, neither the last day (on simex's market clock)."""
        symbol = self._spec(ctx.get("symbol")) if ctx.get("symbol") else None
        order_id = ctx.get("orderId")
        start, end = self._ms_param(ctx, "startAt"), self._ms_param(ctx, "endAt")
        if start is None and end is None:
            end = self.ex.sync()
            start = end - DAY_MS
        elif start is None:
            assert end is not None
            start = end - FILLS_WINDOW_MS
        elif end is None:
            end = start + FILLS_WINDOW_MS
        if end - start > FILLS_WINDOW_MS:
            raise KucoinError("400100", "The time range between startAt and endAt cannot exceed 7 days")
        rows = [t for t in self.ex.my_trades(ctx.account_id, symbol)
                if order_id in (None, str(t.order_id)) and start <= t.time_ms <= end]
        rows.sort(key=lambda t: (t.time_ms, t.id), reverse=True)
        return self._page(ctx, [self._fill_json(t) for t in rows])

    @staticmethod
    def _ms_param(ctx: KcCtx, name: str) -> int | None:
        value = ctx.get(name)
        if value is None or value == "":
            return None
        if not value.isdigit():
            raise KucoinError("400100", f"{name} invalid")
        return int(value)
