"""The live venue: any ccxt exchange, async, rate limiter on, credentials from the signer.

ccxt's rate limiter stays on, shaped like the exchange's own limit (``venues.throttle``:
a rolling window of Binance's 6,000 weight per minute rather than ccxt's default bucket,
which spaces every request 50 ms apart and holds an order 200 ms behind a balance fetch).

One ``CcxtVenue`` is one exchange account. Every ccxt call goes through ``_call``,
which turns ccxt's exceptions into sealbot's (``error_mapping``), so callers never
see a ccxt class and never an unredacted exchange message.

An order request is signed with the time its attempt was journalled (``attempt_at``,
see ``venues.signing.pinned_time``) and, on Binance, with an explicit ``recvWindow``: the
exchange carries it out only within ``send_window()`` seconds of that time, however late
it actually leaves this process. Cancels and reads are signed as usual.

Amounts and prices go to ccxt as decimal *text* (ccxt's precision helpers accept
strings), and come back through ``markets.to_decimal``, so no float is ever computed
with on sealbot's side.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import ccxt
import ccxt.async_support as ccxt_async

from sealbot.domain import Candle, ClientOrderId, Fill, MarketRules, Order, OrderStatus, OrderType, Pair, Side
from sealbot.domain.evolve import evolve
from sealbot.domain.money import ZERO
from sealbot.venues.base import (
    Balance,
    IpPolicy,
    PermissionReport,
    Ticker,
    TradeBatch,
    Venue,
    is_foreign,
    parse_client_id,
)
from sealbot.venues.error_mapping import map_error
from sealbot.venues.errors import UnknownOrder, VenueError
from sealbot.venues.markets import spot_rules, to_decimal
from sealbot.venues.permissions import check_exchange_permissions
from sealbot.venues.signing import SignerLike, create_signed_exchange, pinned_time
from sealbot.venues.throttle import set_weight_per_window, throttle_config
from sealbot.venues.trade_paging import ResumeAt, TradeWalk, binance_trades, kucoin_trades
from sealbot.venues.urls import apply_url_overrides, validate_overrides

T = TypeVar("T")
log = logging.getLogger(__name__)

# Called before each request a venue call makes beyond its first, with the call's name
# (``fetch_my_trades`` for another page, ``fetch_order`` for a trade's order): the
# engine's budget charges every request, not only the call (``engine.budgeted``).
RequestGate = Callable[[str], Awaitable[None]]

# The parameter each exchange reads the client order id from when an order is placed.
CLIENT_ID_PARAM = {"binance": "newClientOrderId", "kucoin": "clientOid"}

# Spot only: skip the futures/margin/currency endpoints ccxt would also call while
# loading markets (fewer requests, and nothing sealbot uses).
SPOT_OPTIONS: dict[str, dict[str, Any]] = {
    # all open orders at once is what the watchdog needs (heavier, but one request)
    "binance": {"fetchMarkets": {"types": ["spot"]}, "fetchMargins": False, "fetchCurrencies": False,
                "fetchOpenOrders": {"warnWithoutSymbol": False}},
    "kucoin": {"fetchMarkets": {"types": ["spot"], "fetchTickersFees": False}, "uta": False},
    "bybit": {"fetchMarkets": {"types": ["spot"]}},
    "okx": {"fetchMarkets": {"types": ["spot"]}},
}

# How long an order request signed at time t stays executable on the exchange, per exchange.
# Binance: the request's ``recvWindow`` (ccxt's ``options["recvWindow"]``, default 10 s; the
# exchange refuses more than 60 s). KuCoin: KC-API-TIMESTAMP must be within 5 s of its clock,
# fixed by the exchange. Other exchanges: not pinned (``send_window()`` is None).
DEFAULT_RECV_WINDOW_MS = 10_000
MAX_RECV_WINDOW_MS = 60_000
FIXED_SEND_WINDOW = {"kucoin": 5.0}

# The response header in which the exchange reports the IP's request weight in its current minute.
USED_WEIGHT_HEADER = {"binance": "x-mbx-used-weight-1m"}
# The largest page of an account's trades each exchange answers (Binance myTrades: 1,000,
# default 500; KuCoin fills: 500, default 50). ``fetch_my_trades`` pages through every
# trade since the time asked, as each exchange requires (``venues.trade_paging``).
TRADES_PAGE = {"binance": 1000, "kucoin": 500}


@dataclass(frozen=True, slots=True)
class RateReport:
    used_weight: int | None
    retry_after: float | None


def _float(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


# Parameters for ``load_markets``: KuCoin would also ask for margin symbols once a key is set.
LOAD_MARKETS_PARAMS: dict[str, dict[str, Any]] = {"kucoin": {"marginables": False}}

_STATUS = {
    "open": OrderStatus.OPEN,
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}


def _id_order(trade_id: Any) -> tuple[int, int, str]:
    """Sort key of a trade id: numeric ids (Binance) by value — as text "10" would come
    before "9" — others (KuCoin's hex ids) by their text."""
    text = str(trade_id)
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def _dec(value: Any, default: Decimal = ZERO) -> Decimal:
    result = to_decimal(value)
    return default if result is None else result


def _text(value: Decimal) -> str:
    """Plain decimal text (never exponent form) for ccxt and the exchange."""
    return format(value, "f")


def _at(ms: Any) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC) if ms is not None else datetime.now(UTC)


