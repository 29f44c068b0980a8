"""Properties of the grid over random price paths, driven through a tiny exchange that
refuses what a real one would (duplicate ids, selling coins not held)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal as D
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sealbot.bots import grid
from sealbot.bots.common.executor import CLOSE_ATTEMPTS
from sealbot.bots.common.paths import touches
from sealbot.bots.grid.machine import LEVEL_SEND_ATTEMPTS
from sealbot.bots.grid.state import order_id, parse_step
from sealbot.domain import (
    Candle,
    CandleClosed,
    ClientOrderId,
    Command,
    Event,
    OrderType,
    OrderWasRejected,
    Pair,
    PlaceOrder,
)

from .grid_exchange import MiniExchange, candle, drive

BTC = Pair("BTC", "USDT")
MARKET = {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.001", "min_notional": "5"}
FEES = {"maker": "0.001", "taker": "0.001"}
CONFIGS = [
    grid.parse_config({"bot_id": "a1", "market": MARKET, "fees": FEES, "lower_price": "90", "upper_price": "130",
                       "grids_quantity": 9, "quantity_per_grid": "0.5",
                       "lower_stop_loss_enabled": True, "lower_stop_loss_price": "70",
                       "lower_stop_loss_action": "stop_bot_and_sell",
                       "upper_stop_loss_enabled": True, "upper_stop_loss_price": "160"}),
    grid.parse_config({"bot_id": "b2", "market": MARKET, "fees": FEES, "lower_price": "95", "upper_price": "125",
                       "grids_quantity": 7, "grid_type": "geometric", "investment": "1000",
                       "trailing_up_enabled": True, "trailing_down_enabled": True,
                       "trailing_down_stop_price": "80"}),
    grid.parse_config({"bot_id": "c3", "market": MARKET, "fees": FEES, "lower_price": "100", "upper_price": "120",
                       "grids_quantity": 6, "quantity_per_grid": "60", "order_currency_type": "quote",
                       "trailing_up_enabled": True,
                       "lower_stop_loss_enabled": True, "lower_stop_loss_price": "85"}),
    grid.parse_config({"bot_id": "d4", "market": MARKET, "fees": FEES, "lower_price": "100", "upper_price": "112",
                       "grids_quantity": 5, "investment": "600", "trailing_up_enabled": True,
                       "trailing_down_enabled": True, "trailing_down_stop_price": "92",
                       "upper_stop_loss_enabled": True, "upper_stop_loss_price": "170",
                       "upper_stop_loss_action": "stop_bot_and_sell"}),
]


@st.composite
def price_paths(draw: st.DrawFn) -> list[Candle]:
    price = D(draw(st.integers(8000, 14000))) / 100
    moves = draw(st.lists(st.integers(-500, 500), min_size=3, max_size=60))
    bars = []
    for i, move in enumerate(moves):
        close = max((price * (10000 + move) / 10000).quantize(D("0.01")), D("1"))
        up, down = draw(st.integers(0, 300)), draw(st.integers(0, 300))
        high = (max(price, close) * (10000 + up) / 10000).quantize(D("0.01"))
        low = max((min(price, close) * (10000 - down) / 10000).quantize(D("0.01")), D("0.5"))
        bars.append(candle(BTC, i, price, high, low, close))
        price = close
    return bars


def _run(cfg: grid.Config, bars: list[Candle], fee_in_base: bool, **hooks: Any) -> tuple[Any, MiniExchange]:
    ex = MiniExchange(BTC, fee=D("0.001"), buy_fee_in_base=fee_in_base)
    return drive(grid.step, cfg, grid.initial_state(cfg), ex, bars, **hooks), ex


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(cfg=st.sampled_from(CONFIGS), bars=price_paths(), fee_in_base=st.booleans())
def test_grid_never_sells_more_than_it_holds_nor_commits_more_than_its_funds(
        cfg: grid.Config, bars: list[Candle], fee_in_base: bool) -> None:
    max_funds = grid.preview(cfg, bars[0].close).max_funds
    if cfg.investment is not None:
        assert max_funds <= cfg.investment
    seen: list[D] = []

    def check(_state: Any) -> None:
        seen.append(ex_box[0].committed())

    ex_box: list[MiniExchange] = []
    ex = MiniExchange(BTC, fee=D("0.001"), buy_fee_in_base=fee_in_base)
    ex_box.append(ex)
    # MiniExchange asserts on every sell that the coins are there (net of resting sells)
    run = drive(grid.step, cfg, grid.initial_state(cfg), ex, bars, after_event=check)
    assert ex.base >= 0
    assert max(seen, default=D(0)) <= max_funds
    # the bot's own books agree with the exchange: what its intervals hold plus dust
    held = sum((s.held for s in run.state.slots.values()), D(0)) + run.state.dust
    if run.state.opening is None and run.state.closing is None:
        assert held == ex.base


@SETTINGS
@given(cfg=st.sampled_from(CONFIGS), bars=price_paths(), fee_in_base=st.booleans())
def test_interest_never_skips_a_candle_that_would_change_the_state(
        cfg: grid.Config, bars: list[Candle], fee_in_base: bool) -> None:
    tick = D("0.01")

    def check(state: Any, bar: Candle) -> None:
        interest = grid.interest(cfg, state)
        if not touches(interest, bar):
            assert grid.step(cfg, state, CandleClosed(bar)) == (state, [])
        if interest.every_candle:
            return
        # adversarial candles that stay just inside the band, closing at either edge
        low = interest.below + tick if interest.below is not None else bar.low
        high = interest.above - tick if interest.above is not None else bar.high
        if low > high:
            return
        for o, c in ((low, high), (high, low), (low, low), (high, high)):
            inside = candle(BTC, 999, o, high, low, c)
            assert not touches(interest, inside)
            assert grid.step(cfg, state, CandleClosed(inside)) == (state, [])

    _run(cfg, bars, fee_in_base, on_candle=check)


@SETTINGS
@given(cfg=st.sampled_from(CONFIGS), bars=price_paths(), fee_in_base=st.booleans())
def test_replaying_the_same_events_gives_the_same_commands(
        cfg: grid.Config, bars: list[Candle], fee_in_base: bool) -> None:
    first, ex = _run(cfg, bars, fee_in_base)
    second, _ = _run(cfg, bars, fee_in_base)
    assert first.commands == second.commands
    # every id is derived from (bot, deal, step): the exchange saw no duplicate, and
    # feeding the recorded events again from a state restored from JSON reproduces them
    assert len(ex.ids) == len(ex.placed)
    state = grid.load_state(json.loads(json.dumps(grid.dump_state(grid.initial_state(cfg)))))
    for event, commands in first.per_event:
        state, again = grid.step(cfg, state, event)
        assert again == commands
        state = grid.load_state(json.loads(json.dumps(grid.dump_state(state))))
    assert state == first.state


class LossyExchange(MiniExchange):
    """Loses the limit orders and closing sells ``lose`` picks, as the engine does after
    a crash: the order is journalled (its id is used up) but never sent, and the bot
    hears it was rejected as unsent."""

    def __init__(self, lose: list[bool], **kwargs: Any) -> None:
        super().__init__(BTC, **kwargs)
        self.lose, self.sends, self.lost = lose, 0, list[ClientOrderId]()

    def apply(self, commands: Iterable[Command], at: datetime, price: D) -> list[Event]:
        events: list[Event] = []
        for command in commands:
            if isinstance(command, PlaceOrder) and (command.order.type is OrderType.LIMIT
                                                    or command.order.client_id.step.startswith("close")):
                n, self.sends = self.sends, self.sends + 1
                if n < len(self.lose) and self.lose[n]:
                    assert command.order.client_id not in self.ids, f"duplicate id {command.order.client_id}"
                    self.ids.add(command.order.client_id)
                    self.lost.append(command.order.client_id)
                    events.append(OrderWasRejected(command.order.client_id, "never reached the exchange", at,
                                                   unsent=True))
                    continue
            events += super().apply([command], at, price)
        return events


@SETTINGS
@given(cfg=st.sampled_from(CONFIGS), bars=price_paths(), fee_in_base=st.booleans(),
       lose=st.lists(st.booleans(), max_size=120) | st.lists(st.just(True), max_size=120))
# every order lost until the caps, then the lower stop and its closing sell, lost too
@example(cfg=CONFIGS[0], bars=[candle(BTC, 0, "100", "100.5", "99.5", "100"), candle(BTC, 1, "100", "100", "65", "66")],
         fee_in_base=False, lose=[True] * 120)
def test_whatever_orders_are_lost_unsent_each_interval_has_one_live_order_and_the_cap_holds(
        cfg: grid.Config, bars: list[Candle], fee_in_base: bool, lose: list[bool]) -> None:
    ex = LossyExchange(lose, fee=D("0.001"), buy_fee_in_base=fee_in_base)

    def agree(state: Any, _bar: Candle | None = None) -> None:
        # once the events settle, the exchange holds exactly the orders the grid thinks
        # are working: one per interval, none lost and forgotten, none doubled
        per_interval = Counter(parse_step(cid.step)[0] for cid in ex.open)  # type: ignore[index]
        assert all(n == 1 for n in per_interval.values()), per_interval
        working = {order_id(cfg.bot_id, s) for s in state.slots.values() if s.side is not None}
        if state.phase is grid.Phase.RUNNING:
            assert working == set(ex.open)
        assert all(0 <= s.lost < LEVEL_SEND_ATTEMPTS for s in state.slots.values()), "over the cap"

    run = drive(grid.step, cfg, grid.initial_state(cfg), ex, bars, on_candle=agree)
    agree(run.state)
    # no order is sent more than LEVEL_SEND_ATTEMPTS times in a row after being lost:
    # follow each lost id to the one placed again for it (same interval and side, next cycle)
    lost = {cid for cid in ex.lost if not cid.step.startswith("close")}
    closes = [cid.step for cid in ex.lost if cid.step.startswith("close")]
    assert closes == ["close", *(f"close{n}" for n in range(2, len(closes) + 1))][:len(closes)]
    assert len(closes) <= CLOSE_ATTEMPTS
    for cid in lost:
        interval, side, cycle = parse_step(cid.step)  # type: ignore[misc]
        chain, at = 1, cycle
        while at > 1:
            before = order_id(cfg.bot_id, grid.Slot(index=interval, cycle=at - 1, side=side))
            if before not in lost:
                break
            chain, at = chain + 1, at - 1
        assert chain <= LEVEL_SEND_ATTEMPTS, cid
    held = sum((s.held for s in run.state.slots.values()), D(0)) + run.state.dust
    if run.state.opening is None and run.state.closing is None:
        assert held == ex.base
