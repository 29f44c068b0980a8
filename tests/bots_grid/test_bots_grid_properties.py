"""Properties of the grid over random price paths, driven through a tiny exchange that
refuses what a real one would (duplicate ids, selling coins not held)."""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealbot.bots import grid
from sealbot.bots.common.paths import touches
from sealbot.domain import Candle, CandleClosed, Pair

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
