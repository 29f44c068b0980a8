"""The exchange itself: accounts, balances, keys, orders, matching against replay.

Matching rules (see docs/simex.md for the long form):

* The replayed price path (replay.py) is the market. simex quotes a synthetic book
  around the last price ``p``: best bid ``p - spread_ticks*tick``, best ask
  ``p + spread_ticks*tick`` with unlimited depth.
* Market orders fill in full at the best ask (buy) or bid (sell): the slippage
  rule is "you cross the spread". ``quoteOrderQty`` buys/sells as much whole-step
  quantity as the quote amount pays for at that price.
* A limit order that crosses the book when placed fills at once as a taker at
  the best ask/bid (a better price than its limit). Otherwise it rests.
* A resting buy fills (as maker, at its own price) when the path trades strictly
  below its price; a resting sell when it trades strictly above. Orders are
  visited in price-time priority (best price first, then the earliest).
* Stop-limit orders (STOP_LOSS_LIMIT, TAKE_PROFIT_LIMIT) trigger when the path
  reaches their stop price. If their limit is marketable there (a sell limit at or
  below the stop, a buy limit at or above it) they take at the stop price;
  otherwise they rest as limit orders from the stop price on (the rest of the move may
  fill them; the part before the trigger cannot).
* Fees are charged in the asset received: a buy pays in base, a sell in quote,
  at the account's maker or taker rate, rounded up to 8 decimals.

One lock serialises every change; the dialects call in while holding no other
lock, and no method awaits, so the asyncio server never blocks on it for long.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from sealbot.simex.clock import MarketClock
from sealbot.simex.errors import Reason, SimexError
from sealbot.simex.faults import Faults
from sealbot.simex.keys import ApiKey, check_permissions, load_ed25519_public, new_key_id, new_secret
from sealbot.simex.markets import DEFAULT_MARKETS, MarketSpec
from sealbot.simex.replay import Replay
from sealbot.simex.requests import RequestCounter

EIGHT = Decimal("0.00000001")
ZERO = Decimal(0)
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
ORDER_TYPES = ("LIMIT", "MARKET", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
STOP_TYPES = ("STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")


@dataclass
class Balance:
    free: Decimal = ZERO
    locked: Decimal = ZERO


@dataclass
class Account:
    id: int
    name: str
    maker_fee: Decimal
    taker_fee: Decimal
    created_ms: int
    balances: dict[str, Balance] = field(default_factory=dict)

    def balance(self, asset: str) -> Balance:
        return self.balances.setdefault(asset, Balance())


@dataclass
class Trade:
    id: int
    order_id: int
    account_id: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    is_maker: bool


@dataclass
class OrderRequest:
    """A new order, already parsed by a dialect."""

    symbol: str
    side: str  # BUY / SELL
    type: str  # one of ORDER_TYPES
    tif: str = "GTC"  # GTC / IOC / FOK
    qty: Decimal | None = None
    quote_qty: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    client_id: str | None = None


@dataclass
class Order:
    id: int
    account_id: int
    symbol: str
    side: str
    type: str
    tif: str
    price: Decimal | None
    stop_price: Decimal | None
    orig_qty: Decimal
    orig_quote_qty: Decimal
    client_id: str
    time_ms: int
    update_ms: int
    key: str
    status: str = "NEW"
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    working: bool = True
    working_ms: int = 0
    locked: Decimal = ZERO  # amount still reserved for this order (quote for buys, base for sells)
    trades: list[Trade] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


# Told of every change to an order, under the exchange's lock, as it happens: the order
# (its state right after the change), the execution type Binance would report (NEW, TRADE,
# CANCELED, EXPIRED) and the trade for TRADE. Must not block or raise (ws_api_binance).
OrderListener = Callable[["Order", str, "Trade | None"], None]


def _fee(amount: Decimal, rate: Decimal) -> Decimal:
    return (amount * rate).quantize(EIGHT, rounding=ROUND_UP)


class Exchange:
    """State of the whole simulated exchange."""

    def __init__(self, clock: MarketClock, markets: Iterable[MarketSpec] = DEFAULT_MARKETS,
                 spread_ticks: int = 1, maker_fee: Decimal = Decimal("0.001"),
                 taker_fee: Decimal = Decimal("0.001")) -> None:
        self.clock = clock
        self.markets = {m.symbol: m for m in markets}
        self.replays = {s: Replay(m, clock.start_ms) for s, m in self.markets.items()}
        self.spread_ticks = spread_ticks
        self.default_maker_fee, self.default_taker_fee = maker_fee, taker_fee
        self.faults = Faults()
        self.requests = RequestCounter()  # what clients asked for (admin GET /requests)
        self.lock = threading.RLock()
        self.accounts: dict[int, Account] = {}
        self.keys: dict[str, ApiKey] = {}
        self.orders: dict[int, Order] = {}
        self.open_by_symbol: dict[str, list[Order]] = {s: [] for s in self.markets}
        self.orders_by_account: dict[int, list[Order]] = {}
        self.trades_by_account: dict[int, list[Trade]] = {}
        self._order_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._account_ids = itertools.count(1)
        self._client_ids = itertools.count(1)
        self._reach_cache: dict[str, tuple[Decimal | None, Decimal | None, bool]] = {}
        self.synced_ms = clock.now_ms()
        self.order_listeners: list[OrderListener] = []  # see OrderListener

    def _tell(self, order: Order, execution: str, trade: Trade | None = None) -> None:
        for listener in self.order_listeners:
            listener(order, execution, trade)

    # ----- market data -------------------------------------------------------------
    def market(self, symbol: str) -> MarketSpec:
        try:
            return self.markets[symbol]
        except KeyError:
            raise SimexError(Reason.UNKNOWN_SYMBOL, "Invalid symbol.") from None

    def price(self, symbol: str) -> Decimal:
        """Last price at the synced time."""
        return self.replays[symbol].price_at(self.synced_ms)

    def book(self, symbol: str) -> tuple[Decimal, Decimal]:
        """(best bid, best ask) of the synthetic book."""
        spec = self.markets[symbol]
        p = self.price(symbol)
        gap = spec.tick * self.spread_ticks
        return max(spec.tick, p - gap), p + gap

    # ----- clock -------------------------------------------------------------------
    def sync(self) -> int:
        """Play the market forward to the clock's time, filling what the path reaches."""
        with self.lock:
            now = self.clock.now_ms()
            if now <= self.synced_ms:
                return self.synced_ms
            for symbol, replay in self.replays.items():
                if not self.open_by_symbol[symbol]:
                    continue
                prev = replay.price_at(self.synced_ms)
                for at, p in replay.points_between(self.synced_ms, now):
                    self._segment(symbol, prev, p, at)
                    prev = p
                    if not self.open_by_symbol[symbol]:
                        break
            self.synced_ms = now
            return now

    def _reach(self, symbol: str) -> tuple[Decimal | None, Decimal | None, bool]:
        """(best working buy, best working sell, any untriggered stop), cached until the book changes."""
        cached = self._reach_cache.get(symbol)
        if cached is None:
            book = self.open_by_symbol[symbol]
            buys = [o.price for o in book if o.working and o.side == "BUY" and o.price is not None]
            sells = [o.price for o in book if o.working and o.side == "SELL" and o.price is not None]
            cached = (max(buys, default=None), min(sells, default=None), any(not o.working for o in book))
            self._reach_cache[symbol] = cached
        return cached

    def _segment(self, symbol: str, start: Decimal, end: Decimal, at: int) -> None:
        """The price moves from ``start`` to ``end``: trigger the stops it reaches, then fill
        the limit orders it trades through."""
        lo, hi = min(start, end), max(start, end)
        best_buy, best_sell, stops = self._reach(symbol)
        if not stops and (best_buy is None or best_buy <= lo) and (best_sell is None or best_sell >= hi):
            return  # nothing on the book is reached by this move
        self._reach_cache.pop(symbol, None)
        book = self.open_by_symbol[symbol]
        # A stop that triggers on this move and then rests as a limit order only exists
        # from its stop price on: it can fill on the rest of the move (stop -> end), not
        # on prices the move traded before it was triggered.
        reach: dict[int, tuple[Decimal, Decimal]] = {}
        for order in sorted(book, key=lambda o: o.id):
            stop = order.stop_price
            if not order.working and stop is not None and self._triggered(order, lo, hi):
                order.working, order.working_ms, order.update_ms = True, at, at
                assert order.price is not None
                if order.price <= stop if order.side == "SELL" else order.price >= stop:
                    # marketable once triggered: it takes at the stop price the path just traded
                    self._fill(order, self._fill_qty(order, order.remaining), stop, False, at)
                else:
                    reach[order.id] = (min(stop, end), max(stop, end))
        buys = sorted((o for o in book if o.working and o.is_open and o.side == "BUY" and o.price is not None
                       and o.price > reach.get(o.id, (lo, hi))[0]), key=lambda o: (-(o.price or ZERO), o.id))
        sells = sorted((o for o in book if o.working and o.is_open and o.side == "SELL" and o.price is not None
                        and o.price < reach.get(o.id, (lo, hi))[1]), key=lambda o: (o.price or ZERO, o.id))
        for order in buys + sells:
            assert order.price is not None
            self._fill(order, self._fill_qty(order, order.remaining), order.price, True, at)
        self.open_by_symbol[symbol] = [o for o in book if o.is_open]

    @staticmethod
    def _triggered(order: Order, lo: Decimal, hi: Decimal) -> bool:
        stop = order.stop_price
        assert stop is not None
        rising = (order.type == "STOP_LOSS_LIMIT") == (order.side == "BUY")
        return hi >= stop if rising else lo <= stop

    # ----- accounts and keys -------------------------------------------------------
    def create_account(self, name: str, balances: dict[str, Decimal] | None = None,
                       maker_fee: Decimal | None = None, taker_fee: Decimal | None = None) -> Account:
        with self.lock:
            acct = Account(next(self._account_ids), name,
                           self.default_maker_fee if maker_fee is None else maker_fee,
                           self.default_taker_fee if taker_fee is None else taker_fee, self.clock.now_ms())
            for asset, amount in (balances or {}).items():
                acct.balance(asset).free = Decimal(amount)
            self.accounts[acct.id] = acct
            self.orders_by_account[acct.id] = []
            self.trades_by_account[acct.id] = []
            return acct

    def account(self, account_id: int) -> Account:
        try:
            return self.accounts[account_id]
        except KeyError:
            raise SimexError(Reason.BAD_PARAM, f"no account {account_id}") from None

    def set_balance(self, account_id: int, asset: str, free: Decimal) -> None:
        with self.lock:
            if free < 0:
                raise SimexError(Reason.BAD_PARAM, "balance cannot be negative")
            self.account(account_id).balance(asset).free = free

    def create_key(self, account_id: int, label: str = "", permissions: Iterable[str] | None = None,
                   ip_whitelist: Iterable[str] = (), public_key_pem: str | None = None,
                   passphrase: str | None = None) -> tuple[ApiKey, str | None]:
        """Create a key; returns it with its HMAC secret (None for an Ed25519 key)."""
        import ipaddress

        with self.lock:
            self.account(account_id)
            perms = check_permissions(frozenset(permissions) if permissions is not None
                                      else frozenset({"reading", "spot"}))
            nets = tuple(str(n) for n in ip_whitelist)
            for net in nets:
                ipaddress.ip_network(net, strict=False)
            public = load_ed25519_public(public_key_pem) if public_key_pem else None
            secret = None if public is not None else new_secret()
            key = ApiKey(new_key_id(), account_id, label, perms, nets, int(time.time() * 1000), secret=secret,
                         public_key=public, passphrase=passphrase)
            self.keys[key.key] = key
            return key, secret

    def update_key(self, key: str, permissions: Iterable[str] | None = None,
                   ip_whitelist: Iterable[str] | None = None, enabled: bool | None = None) -> ApiKey:
        with self.lock:
            k = self.keys.get(key)
            if k is None:
                raise SimexError(Reason.BAD_PARAM, "no such key")
            if permissions is not None:
                k.permissions = check_permissions(frozenset(permissions))
            if ip_whitelist is not None:
                k.ip_whitelist = tuple(ip_whitelist)
            if enabled is not None:
                k.enabled = enabled
            return k

    # ----- funds -------------------------------------------------------------------
    @staticmethod
    def _reserve(acct: Account, asset: str, amount: Decimal) -> None:
        bal = acct.balance(asset)
        if bal.free < amount:
            raise SimexError(Reason.INSUFFICIENT_BALANCE, "Account has insufficient balance for requested action.")
        bal.free -= amount
        bal.locked += amount

    def _release(self, order: Order) -> None:
        if order.locked:
            spec = self.markets[order.symbol]
            bal = self.accounts[order.account_id].balance(spec.quote if order.side == "BUY" else spec.base)
            bal.locked -= order.locked
            bal.free += order.locked
            order.locked = ZERO

    # ----- orders ------------------------------------------------------------------
    def _check_filters(self, spec: MarketSpec, req: OrderRequest, ref_price: Decimal) -> None:
        for value in (req.price, req.stop_price):
            if value is None:
                continue
            if value < spec.tick or value > spec.max_price or value % spec.tick:
                raise SimexError(Reason.FILTER, "Filter failure: PRICE_FILTER", "PRICE_FILTER")
        if req.qty is not None:
            if req.qty < spec.min_qty or req.qty > spec.max_qty or (req.qty - spec.min_qty) % spec.step:
                raise SimexError(Reason.FILTER, "Filter failure: LOT_SIZE", "LOT_SIZE")
            notional = req.qty * (req.price if req.price is not None else ref_price)
        else:
            notional = req.quote_qty or ZERO
        if notional < spec.min_notional:
            raise SimexError(Reason.FILTER, "Filter failure: NOTIONAL", "NOTIONAL")

    def _fill_qty(self, order: Order, wanted: Decimal) -> Decimal:
        rule = self.faults.take(("partial_fill",), order.key, "/order")
        if rule is None:
            return wanted
        step = self.markets[order.symbol].step
        part = (wanted * rule.value / step).to_integral_value(rounding=ROUND_DOWN) * step
        return max(step, part) if wanted > step else wanted

    def place(self, key: ApiKey, req: OrderRequest) -> Order:
        """Validate, reserve funds and match a new order. Raises SimexError."""
        with self.lock:
            self.sync()
            spec = self.market(req.symbol)
            acct = self.account(key.account_id)
            if req.side not in ("BUY", "SELL"):
                raise SimexError(Reason.BAD_PARAM, "Invalid side.", "side")
            if req.type not in ORDER_TYPES:
                raise SimexError(Reason.BAD_PARAM, "Invalid orderType.", "type")
            if req.tif not in ("GTC", "IOC", "FOK"):
                raise SimexError(Reason.BAD_PARAM, "Invalid timeInForce.", "timeInForce")
            bid, ask = self.book(req.symbol)
            ref = ask if req.side == "BUY" else bid
            self._check_filters(spec, req, ref)
            client_id = req.client_id or f"simex-{next(self._client_ids)}"
            if any(o.client_id == client_id and o.account_id == acct.id for o in self.open_by_symbol[req.symbol]):
                raise SimexError(Reason.DUPLICATE_ORDER, "Duplicate order sent.")
            if self.faults.take(("reject",), key.key, "/order") is not None:
                raise SimexError(Reason.REJECTED, "Order was rejected by the exchange.")
            crosses = req.price is not None and (req.price >= ask if req.side == "BUY" else req.price <= bid)
            if req.type == "LIMIT_MAKER" and crosses:
                raise SimexError(Reason.WOULD_TAKE, "Order would immediately match and take.")
            now = self.synced_ms
            if req.type in STOP_TYPES:
                assert req.stop_price is not None
                p = self.price(req.symbol)
                rising = (req.type == "STOP_LOSS_LIMIT") == (req.side == "BUY")
                if (p >= req.stop_price) if rising else (p <= req.stop_price):
                    raise SimexError(Reason.WOULD_TRIGGER, "Stop price would trigger immediately.")
            if req.type == "MARKET":
                return self._market(key, acct, spec, req, client_id, bid, ask, now)
            assert req.price is not None and req.qty is not None
            order = self._new_order(key, acct, req, client_id, req.qty, now)
            if req.side == "BUY":
                self._reserve(acct, spec.quote, req.price * req.qty)
                order.locked = req.price * req.qty
            else:
                self._reserve(acct, spec.base, req.qty)
                order.locked = req.qty
            self._remember(order)
            if req.type in STOP_TYPES:
                order.working = False
            elif crosses:
                price = ask if req.side == "BUY" else bid
                qty = self._fill_qty(order, order.remaining)
                if req.tif == "FOK" and qty < order.remaining:
                    self._finish(order, "EXPIRED")
                    return order
                self._fill(order, qty, price, False, now)
            if order.is_open and req.tif in ("IOC", "FOK"):
                self._finish(order, "EXPIRED")
            if order.is_open:
                self.open_by_symbol[req.symbol].append(order)
                self._reach_cache.pop(req.symbol, None)
            return order

    def _market(self, key: ApiKey, acct: Account, spec: MarketSpec, req: OrderRequest, client_id: str,
                bid: Decimal, ask: Decimal, now: int) -> Order:
        price = ask if req.side == "BUY" else bid
        if req.qty is not None:
            qty = req.qty
        else:
            assert req.quote_qty is not None
            qty = (req.quote_qty / price / spec.step).to_integral_value(rounding=ROUND_DOWN) * spec.step
            if qty < spec.min_qty:
                raise SimexError(Reason.FILTER, "Filter failure: LOT_SIZE", "LOT_SIZE")
        if (req.side == "BUY" and acct.balance(spec.quote).free < qty * price) or \
                (req.side == "SELL" and acct.balance(spec.base).free < qty):
            raise SimexError(Reason.INSUFFICIENT_BALANCE, "Account has insufficient balance for requested action.")
        order = self._new_order(key, acct, req, client_id, qty, now)
        self._remember(order)
        self._fill(order, self._fill_qty(order, qty), price, False, now)
        if order.is_open:
            self._finish(order, "EXPIRED")
        return order

    def _new_order(self, key: ApiKey, acct: Account, req: OrderRequest, client_id: str, qty: Decimal,
                   now: int) -> Order:
        return Order(next(self._order_ids), acct.id, req.symbol, req.side, req.type, req.tif, req.price,
                     req.stop_price, qty, req.quote_qty or ZERO, client_id, now, now, key.key, working_ms=now)

    def _remember(self, order: Order) -> None:
        self.orders[order.id] = order
        self.orders_by_account[order.account_id].append(order)
        self._tell(order, "NEW")

    def _fill(self, order: Order, qty: Decimal, price: Decimal, maker: bool, at: int) -> None:
        if qty <= 0:
            return
        spec = self.markets[order.symbol]
        acct = self.accounts[order.account_id]
        rate = acct.maker_fee if maker else acct.taker_fee
        quote = price * qty
        base_bal, quote_bal = acct.balance(spec.base), acct.balance(spec.quote)
        if order.side == "BUY":
            commission, asset = _fee(qty, rate), spec.base
            if order.price is not None and order.type != "MARKET":
                reserved = order.price * qty
                quote_bal.locked -= reserved
                order.locked -= reserved
                quote_bal.free += reserved - quote
            else:
                quote_bal.free -= quote
            base_bal.free += qty - commission
        else:
            commission, asset = _fee(quote, rate), spec.quote
            if order.type != "MARKET":
                base_bal.locked -= qty
                order.locked -= qty
            else:
                base_bal.free -= qty
            quote_bal.free += quote - commission
        trade = Trade(next(self._trade_ids), order.id, acct.id, order.symbol, order.side, price, qty, quote,
                      commission, asset, at, maker)
        order.trades.append(trade)
        self.trades_by_account[acct.id].append(trade)
        order.executed_qty += qty
        order.cum_quote += quote
        order.update_ms = at
        order.status = "FILLED" if order.remaining == 0 else "PARTIALLY_FILLED"
        if order.status == "FILLED":
            self._release(order)
        self._tell(order, "TRADE", trade)

    def _finish(self, order: Order, status: str) -> None:
        order.status = status
        order.update_ms = self.synced_ms
        self._release(order)
        book = self.open_by_symbol[order.symbol]
        if order in book:
            book.remove(order)
            self._reach_cache.pop(order.symbol, None)
        self._tell(order, status)

    def find(self, account_id: int, symbol: str, order_id: int | None = None,
             client_id: str | None = None) -> Order:
        """An order of this account by exchange id or (latest) client id."""
        with self.lock:
            self.market(symbol)
            if order_id is not None:
                order = self.orders.get(order_id)
                if order is not None and order.account_id == account_id and order.symbol == symbol:
                    return order
            elif client_id is not None:
                for order in reversed(self.orders_by_account.get(account_id, [])):
                    if order.client_id == client_id and order.symbol == symbol:
                        return order
            raise SimexError(Reason.UNKNOWN_ORDER, "Order does not exist.")

    def cancel(self, account_id: int, symbol: str, order_id: int | None = None,
               client_id: str | None = None) -> Order:
        with self.lock:
            self.sync()
            try:
                order = self.find(account_id, symbol, order_id, client_id)
            except SimexError:
                raise SimexError(Reason.UNKNOWN_ORDER, "Unknown order sent.") from None
            if not order.is_open:
                raise SimexError(Reason.UNKNOWN_ORDER, "Unknown order sent.")
            self._finish(order, "CANCELED")
            return order

    def cancel_all(self, account_id: int, symbol: str) -> list[Order]:
        with self.lock:
            self.sync()
            self.market(symbol)
            mine = [o for o in self.open_by_symbol[symbol] if o.account_id == account_id]
            for order in mine:
                self._finish(order, "CANCELED")
            return mine

    def open_orders(self, account_id: int, symbol: str | None = None) -> list[Order]:
        with self.lock:
            self.sync()
            if symbol is not None:
                self.market(symbol)
            return [o for o in self.orders_by_account.get(account_id, []) if o.is_open
                    and (symbol is None or o.symbol == symbol)]

    def all_orders(self, account_id: int | None = None) -> list[Order]:
        """Every order (of one account, or of all accounts: for test assertions)."""
        with self.lock:
            self.sync()
            if account_id is None:
                return list(self.orders.values())
            return list(self.orders_by_account.get(account_id, []))

    def my_trades(self, account_id: int, symbol: str | None = None) -> list[Trade]:
        with self.lock:
            self.sync()
            return [t for t in self.trades_by_account.get(account_id, []) if symbol is None or t.symbol == symbol]