class CcxtVenue(Venue):
    """A ccxt exchange behind the ``Venue`` interface.

    ``signer``/``handle`` are required for anything private (balances, orders,
    permissions); without them the venue serves public market data only.
    ``urls`` redirects the exchange (see ``venues.urls``), ``options`` is merged into
    ccxt's exchange options, ``egress_ip`` is reported in permission checks so the user
    knows what to whitelist, ``ip_policy`` decides what an unrestricted key gets.
    ``weight_per_window`` replaces the exchange's published request limit in ccxt's
    throttle (a VIP tier, a simulator configured with another limit).
    """

    def __init__(
        self,
        exchange_id: str,
        *,
        signer: SignerLike | None = None,
        handle: Any = None,
        request_type: Any = None,
        urls: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        sandbox: bool = False,
        egress_ip: str | None = None,
        ip_policy: IpPolicy = IpPolicy.WARN,
        timeout_ms: int = 10_000,
        weight_per_window: int | None = None,
    ) -> None:
        self.name = exchange_id
        self.egress_ip, self.ip_policy = egress_ip, ip_policy
        if urls:
            validate_overrides(urls)  # before any ccxt object exists
        merged = {**SPOT_OPTIONS.get(exchange_id, {}), **(options or {})}
        config: dict[str, Any] = {**throttle_config(exchange_id), "options": merged, "timeout": timeout_ms}
        if signer is not None:
            self._exchange = create_signed_exchange(exchange_id, signer, handle, config, request_type)
        else:
            cls = getattr(ccxt_async, exchange_id, None)
            if not isinstance(cls, type):
                raise VenueError(exchange_id, "not an exchange ccxt knows")
            self._exchange = cls(config)
        if weight_per_window is not None:
            set_weight_per_window(self._exchange, weight_per_window)
        if sandbox:
            self._exchange.set_sandbox_mode(True)
        apply_url_overrides(self._exchange, urls)
        self._markets: dict[Pair, MarketRules] | None = None
        self._client_by_order_id: dict[str, ClientOrderId] = {}
        self._pins = signer is not None  # the signer-bound class can sign with a pinned time
        self.request_gate: RequestGate | None = None
        self.send_window()  # a recvWindow Binance would refuse fails here, not on the first order

    def __repr__(self) -> str:
        return f"<CcxtVenue {self.name}>"

    @property
    def exchange(self) -> Any:
        """The underlying ccxt object (for permission checks and tests); holds no secret."""
        return self._exchange

    async def _call(self, fn: Callable[..., Awaitable[T]], *args: Any, client_id: str | None = None,
                    **kwargs: Any) -> T:
        try:
            return await fn(*args, **kwargs)
        except ccxt.BaseError as exc:
            raise map_error(self.name, exc, client_id) from None

    async def load_markets(self) -> dict[Pair, MarketRules]:
        markets = await self._call(self._exchange.load_markets, False, LOAD_MARKETS_PARAMS.get(self.name, {}))
        self._markets = spot_rules(markets, self._exchange.precisionMode)
        return dict(self._markets)

    async def fetch_balances(self) -> dict[str, Balance]:
        raw = await self._call(self._exchange.fetch_balance)
        free, used = raw.get("free") or {}, raw.get("used") or {}
        result: dict[str, Balance] = {}
        for asset in set(free) | set(used):
            balance = Balance(asset, _dec(free.get(asset)), _dec(used.get(asset)))
            if balance.total:
                result[asset] = balance
        return result

    async def fetch_ticker(self, pair: Pair) -> Ticker:
        raw = await self._call(self._exchange.fetch_ticker, pair.symbol)
        return Ticker(pair, to_decimal(raw.get("bid")), to_decimal(raw.get("ask")),
                      to_decimal(raw.get("last")), _at(raw.get("timestamp")))

    async def fetch_candles(self, pair: Pair, timeframe: str, since: datetime | None = None,
                            limit: int | None = None) -> list[Candle]:
        since_ms = int(since.timestamp() * 1000) if since else None
        rows = await self._call(self._exchange.fetch_ohlcv, pair.symbol, timeframe, since_ms, limit)
        return [Candle(pair, timeframe, _at(ts), _dec(o), _dec(h), _dec(lo), _dec(c), _dec(v))
                for ts, o, h, lo, c, v in rows]

    def _order_args(self, order: Order) -> tuple[str, str | None, dict[str, Any]]:
        params: dict[str, Any] = {CLIENT_ID_PARAM.get(self.name, "clientOrderId"): order.client_id.text}
        price = _text(order.price) if order.price is not None else None
        if order.type is OrderType.MARKET:
            return "market", None, params
        if price is None:
            raise VenueError(self.name, f"a {order.type.value} order needs a price")
        params["timeInForce"] = order.time_in_force.value
        if order.type is OrderType.LIMIT_MAKER:
            params["postOnly"] = True
            params.pop("timeInForce")
        elif order.type in (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT):
            if order.stop_price is None:
                raise VenueError(self.name, f"a {order.type.value} order needs a stop price")
            key = "stopLossPrice" if order.type is OrderType.STOP_LOSS_LIMIT else "takeProfitPrice"
            params[key] = _text(order.stop_price)
        return "limit", price, params

    def send_window(self) -> float | None:
        if not self._pins:
            return None
        if self.name == "binance":
            return self._recv_window_ms() / 1000
        return FIXED_SEND_WINDOW.get(self.name)

    def _recv_window_ms(self) -> int:
        """Binance's ``recvWindow`` for orders: ccxt's ``options["recvWindow"]`` (read at
        each order, as it may be set after construction), default 10 s."""
        value = self._exchange.options.get("recvWindow")
        window = DEFAULT_RECV_WINDOW_MS if value is None else value
        if not isinstance(window, int) or isinstance(window, bool) or not 0 < window <= MAX_RECV_WINDOW_MS:
            raise VenueError(self.name, f"options.recvWindow: {window!r} is not a whole number of ms in "
                                        f"1..{MAX_RECV_WINDOW_MS} (Binance refuses a larger window)")
        return window

    async def create_order(self, order: Order, attempt_at: datetime | None = None) -> Order:
        kind, price, params = self._order_args(order)
        pin: AbstractContextManager[None] = nullcontext()
        if attempt_at is not None and self.send_window() is not None:
            if self.name == "binance":
                params["recvWindow"] = self._recv_window_ms()
            pin = pinned_time(int(attempt_at.timestamp() * 1000))
        with pin:
            raw = await self._call(self._exchange.create_order, order.pair.symbol, kind, order.side.value,
                                   _text(order.amount), price, params, client_id=order.client_id.text)
        if raw.get("id"):
            self._client_by_order_id[str(raw["id"])] = order.client_id
        if not raw.get("status"):
            # KuCoin answers a new order with its ids only: read it back for its state
            # (a market order is usually filled already); if the exchange cannot find it
            # yet, report it as sent and open, as the answer implied.
            try:
                return await self.fetch_order(order.client_id, order.pair)
            except UnknownOrder:
                pass
        return self._merge(order, raw)

    async def cancel_order(self, client_id: ClientOrderId, pair: Pair) -> Order:
        await self._call(self._exchange.cancel_order, None, pair.symbol, {"clientOrderId": client_id.text},
                         client_id=client_id.text)
        # Cancel answers differ (KuCoin returns ids only): read the order back for its state.
        return await self.fetch_order(client_id, pair)

    async def fetch_order(self, client_id: ClientOrderId, pair: Pair) -> Order:
        raw = await self._call(self._exchange.fetch_order, None, pair.symbol, {"clientOrderId": client_id.text},
                               client_id=client_id.text)
        order = self._to_order(raw, pair)
        return order if order.client_id == client_id else self._with_id(order, client_id)

    async def fetch_open_orders(self, pair: Pair | None = None) -> list[Order]:
        rows = await self._call(self._exchange.fetch_open_orders, pair.symbol if pair else None)
        return [self._to_order(row, pair) for row in rows]

    async def fetch_my_trades(self, pair: Pair, since: datetime | None = None) -> list[Fill]:
        """Every trade on ``pair`` since ``since``, oldest first, however many pages and
        time windows that takes (``venues.trade_paging``; at most ``MAX_PAGES`` requests,
        warned about when hit: then what was read, on Binance the trades from ``since`` on
        and the newest page). Without ``since``: the newest page, as the exchange answers.
        A caller that must not miss a trade past the bound uses ``read_my_trades``."""
        since_ms = int(since.timestamp() * 1000) if since else None
        walk = await self._walk_trades(pair, since_ms, None)
        if walk.truncated:
            log.warning("%s %s: stopped after %d requests for the trades since %s; not fetched by this call: %s",
                        self.name, pair, walk.requests, since, walk.truncated)
        return await self._fills(pair, walk.rows + walk.beyond, since_ms)

    async def read_my_trades(self, pair: Pair, since: datetime, resume: ResumeAt | None = None) -> TradeBatch:
        """Every trade on ``pair`` since ``since`` (from ``resume`` on, when given) up to
        ``MAX_PAGES`` requests; past the bound, the trades read up to the point where the
        next call goes on (``TradeBatch.resume``), with no hole among them."""
        since_ms = int(since.timestamp() * 1000)
        walk = await self._walk_trades(pair, since_ms, resume)
        if walk.truncated:
            log.info("%s %s: %d requests read the trades since %s up to %s; the next read goes on from there",
                     self.name, pair, walk.requests, since, walk.resume)
        return TradeBatch(await self._fills(pair, walk.rows, since_ms), walk.resume, walk.requests)

    async def _fills(self, pair: Pair, walked: list[dict[str, Any]], since_ms: int | None) -> list[Fill]:
        rows: dict[str, dict[str, Any]] = {}
        for row in walked:
            if since_ms is None or (row.get("timestamp") or 0) >= since_ms:
                rows.setdefault(str(row.get("id")), row)  # pages may overlap: one fill per trade id
        fills = []
        for row in sorted(rows.values(), key=lambda r: (r.get("timestamp") or 0, _id_order(r.get("id")))):
            client_id = await self._client_id_of(row, pair)
            fee = row.get("fee") or {}
            fills.append(Fill(
                client_id=client_id, pair=pair, side=Side(row["side"]), price=_dec(row.get("price")),
                amount=_dec(row.get("amount")), fee=_dec(fee.get("cost")),
                fee_currency=str(fee.get("currency") or ""), at=_at(row.get("timestamp")),
                trade_id=str(row.get("id")), is_maker=row.get("takerOrMaker") == "maker",
            ))
        return fills

    async def _walk_trades(self, pair: Pair, since_ms: int | None, resume: ResumeAt | None) -> TradeWalk:
        first = True

        async def page(start_ms: int | None, params: dict[str, Any]) -> list[dict[str, Any]]:
            nonlocal first
            if not first:
                await self._gate("fetch_my_trades")
            first = False
            limit = TRADES_PAGE.get(self.name) if self.name == "binance" else None
            rows: list[dict[str, Any]] = await self._call(self._exchange.fetch_my_trades, pair.symbol, start_ms,
                                                          limit, params)
            return rows

        if self.name == "binance":
            return await binance_trades(page, since_ms, TRADES_PAGE["binance"], resume=resume)
        if self.name == "kucoin":
            now_ms = int(datetime.now(UTC).timestamp() * 1000)
            return await kucoin_trades(page, since_ms, now_ms, TRADES_PAGE["kucoin"], resume=resume)
        if resume is not None:
            raise ValueError(f"resume: {self.name} trades are read in one page, never resumed")
        return TradeWalk(rows=await page(since_ms, {}), requests=1)  # other exchanges: one page, unpaged

    async def _gate(self, what: str) -> None:
        if self.request_gate is not None:
            await self.request_gate(what)

    async def _client_id_of(self, trade: dict[str, Any], pair: Pair) -> ClientOrderId:
        """Trades name the exchange's order id only (Binance myTrades has no client id):
        look it up once per order, then remember it."""
        order_id = str(trade.get("order") or "")
        known = self._client_by_order_id.get(order_id)
        if known is not None:
            return known
        text = trade.get("clientOrderId") or (trade.get("info") or {}).get("clientOid")
        if not text and order_id:
            await self._gate("fetch_order")
            raw = await self._call(self._exchange.fetch_order, order_id, pair.symbol)
            text = raw.get("clientOrderId")
        client_id = parse_client_id(text, order_id)
        if order_id:
            self._client_by_order_id[order_id] = client_id
        return client_id

    async def check_permissions(self) -> PermissionReport:
        return await check_exchange_permissions(self, self.ip_policy, self.egress_ip)

    def rate_report(self) -> RateReport:
        """What the exchange's last answer said of its limits: the request weight this IP
        has used in the exchange's current minute (Binance's ``X-MBX-USED-WEIGHT-1M``;
        it counts every client on the IP, not only this one) and, after a 429 or 418,
        ``Retry-After`` in seconds. ``None`` where the exchange sent no such header."""
        headers = {str(k).lower(): v for k, v in (self._exchange.last_response_headers or {}).items()}
        used = _float(headers.get(USED_WEIGHT_HEADER.get(self.name, "")))
        return RateReport(int(used) if used is not None else None, _float(headers.get("retry-after")))

    async def close(self) -> None:
        await self._exchange.close()

    # ccxt order dict -> domain Order
    def _to_order(self, raw: dict[str, Any], pair: Pair | None) -> Order:
        client_id = parse_client_id(raw.get("clientOrderId"), str(raw.get("id") or ""))
        if raw.get("id") and not is_foreign(client_id):
            self._client_by_order_id[str(raw["id"])] = client_id
        symbol = raw.get("symbol")
        pair = Pair.parse(symbol) if symbol else pair
        if pair is None:
            raise VenueError(self.name, "the exchange returned an order without a symbol")
        return Order(
            client_id=client_id, pair=pair, side=Side(raw["side"]), type=_order_type(raw),
            amount=_dec(raw.get("amount")), price=to_decimal(raw.get("price")) or None,
            stop_price=to_decimal(raw.get("triggerPrice") or raw.get("stopPrice")),
            status=_status(raw), filled=_dec(raw.get("filled")),
            average_price=to_decimal(raw.get("average")) or None,
            exchange_id=str(raw["id"]) if raw.get("id") else None,
        )

    def _merge(self, order: Order, raw: dict[str, Any]) -> Order:
        """The order we sent, updated with what the exchange answered (answers to a
        create may omit fields, e.g. KuCoin returns only the ids)."""
        status = _status(raw) if raw.get("status") else OrderStatus.OPEN
        filled = _dec(raw.get("filled"))
        return evolve(order, status=status, filled=filled,
                      average_price=to_decimal(raw.get("average")) or order.average_price,
                      exchange_id=str(raw["id"]) if raw.get("id") else order.exchange_id)

    @staticmethod
    def _with_id(order: Order, client_id: ClientOrderId) -> Order:
        return evolve(order, client_id=client_id)


