"""Paper trading: real market prices, simulated fills, balances kept by sealbot.

``PaperVenue`` implements the same ``Venue`` interface as the live venue, so a bot
runs unchanged on paper. Prices come from a *price source* (any async callable
``pair -> Decimal``; ``ticker_price_source(venue)`` reads another venue's last price),
asked for again whenever trades are (the engine polls them), and from
``on_price(pair, price, at)``, which feeds one by hand. A paper
venue built on a ``data_venue`` says so (``data_venue``, ``price_venue``): the engine
then shares that venue's candle streams and reference prices with it (market data has
one identity per endpoint), while its orders, fills and balances stay its own.

Fill rules, chosen to be simple and never optimistic:

* a market order fills at once, in full, at the current price, as taker;
* a limit order that is marketable when placed (a buy at or above the price, a sell at
  or below) fills at once at the current price, as taker; a ``limit_maker`` order that
  would do so is rejected, as Binance rejects it;
* a resting limit order fills in full at its limit price, as maker, when the price
  trades *through* it (strictly below a buy, strictly above a sell); touching is not
  enough, because on a real book the queue ahead may absorb the touch;
* an IOC or FOK limit order that cannot match when placed expires at once (it fills
  in full or not at all, so IOC and FOK behave alike here);
* a stop-loss/take-profit limit order waits until the price reaches its stop price
  (stop-loss: a sell at or below, a buy at or above; take-profit the other way) and
  then behaves as a limit order placed at that moment.

Fees follow Binance's default: charged in the asset received (base on a buy, quote on
a sell), maker or taker rate from the ``FeeSchedule``, exact in Decimal. Funds are
reserved when an order is placed (``used``) and released on cancel. Everything is
Decimal and the whole state round-trips through ``snapshot()``/``restore()`` as JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sealbot.domain import (
    Candle,
    ClientOrderId,
    FeeSchedule,
    Fill,
    MarketRules,
    Order,
    OrderStatus,
    OrderType,
    Pair,
    Side,
    TimeInForce,
)
from sealbot.domain.errors import OrderRejected
from sealbot.domain.evolve import evolve
from sealbot.domain.money import ZERO
from sealbot.venues.base import Balance, PermissionReport, Ticker, Venue, Verdict
from sealbot.venues.errors import ExchangeRejectedOrder, InsufficientFunds, UnknownOrder, VenueError

PriceSource = Callable[[Pair], Awaitable[Decimal]]
Clock = Callable[[], datetime]
_CONDITIONAL = (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)


def _ticker_price(ticker: Ticker) -> Decimal | None:
    """The last trade, else the mid of bid/ask."""
    if ticker.last is not None:
        return ticker.last
    if ticker.bid is not None and ticker.ask is not None:
        return (ticker.bid + ticker.ask) / 2
    return None


def ticker_price_source(venue: Venue) -> PriceSource:
    """Prices from another venue's ticker (last trade, else mid of bid/ask)."""

    async def price(pair: Pair) -> Decimal:
        found = _ticker_price(await venue.fetch_ticker(pair))
        if found is None:
            raise VenueError(venue.name, f"no price for {pair}")
        return found

    return price


@dataclass
class _Book:
    """One order and the funds it holds: ``reserved`` of ``reserved_asset``."""

    order: Order
    reserved: Decimal
    reserved_asset: str
    triggered: bool
    placed_at: datetime


