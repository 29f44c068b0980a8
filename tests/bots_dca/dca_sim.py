"""A tiny in-test exchange and driver for bot tests.

Limit orders fill at their price when a candle trades through them; market orders fill
at once at the current candle's close; cancels are confirmed at once. Fees are charged
Binance-style in the asset received. The exchange also checks, on every order, the two
safety properties the bots promise: a deal never sells more base than it holds (long)
and never commits more quote than ``max_funds`` (long)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sealbot.bots.base import Interest
from sealbot.bots.common.paths import touches
from sealbot.domain import (
    CancelOrder,
    Candle,
    ClientOrderId,
    Command,
    Direction,
    Event,
    Fill,
    Order,
    OrderCanceled,
    OrderFilled,
    OrderType,
    Pair,
    PlaceOrder,
    Side,
)
from sealbot.domain.events import CandleClosed

PAIR = Pair("BTC", "USDT")
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def candle(i: int, o: str | Decimal, h: str | Decimal, low: str | Decimal, c: str | Decimal) -> Candle:
    return Candle(PAIR, "1m", T0 + timedelta(minutes=i), Decimal(o), Decimal(h), Decimal(low), Decimal(c), Decimal(1))


def candles(rows: Iterable[tuple[str, str, str, str]]) -> list[Candle]:
    return [candle(i, *row) for i, row in enumerate(rows)]


@dataclass
class MiniExchange:
    fee: Decimal = Decimal("0.001")
    max_funds: Decimal | None = None  # per deal, checked for long entries
    direction: Direction = Direction.LONG
    open: dict[ClientOrderId, Order] = field(default_factory=dict)
    held: dict[int, Decimal] = field(default_factory=dict)  # long: net base per deal
    committed: dict[int, Decimal] = field(default_factory=dict)
    seen_ids: set[ClientOrderId] = field(default_factory=set)
    trades: int = 0
    fills: list[Fill] = field(default_factory=list)

    def _fill(self, order: Order, price: Decimal, at: datetime) -> OrderFilled:
        self.trades += 1
        amount = order.amount
        if order.side is Side.BUY:
            fee, currency = amount * self.fee, order.pair.base
        else:
            fee, currency = amount * price * self.fee, order.pair.quote
        fill = Fill(order.client_id, order.pair, order.side, price, amount, fee, currency, at, f"t{self.trades}")
        deal = order.client_id.deal
        if self.direction is Direction.LONG:
            delta = amount - fee if order.side is Side.BUY else -amount
            self.held[deal] = self.held.get(deal, Decimal(0)) + delta
        self.fills.append(fill)
        return OrderFilled(fill, Decimal(0))

    def submit(self, commands: Iterable[Command], price: Decimal, at: datetime) -> list[Event]:
        out: list[Event] = []
        for command in commands:
            if isinstance(command, PlaceOrder):
                order = command.order
                assert order.client_id not in self.seen_ids, f"client id reused: {order.client_id}"
                self.seen_ids.add(order.client_id)
                self._check(order, price)
                if order.type is OrderType.MARKET:
                    out.append(self._fill(order, price, at))
                else:
                    self.open[order.client_id] = order
            elif isinstance(command, CancelOrder) and command.client_id in self.open:
                del self.open[command.client_id]
                out.append(OrderCanceled(command.client_id, at))
        return out

    def _check(self, order: Order, price: Decimal) -> None:
        deal = order.client_id.deal
        if self.direction is not Direction.LONG:
            return
        if order.side is Side.SELL:
            resting = sum(
                (o.amount for o in self.open.values() if o.client_id.deal == deal and o.side is Side.SELL), Decimal(0)
            )
            assert resting + order.amount <= self.held.get(deal, Decimal(0)), "sells more than the deal holds"
        elif self.max_funds is not None and not order.client_id.step.startswith("add"):
            spend = order.amount * (order.price if order.price is not None else price)
            self.committed[deal] = self.committed.get(deal, Decimal(0)) + spend
            assert self.committed[deal] <= self.max_funds, "commits more than max funds"

    def trade_through(self, bar: Candle) -> list[Event]:
        out: list[Event] = []
        for cid, order in sorted(self.open.items()):
            assert order.price is not None
            if (order.side is Side.BUY and bar.low <= order.price) or (
                order.side is Side.SELL and bar.high >= order.price
            ):
                del self.open[cid]
                out.append(self._fill(order, order.price, bar.close_time))
        return out


Stepper = Callable[[Any, Event], tuple[Any, list[Command]]]


@dataclass
class Run:
    state: Any
    log: list[tuple[str, Command]]
    exchange: MiniExchange
    states: list[Any]


def drive(
    step: Callable[[Any, Any, Event], tuple[Any, list[Command]]],
    interest: Callable[[Any, Any], Interest],
    config: Any,
    state: Any,
    bars: list[Candle],
    exchange: MiniExchange,
    skip: bool = False,
    extra: dict[int, list[Event]] | None = None,
) -> Run:
    """Feed ``bars`` (and ``extra`` events before bar i) through ``step`` with fills from
    ``exchange``; ``skip`` delivers only the candles that touch the bot's interest."""
    log: list[tuple[str, Command]] = []
    states: list[Any] = []

    def process(events: list[Event], price: Decimal, at: datetime) -> None:
        nonlocal state
        queue = list(events)
        while queue:
            event = queue.pop(0)
            state, commands = step(config, state, event)
            log.extend((type(event).__name__, c) for c in commands)
            queue.extend(exchange.submit(commands, price, at))

    for i, bar in enumerate(bars):
        process(list((extra or {}).get(i, [])), bar.open, bar.open_time)
        process(exchange.trade_through(bar), bar.close, bar.close_time)
        if not skip or touches(interest(config, state), bar):
            process([CandleClosed(bar)], bar.close, bar.close_time)
        states.append(state)
    return Run(state, log, exchange, states)
