"""The bounds on amounts, prices and percentages (``domain.money``) are enough: within
them, rounding to an exchange step never raises and a bot at the largest values trades
on; beyond them, configs are refused naming the field (before: ``1e400`` was accepted
and raised ``InvalidOperation`` in ``_to_step`` on every candle)."""

from __future__ import annotations

from decimal import Decimal as D
from decimal import localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bots_dca.dca_factory import config
from bots_dca.dca_sim import MiniExchange, candle, drive
from sealbot.bots import dca
from sealbot.bots.common.markets import base_for_quote
from sealbot.bots.registry import parse_config
from sealbot.domain import InvalidConfig, Pair
from sealbot.domain.market import MarketRules
from sealbot.domain.money import (
    HUNDRED,
    MAX_AMOUNT,
    MAX_PERCENT,
    MAX_PLACES,
    ceil_to_step,
    floor_to_step,
    moved,
    round_to_step,
)

SMALLEST = D(1).scaleb(-MAX_PLACES)  # 1e-12
amounts = st.decimals(min_value=SMALLEST, max_value=MAX_AMOUNT, places=MAX_PLACES)
percents = st.decimals(min_value=D(0), max_value=MAX_PERCENT, places=MAX_PLACES)
steps = st.one_of(st.sampled_from([D(1).scaleb(k) for k in range(-MAX_PLACES, 13)]),
                  st.sampled_from([D("0.5"), D("0.25"), D("5"), D("0.00025")]), amounts)


def _rounds_within_a_step(value: D, step: D) -> None:
    for rounding in (floor_to_step, ceil_to_step, round_to_step):
        result = rounding(value, step)
        with localcontext(prec=80):  # the check's own arithmetic needs the room too
            assert result % step == 0 and abs(result - value) <= step, (rounding.__name__, value, step)


@settings(max_examples=300, deadline=None)
@given(value=amounts, step=steps, percent=percents)
def test_rounding_any_bounded_price_moved_by_any_bounded_percent_never_raises(value: D, step: D, percent: D) -> None:
    """Prices a bot derives: a config price moved up or down by a config percentage."""
    _rounds_within_a_step(value, step)
    _rounds_within_a_step(moved(value, percent), step)
    _rounds_within_a_step(moved(value, -min(percent, HUNDRED)), step)


@settings(max_examples=300, deadline=None)
@given(quote=amounts, price=amounts, step=steps)
def test_sizing_any_bounded_volume_at_any_bounded_price_never_raises(quote: D, price: D, step: D) -> None:
    """Amounts a bot derives: quote / price, up to 10^12 / 10^-12 = 10^24 (beyond the
    default context's 28 digits once divided by a 10^-12 step)."""
    _rounds_within_a_step(quote / price, step)
    rules = MarketRules(pair=Pair("BTC", "USDT"), tick_size=step, step_size=step)
    assert base_for_quote(rules, quote, price) <= quote / price


def test_the_extremes_of_the_bounds_round() -> None:
    _rounds_within_a_step(MAX_AMOUNT / SMALLEST, SMALLEST)
    _rounds_within_a_step(moved(MAX_AMOUNT, MAX_PERCENT), SMALLEST)


@pytest.mark.parametrize("price", ["0.000000000001", "0.5", "50000", "999999999999"])
def test_a_dca_bot_at_the_largest_volumes_trades_on_any_bounded_price(price: str) -> None:
    """A deal of MAX_AMOUNT on the finest market: base order, safety orders and take
    profit are placed and filled without an arithmetic error."""
    market = {"pair": "BTC/USDT", "tick_size": str(SMALLEST), "step_size": str(SMALLEST)}
    cfg = config(markets=[market], base_order_volume=str(MAX_AMOUNT / 2), safety_order_volume=str(MAX_AMOUNT / 8),
                 max_safety_orders=2, safety_order_step_percentage="10", martingale_step_coefficient="1",
                 take_profit=str(MAX_PERCENT))
    assert cfg.max_funds <= MAX_AMOUNT
    p = D(price)
    bars = [candle(0, p, p, p, p), candle(1, p, p, p * D("0.7"), p * D("0.7")),
            candle(2, p, p * 11, p, p * 11)]
    run = drive(dca.step, dca.interest, cfg, dca.initial_state(cfg), bars, MiniExchange(max_funds=cfg.max_funds))
    assert run.exchange.trades >= 3  # base order, a safety order, the take profit


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("base_order_volume", "1e400", "must be at most 1000000000000"),
    ("base_order_volume", 1e308, "must be at most 1000000000000"),
    ("base_order_volume", "1" + "0" * 200, "must be at most 1000000000000"),
    ("base_order_volume", "0.0000000000001", "has more than 12 decimal places"),
    ("base_order_volume", "NaN", "must be a finite number"),
    ("safety_order_volume", "1e400", "must be at most 1000000000000"),
    ("take_profit", "1e400", "must be at most 1000"),
    ("stop_loss_percentage", "1001", "must be at most 1000"),
    ("martingale_volume_coefficient", "101", "must be at most 100"),
    ("min_price", "1e13", "must be at most 1000000000000"),
])
def test_an_out_of_bounds_value_is_refused_naming_the_field(field: str, value: object, reason: str) -> None:
    data = {"bot_id": "1", "markets": [{"pair": "BTC/USDT"}], "base_order_volume": "10", field: value}
    with pytest.raises(InvalidConfig) as caught:
        parse_config("dca", data)
    assert (caught.value.field, caught.value.reason) == (field, reason)


def test_a_market_step_beyond_the_bounds_is_refused() -> None:
    data = {"bot_id": "1", "markets": [{"pair": "BTC/USDT", "tick_size": "1e-400"}], "base_order_volume": "10"}
    with pytest.raises(InvalidConfig) as caught:
        parse_config("dca", data)
    assert caught.value.field == "markets.0.tick_size"


def test_a_short_whose_safety_orders_compound_past_the_bound_is_refused() -> None:
    data = {"bot_id": "1", "markets": [{"pair": "BTC/USDT"}], "base_order_volume": "10", "strategy": "short",
            "max_safety_orders": 50, "safety_order_volume": "10", "martingale_step_coefficient": "1.5"}
    with pytest.raises(InvalidConfig) as caught:
        parse_config("dca", data)
    assert caught.value.field == "martingale_step_coefficient" and "more than the maximum 1000%" in caught.value.reason


def test_the_documented_defaults_make_a_valid_bot_without_safety_orders() -> None:
    cfg = parse_config("dca", {"bot_id": "1", "markets": [{"pair": "BTC/USDT"}], "base_order_volume": "10"})
    assert isinstance(cfg, dca.DcaConfig)
    assert (cfg.max_safety_orders, cfg.active_safety_orders_count, cfg.safety_steps) == (0, 1, ())
    with pytest.raises(InvalidConfig) as caught:
        parse_config("dca", {"bot_id": "1", "markets": [{"pair": "BTC/USDT"}], "base_order_volume": "10",
                             "active_safety_orders_count": 2})
    assert caught.value.field == "active_safety_orders_count"