def _status(raw: dict[str, Any]) -> OrderStatus:
    status = _STATUS.get(str(raw.get("status")), OrderStatus.OPEN)
    if status is OrderStatus.OPEN and _dec(raw.get("filled")) > 0:
        return OrderStatus.PARTIALLY_FILLED
    return status


def _order_type(raw: dict[str, Any]) -> OrderType:
    """ccxt folds Binance's STOP_LOSS_LIMIT/TAKE_PROFIT_LIMIT into ``limit`` plus a trigger
    price, so the exchange's own type (in ``info``) is read first."""
    native = str((raw.get("info") or {}).get("type") or "").lower()
    if native in _NATIVE_TYPES:
        return _NATIVE_TYPES[native]
    kind = str(raw.get("type") or "limit").lower()
    if kind == "market":
        return OrderType.MARKET
    if kind == "limit_maker" or raw.get("postOnly"):
        return OrderType.LIMIT_MAKER
    if raw.get("takeProfitPrice") is not None:
        return OrderType.TAKE_PROFIT_LIMIT
    if raw.get("stopLossPrice") is not None or raw.get("triggerPrice") is not None:
        return OrderType.STOP_LOSS_LIMIT
    return OrderType.LIMIT


_NATIVE_TYPES = {
    "limit": OrderType.LIMIT, "market": OrderType.MARKET, "limit_maker": OrderType.LIMIT_MAKER,
    "stop_loss_limit": OrderType.STOP_LOSS_LIMIT, "take_profit_limit": OrderType.TAKE_PROFIT_LIMIT,
}
