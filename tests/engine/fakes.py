"""An in-memory exchange account behind the Venue interface, with injectable faults.

Small on purpose: it keeps orders by client id (refusing duplicates, as exchanges do),
records trades, and can lose an answer (the order reached it, the reply did not) or
fail before the order arrives. The simex-based tests check the same behaviour against
a real HTTP exchange.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sealbot.domain import Candle, ClientOrderId, Fill, MarketRules, Order, OrderStatus, OrderType, Pair, Side
from sealbot.domain.evolve import evolve
from sealbot.venues.base import Balance, PermissionReport, Ticker, Venue, Verdict, parse_client_id
from sealbot.venues.errors import ExchangeRejectedOrder, ExchangeUnavailable, InsufficientFunds, UnknownOrder

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FakeVenue(Venue):
    name = "fake"

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self.orders: dict[str, Order] = {}
        self.trades: list[Fill] = []
        self.created: list[str] = []  # every client id the exchange accepted, in order
        self.faults: list[str] = []  # next create_order faults: "lost_answer", "unreachable", "funds"
        self.on_create: Callable[[Order], None] | None = None
        self.candles: list[Candle] = []
        self.now = now or (lambda: T0)
        self.price = Decimal(100)
        self.fill_market = True
        self.permission_report = PermissionReport("fake", True, Verdict.OK, can_trade=True, can_withdraw=False,
                                                  ip_restricted=True)
        self._trade_no = 0

    async def load_markets(self) -> dict[Pair, MarketRules]:
        return {}

    async def fetch_balances(self) -> dict[str, Balance]:
        return {}

    async def fetch_ticker(self, pair: Pair) -> Ticker:
        return Ticker(pair, self.price, self.price, self.price, self.now())

    async def fetch_candles(self, pair: Pair, timeframe: str, since: datetime | None = None,
                            limit: int | None = None) -> list[Candle]:
        found = [c for c in self.candles if since is None or c.open_time >= since]
        return found[-limit:] if limit else found

    async def create_order(self, order: Order, attempt_at: datetime | None = None) -> Order:
        if self.on_create:
            self.on_create(order)
        fault = self.faults.pop(0) if self.faults else None
        if fault == "unreachable":
            raise ExchangeUnavailable(self.name, "timed out")
        if fault == "funds":
            raise InsufficientFunds(self.name, "insufficient funds for the order")
        if order.client_id.text in self.orders:
            raise ExchangeRejectedOrder(self.name, "client_id", "an order with this client id already exists")
        placed = evolve(order, status=OrderStatus.OPEN, exchange_id=str(len(self.orders) + 1))
        self.orders[order.client_id.text] = placed
        self.created.append(order.client_id.text)
        if order.type is OrderType.MARKET and self.fill_market:
            self.fill(order.client_id.text, order.amount, self.price)
        if fault == "lost_answer":
            raise ExchangeUnavailable(self.name, "timed out")
        return self.orders[order.client_id.text]

    def fill(self, text: str, amount: Decimal, price: Decimal) -> Fill:
        order = self.orders[text]
        self._trade_no += 1
        fill = Fill(parse_client_id(text), order.pair, order.side, price, amount, Decimal(0), order.pair.quote,
                    self.now() + timedelta(seconds=self._trade_no), str(self._trade_no))
        self.trades.append(fill)
        filled = order.filled + amount
        status = OrderStatus.FILLED if filled >= order.amount else OrderStatus.PARTIALLY_FILLED
        self.orders[text] = evolve(order, filled=filled, status=status, average_price=price)
        return fill

    def place_foreign(self, pair: Pair, raw_id: str, side: Side = Side.BUY) -> None:
        """An order someone else placed with the account's key."""
        self.orders[raw_id] = Order(parse_client_id(raw_id), pair, side, OrderType.LIMIT, Decimal(1),
                                    Decimal(300), status=OrderStatus.OPEN, exchange_id=raw_id)

    async def cancel_order(self, client_id: ClientOrderId, pair: Pair) -> Order:
        order = await self.fetch_order(client_id, pair)
        if order.status.is_final:
            return order
        self.orders[client_id.text] = evolve(order, status=OrderStatus.CANCELED)
        return self.orders[client_id.text]

    async def fetch_order(self, client_id: ClientOrderId, pair: Pair) -> Order:
        if client_id.text not in self.orders:
            raise UnknownOrder(self.name, client_id.text)
        return self.orders[client_id.text]

    async def fetch_open_orders(self, pair: Pair | None = None) -> list[Order]:
        return [o for o in self.orders.values()
                if not o.status.is_final and (pair is None or o.pair == pair)]

    async def fetch_my_trades(self, pair: Pair, since: datetime | None = None) -> list[Fill]:
        return [t for t in self.trades if t.pair == pair and (since is None or t.at >= since)]

    async def check_permissions(self) -> PermissionReport:
        return self.permission_report

    async def close(self) -> None:
        return None
