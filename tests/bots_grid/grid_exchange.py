"""A tiny exchange for driving bots in tests: limit orders fill at their price when a
candle trades through them, market orders fill at once at the given price. It checks
what a real exchange would refuse: a duplicate client order id, or a sell of coins
the account does not have (counting those reserved by resting sells)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sealbot.domain import (
    CancelOrder,
    Candle,
    CandleClosed,
    ClientOrderId,
    Command,
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

ZERO = Decimal(0)
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def candle(pair: Pair, i: int, o: str | Decimal, h: str | Decimal, low: str | Decimal, c: str | Decimal) -> Candle:
    return Candle(pair, "1m", T0 + timedelta(minutes=i), Decimal(o), Decimal(h), Decimal(low), Decimal(c), Decimal(1))


@dataclass
class MiniExchange:
    pair: Pair
    fee: Decimal = Decimal("0.001")
    buy_fee_in_base: bool = False  # Binance: a buy's fee comes out of the base received
    base: Decimal = ZERO  # the bot's coins
    quote_out: Decimal = ZERO  # quote paid minus quote received, fees included
    open: dict[ClientOrderId, Order] = field(default_factory=dict)
    ids: set[ClientOrderId] = field(default_factory=set)
    trades: int = 0
    placed: list[Order] = field(default_factory=list)

    def apply(self, commands: Iterable[Command], at: datetime, price: Decimal) -> list[Event]:
        events: list[Event] = []
        for command in commands:
            if isinstance(command, PlaceOrder):
                order = command.order
                assert order.client_id not in self.ids, f"duplicate client order id {order.client_id}"
                self.ids.add(order.client_id)
                self.placed.append(order)
                if order.side is Side.SELL:
                    reserved = sum((o.amount for o in self.open.values() if o.side is Side.SELL), ZERO)
                    assert order.amount <= self.base - reserved, (
                        f"sell {order.amount} but holds {self.base} with {reserved} reserved")
                if order.type is OrderType.MARKET:
                    events.append(self._fill(order, price, at))
                else:
                    self.open[order.client_id] = order
            elif isinstance(command, CancelOrder) and command.client_id in self.open:
                del self.open[command.client_id]
                events.append(OrderCanceled(command.client_id, at))
        return events

    def candle_fills(self, bar: Candle) -> list[Event]:
        """Resting orders this candle traded through, in the order its path met them."""
        buys = sorted((o for o in self.open.values() if o.side is Side.BUY and o.price is not None
                       and bar.low <= o.price), key=lambda o: o.price or ZERO, reverse=True)
        sells = sorted((o for o in self.open.values() if o.side is Side.SELL and o.price is not None
                        and bar.high >= o.price), key=lambda o: o.price or ZERO)
        ordered = buys + sells if bar.close >= bar.open else sells + buys
        events: list[Event] = []
        for order in ordered:
            del self.open[order.client_id]
            assert order.price is not None
            events.append(self._fill(order, order.price, bar.close_time))
        return events

    def committed(self) -> Decimal:
        """Quote tied up: locked by resting buys plus what has gone out net."""
        locked = sum(((o.price or ZERO) * o.amount for o in self.open.values() if o.side is Side.BUY), ZERO)
        return locked + max(self.quote_out, ZERO)

    def _fill(self, order: Order, price: Decimal, at: datetime) -> OrderFilled:
        self.trades += 1
        notional = price * order.amount
        if order.side is Side.BUY:
            if self.buy_fee_in_base:
                fee, currency = order.amount * self.fee, self.pair.base
                self.base += order.amount - fee
                self.quote_out += notional
            else:
                fee, currency = notional * self.fee, self.pair.quote
                self.base += order.amount
                self.quote_out += notional + fee
        else:
            fee, currency = notional * self.fee, self.pair.quote
            self.base -= order.amount
            self.quote_out -= notional - fee
            assert self.base >= 0, "sold more than it held"
        fill = Fill(order.client_id, self.pair, order.side, price, order.amount, fee, currency, at,
                    f"t{self.trades}", is_maker=order.type is not OrderType.MARKET)
        return OrderFilled(fill, ZERO)


@dataclass
class Run:
    """Everything that happened while driving a bot over candles."""

    state: Any
    commands: list[Command] = field(default_factory=list)
    per_event: list[tuple[Event, list[Command]]] = field(default_factory=list)


Step = Callable[[Any, Any, Event], tuple[Any, list[Command]]]


def drive(step: Step, config: Any, state: Any, exchange: MiniExchange, bars: Iterable[Candle],
          on_candle: Callable[[Any, Candle], None] | None = None,
          after_event: Callable[[Any], None] | None = None) -> Run:
    """Feed fills then each closed candle to ``step``; carry out its commands on the
    exchange and feed back what they cause. ``on_candle(state, bar)`` runs just before
    each CandleClosed (for interest checks)."""
    run = Run(state)

    def feed(event: Event, price: Decimal) -> None:
        queue = [event]
        while queue:
            current = queue.pop(0)
            run.state, commands = step(config, run.state, current)
            run.commands += commands
            run.per_event.append((current, commands))
            queue += exchange.apply(commands, current.at if hasattr(current, "at") else T0, price)
            if after_event is not None:
                after_event(run.state)

    for bar in bars:
        for event in exchange.candle_fills(bar):
            feed(event, bar.close)
        if on_candle is not None:
            on_candle(run.state, bar)
        feed(CandleClosed(bar), bar.close)
    return run
