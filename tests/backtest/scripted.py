"""A bot that places scripted orders, for testing the fill model through the simulator.

``at_close[k]`` lists the orders placed on the k-th ``CandleClosed`` it receives (it asks
for every candle), ``cancel_at_close[k]`` the steps it cancels then; ``on_fill[step]``
lists orders placed when the order with that step fills, and ``cancel_on_fill[step]`` the
steps to cancel then. Every event it receives is kept in its state, so tests can read
what the bot saw and in which order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from sealbot.bots.base import Interest
from sealbot.domain import (
    CancelOrder,
    CandleClosed,
    ClientOrderId,
    Command,
    Event,
    Order,
    OrderFilled,
    OrderType,
    Pair,
    PlaceOrder,
    Side,
)
from sealbot.domain.evolve import evolve

PAIR = Pair("BTC", "USDT")


@dataclass(frozen=True)
class Spec:
    step: str
    side: Side
    type: OrderType
    amount: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    pair: Pair = PAIR

    def order(self) -> Order:
        return Order(ClientOrderId("s", 1, self.step), self.pair, self.side, self.type, self.amount, self.price,
                     self.stop_price)


@dataclass(frozen=True)
class Script:
    at_close: Mapping[int, tuple[Spec, ...]] = field(default_factory=dict)
    on_fill: Mapping[str, tuple[Spec, ...]] = field(default_factory=dict)
    cancel_on_fill: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    cancel_at_close: Mapping[int, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    closes: int = 0
    events: tuple[Event, ...] = ()


def initial_state(config: Script) -> Seen:
    return Seen()


def interest(config: Script, state: Seen) -> Interest:
    return Interest.ALWAYS


def step(config: Script, state: Seen, event: Event) -> tuple[Seen, list[Command]]:
    state = evolve(state, events=(*state.events, event))
    commands: list[Command] = []
    if isinstance(event, CandleClosed):
        commands += [PlaceOrder(s.order()) for s in config.at_close.get(state.closes, ())]
        commands += [CancelOrder(ClientOrderId("s", 1, s)) for s in config.cancel_at_close.get(state.closes, ())]
        state = evolve(state, closes=state.closes + 1)
    elif isinstance(event, OrderFilled):
        done = event.fill.client_id.step
        commands += [CancelOrder(ClientOrderId("s", 1, s)) for s in config.cancel_on_fill.get(done, ())]
        commands += [PlaceOrder(s.order()) for s in config.on_fill.get(done, ())]
    return state, commands