class PaperVenue(Venue):
    """A simulated exchange account; see the module docstring for the fill rules."""

    def __init__(
        self,
        markets: dict[Pair, MarketRules],
        balances: dict[str, Decimal] | None = None,
        *,
        fees: FeeSchedule | None = None,
        price_source: PriceSource | None = None,
        data_venue: Venue | None = None,
        clock: Clock | None = None,
        name: str = "paper",
    ) -> None:
        self.name = name
        self.markets = dict(markets)
        self.fees = fees or FeeSchedule()
        self._price_source = price_source or (ticker_price_source(data_venue) if data_venue else None)
        self._data_venue = data_venue
        self._price_venue = data_venue if price_source is None else None
        self._clock = clock or (lambda: datetime.now(UTC))
        self._free: dict[str, Decimal] = {k: Decimal(v) for k, v in (balances or {}).items()}
        self._used: dict[str, Decimal] = {}
        self._books: dict[ClientOrderId, _Book] = {}
        self._fills: list[Fill] = []
        self._prices: dict[Pair, tuple[Decimal, datetime]] = {}
        self._seq = 0

    def __repr__(self) -> str:
        return f"<PaperVenue {self.name} {len(self._books)} orders>"

    # --- market data -----------------------------------------------------------------
    @property
    def data_venue(self) -> Venue | None:
        """Where candles (and markets) come from: the engine shares this venue's candle
        streams with every account on it (``engine.market.venue_key``)."""
        return self._data_venue

    @property
    def price_venue(self) -> Venue | None:
        """Where prices come from when they are the data venue's ticker (no price source of
        its own): the engine then shares that venue's reference prices. Market data only:
        orders, fills and balances are this paper account's alone."""
        return self._price_venue

    async def load_markets(self) -> dict[Pair, MarketRules]:
        if not self.markets and self._data_venue is not None:
            self.markets = await self._data_venue.load_markets()
        return dict(self.markets)

    async def _price(self, pair: Pair) -> tuple[Decimal, datetime]:
        if self._price_source is not None:
            price = await self._price_source(pair)
            self._prices[pair] = (price, self._clock())
        if pair not in self._prices:
            raise VenueError(self.name, f"no price known for {pair} yet")
        return self._prices[pair]

    async def fetch_ticker(self, pair: Pair) -> Ticker:
        if self._price_venue is not None:
            # the data venue's ticker as it is (its book, not only a last price), so a
            # reference price shared with that venue's accounts is the same whoever fetched it
            ticker = await self._price_venue.fetch_ticker(pair)
            price = _ticker_price(ticker)
            if price is None:
                raise VenueError(self.name, f"no price for {pair}")
            self._prices[pair] = (price, self._clock())
            return ticker
        price, at = await self._price(pair)
        return Ticker(pair, price, price, price, at)

    async def fetch_candles(self, pair: Pair, timeframe: str, since: datetime | None = None,
                            limit: int | None = None) -> list[Candle]:
        if self._data_venue is None:
            raise VenueError(self.name, "paper venue has no data venue for candles")
        return await self._data_venue.fetch_candles(pair, timeframe, since, limit)

    # --- balances -----------------------------------------------------------------------
    async def fetch_balances(self) -> dict[str, Balance]:
        assets = set(self._free) | set(self._used)
        result = {a: Balance(a, self._free.get(a, ZERO), self._used.get(a, ZERO)) for a in assets}
        return {a: b for a, b in result.items() if b.total}

    def _move(self, asset: str, free: Decimal = ZERO, used: Decimal = ZERO) -> None:
        self._free[asset] = self._free.get(asset, ZERO) + free
        self._used[asset] = self._used.get(asset, ZERO) + used

    # --- orders -------------------------------------------------------------------------
    def _next(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq}"

    def _rules(self, pair: Pair) -> MarketRules:
        rules = self.markets.get(pair)
        if rules is None:
            raise ExchangeRejectedOrder(self.name, "pair", f"{pair} is not a market here")
        return rules

    async def create_order(self, order: Order, attempt_at: datetime | None = None) -> Order:
        if order.client_id in self._books:
            raise ExchangeRejectedOrder(self.name, "client_id", "an order with this client id already exists")
        rules = self._rules(order.pair)
        price, at = await self._price(order.pair)
        limit = price if order.type is OrderType.MARKET else order.price
        if limit is None:
            raise ExchangeRejectedOrder(self.name, "price", f"a {order.type.value} order needs a price")
        if order.type in _CONDITIONAL and order.stop_price is None:
            raise ExchangeRejectedOrder(self.name, "stop_price", f"a {order.type.value} order needs one")
        try:
            rules.check(order.amount, limit)
        except OrderRejected as exc:
            raise ExchangeRejectedOrder(self.name, exc.field, exc.reason) from None
        marketable = _marketable(order.side, price, limit)
        if order.type is OrderType.LIMIT_MAKER and marketable:
            raise ExchangeRejectedOrder(self.name, "price", "a limit_maker order would immediately match")
        asset, need = (order.pair.quote, order.amount * limit) if order.side is Side.BUY else (
            order.pair.base, order.amount)
        if self._free.get(asset, ZERO) < need:
            raise InsufficientFunds(self.name, "insufficient funds for the order",
                                    f"needs {need} {asset}, has {self._free.get(asset, ZERO)}")
        self._move(asset, free=-need, used=need)
        placed = evolve(order, status=OrderStatus.OPEN, filled=ZERO, exchange_id=self._next("paper-o"))
        book = _Book(placed, need, asset, triggered=order.type not in _CONDITIONAL, placed_at=at)
        self._books[order.client_id] = book
        if book.triggered and marketable:
            self._fill(book, price, at, maker=False)
        elif book.triggered and order.time_in_force is not TimeInForce.GTC:
            self._release(book, OrderStatus.EXPIRED)  # IOC/FOK that cannot match now: gone
        return self._books[order.client_id].order

    async def cancel_order(self, client_id: ClientOrderId, pair: Pair) -> Order:
        book = self._book(client_id)
        if book.order.status.is_final:
            raise UnknownOrder(self.name, client_id.text, "the order is no longer open")
        self._release(book, OrderStatus.CANCELED)
        return book.order

    def _release(self, book: _Book, status: OrderStatus) -> None:
        self._move(book.reserved_asset, free=book.reserved, used=-book.reserved)
        book.reserved = ZERO
        book.order = evolve(book.order, status=status)

    async def fetch_order(self, client_id: ClientOrderId, pair: Pair) -> Order:
        return self._book(client_id).order

    def _book(self, client_id: ClientOrderId) -> _Book:
        book = self._books.get(client_id)
        if book is None:
            raise UnknownOrder(self.name, client_id.text)
        return book

    async def fetch_open_orders(self, pair: Pair | None = None) -> list[Order]:
        return [b.order for b in self._books.values()
                if not b.order.status.is_final and (pair is None or b.order.pair == pair)]

    async def fetch_my_trades(self, pair: Pair, since: datetime | None = None) -> list[Fill]:
        await self._match_now(pair)
        return [f for f in self._fills if f.pair == pair and (since is None or f.at >= since)]

    async def _match_now(self, pair: Pair) -> None:
        """Before saying what traded, meet ``pair``'s resting orders with the price of now
        (from the price source), as an exchange would have matched them meanwhile. The
        engine polls trades and never calls ``on_price``: without this a resting order
        (a DCA's take profit, a grid's lines) never filled under the engine, however far
        the price went. Only with orders open on ``pair`` (no ticker asked for nothing);
        a price source that fails fails the poll, as an unreachable exchange would."""
        if self._price_source is None or not any(
                b.order.pair == pair and not b.order.status.is_final for b in self._books.values()):
            return
        self.on_price(pair, await self._price_source(pair), self._clock())

    # --- matching -------------------------------------------------------------------------
    def on_price(self, pair: Pair, price: Decimal, at: datetime) -> list[Fill]:
        """A new market price: trigger and fill resting orders it reaches. Returns the fills."""
        self._prices[pair] = (price, at)
        fills: list[Fill] = []
        for book in list(self._books.values()):
            order = book.order
            if order.pair != pair or order.status.is_final:
                continue
            if not book.triggered:
                if not _stop_reached(order, price):
                    continue
                book.triggered = True
                assert order.price is not None
                if _marketable(order.side, price, order.price):
                    fills.append(self._fill(book, price, at, maker=False))
                continue
            assert order.price is not None
            if _traded_through(order.side, price, order.price):
                fills.append(self._fill(book, order.price, at, maker=True))
        return fills

    def _fill(self, book: _Book, price: Decimal, at: datetime, *, maker: bool) -> Fill:
        order = book.order
        amount = order.remaining
        rate = self.fees.maker if maker else self.fees.taker
        notional = amount * price
        base, quote = order.pair.base, order.pair.quote
        if order.side is Side.BUY:
            fee, fee_asset = amount * rate, base
            self._move(quote, free=book.reserved - notional, used=-book.reserved)
            self._move(base, free=amount - fee)
        else:
            fee, fee_asset = notional * rate, quote
            self._move(base, used=-book.reserved)
            self._move(quote, free=notional - fee)
        book.reserved = ZERO
        fill = Fill(client_id=order.client_id, pair=order.pair, side=order.side, price=price, amount=amount,
                    fee=fee, fee_currency=fee_asset, at=at, trade_id=self._next("paper-t"), is_maker=maker)
        book.order = evolve(order, status=OrderStatus.FILLED, filled=order.amount, average_price=price)
        self._fills.append(fill)
        return fill

    # --- permissions, lifecycle -----------------------------------------------------------
    async def check_permissions(self) -> PermissionReport:
        return PermissionReport(exchange=self.name, checked=True, verdict=Verdict.OK,
                                reasons=("paper trading: no exchange key is used",), can_trade=True,
                                can_withdraw=False, can_transfer=False)

    async def close(self) -> None:
        if self._data_venue is not None:
            await self._data_venue.close()

    # --- persistence ------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The whole simulated account as JSON-ready data (amounts as decimal text)."""
        return {
            "seq": self._seq,
            "free": {a: str(v) for a, v in self._free.items()},
            "used": {a: str(v) for a, v in self._used.items()},
            "orders": [_book_to_dict(b) for b in self._books.values()],
            "fills": [_fill_to_dict(f) for f in self._fills],
            "prices": {p.symbol: [str(v), at.isoformat()] for p, (v, at) in self._prices.items()},
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Replace this venue's state by a ``snapshot()``."""
        self._seq = int(data["seq"])
        self._free = {a: Decimal(v) for a, v in data["free"].items()}
        self._used = {a: Decimal(v) for a, v in data["used"].items()}
        self._books = {}
        for item in data["orders"]:
            book = _book_from_dict(item)
            self._books[book.order.client_id] = book
        self._fills = [_fill_from_dict(f) for f in data["fills"]]
        self._prices = {Pair.parse(s): (Decimal(v), datetime.fromisoformat(at))
                        for s, (v, at) in data["prices"].items()}


def _marketable(side: Side, price: Decimal, limit: Decimal) -> bool:
    """Would an order at ``limit`` match the market at ``price`` right away?"""
    return price <= limit if side is Side.BUY else price >= limit


def _traded_through(side: Side, price: Decimal, limit: Decimal) -> bool:
    """Has the market gone strictly beyond a resting order's limit?"""
    return price < limit if side is Side.BUY else price > limit


def _stop_reached(order: Order, price: Decimal) -> bool:
    stop = order.stop_price
    assert stop is not None
    falling = (order.type is OrderType.STOP_LOSS_LIMIT) == (order.side is Side.SELL)
    return price <= stop if falling else price >= stop


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _order_to_dict(o: Order) -> dict[str, Any]:
    return {"client_id": o.client_id.text, "pair": o.pair.symbol, "side": o.side.value, "type": o.type.value,
            "amount": str(o.amount), "price": _opt(o.price), "stop_price": _opt(o.stop_price),
            "time_in_force": o.time_in_force.value, "status": o.status.value, "filled": str(o.filled),
            "average_price": _opt(o.average_price), "exchange_id": o.exchange_id}


def _order_from_dict(d: dict[str, Any]) -> Order:
    def dec(v: str | None) -> Decimal | None:
        return None if v is None else Decimal(v)

    return Order(client_id=ClientOrderId.parse(d["client_id"]), pair=Pair.parse(d["pair"]),
                 side=Side(d["side"]), type=OrderType(d["type"]), amount=Decimal(d["amount"]),
                 price=dec(d["price"]), stop_price=dec(d["stop_price"]),
                 time_in_force=TimeInForce(d["time_in_force"]), status=OrderStatus(d["status"]),
                 filled=Decimal(d["filled"]), average_price=dec(d["average_price"]), exchange_id=d["exchange_id"])


def _book_to_dict(b: _Book) -> dict[str, Any]:
    return {"order": _order_to_dict(b.order), "reserved": str(b.reserved), "reserved_asset": b.reserved_asset,
            "triggered": b.triggered, "placed_at": b.placed_at.isoformat()}


def _book_from_dict(d: dict[str, Any]) -> _Book:
    return _Book(_order_from_dict(d["order"]), Decimal(d["reserved"]), d["reserved_asset"], bool(d["triggered"]),
                 datetime.fromisoformat(d["placed_at"]))


def _fill_to_dict(f: Fill) -> dict[str, Any]:
    return {"client_id": f.client_id.text, "pair": f.pair.symbol, "side": f.side.value, "price": str(f.price),
            "amount": str(f.amount), "fee": str(f.fee), "fee_currency": f.fee_currency, "at": f.at.isoformat(),
            "trade_id": f.trade_id, "is_maker": f.is_maker}


def _fill_from_dict(d: dict[str, Any]) -> Fill:
    return Fill(client_id=ClientOrderId.parse(d["client_id"]), pair=Pair.parse(d["pair"]), side=Side(d["side"]),
                price=Decimal(d["price"]), amount=Decimal(d["amount"]), fee=Decimal(d["fee"]),
                fee_currency=d["fee_currency"], at=datetime.fromisoformat(d["at"]), trade_id=d["trade_id"],
                is_maker=bool(d["is_maker"]))
