"""Decimal rounding to exchange precision: properties that must hold for any input."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealbot.domain import MarketRules, OrderRejected, Pair, Side
from sealbot.domain.money import ceil_to_step, dec, deviation_pct, floor_to_step, moved, round_to_step, to_text

STEPS = ("0.00000001", "0.000001", "0.001", "0.01", "0.05", "0.1", "1", "5", "10")
steps = st.sampled_from([Decimal(s) for s in STEPS])
values = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("10000000"), allow_nan=False, places=10)


@given(values, steps)
def test_floor_is_the_largest_multiple_not_above(value: Decimal, step: Decimal) -> None:
    floored = floor_to_step(value, step)
    assert floored <= value
    assert value - floored < step
    assert (floored / step) == (floored / step).to_integral_value()


@given(values, steps)
def test_ceil_is_the_smallest_multiple_not_below(value: Decimal, step: Decimal) -> None:
    ceiled = ceil_to_step(value, step)
    assert ceiled >= value
    assert ceiled - value < step
    assert (ceiled / step) == (ceiled / step).to_integral_value()


@given(values, steps)
def test_round_is_within_half_a_step_and_idempotent(value: Decimal, step: Decimal) -> None:
    rounded = round_to_step(value, step)
    assert abs(rounded - value) <= step / 2
    assert round_to_step(rounded, step) == rounded


@given(values, steps)
def test_rounded_values_print_with_the_steps_places_never_in_exponent_form(value: Decimal, step: Decimal) -> None:
    text = to_text(floor_to_step(value, step))
    assert "E" not in text
    places = max(0, -step.normalize().as_tuple().exponent)  # type: ignore[operator]
    assert len(text.partition(".")[2]) == places


def test_exchange_style_steps_with_trailing_zeros() -> None:
    # Binance writes stepSize as "0.00100000": three places count, not eight.
    assert str(floor_to_step(Decimal("1.23456"), Decimal("0.00100000"))) == "1.234"
    assert str(ceil_to_step(Decimal("123.4"), Decimal("10"))) == "130"


@pytest.mark.parametrize("bad", [0.1, True, "nan", "Infinity", "abc"])
def test_dec_refuses_floats_and_non_finite_values(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        dec(bad)  # type: ignore[arg-type]


def test_moves_and_deviations_are_exact() -> None:
    assert moved(Decimal("100"), Decimal("-1.5")) == Decimal("98.5")
    assert deviation_pct(Decimal("300"), Decimal("100")) == Decimal("200")


RULES = MarketRules(
    pair=Pair("BTC", "USDT"),
    tick_size=Decimal("0.01"),
    step_size=Decimal("0.00001"),
    min_amount=Decimal("0.00001"),
    min_notional=Decimal("5"),
)


@given(st.decimals(min_value=Decimal("1"), max_value=Decimal("100000"), places=6))
def test_buy_prices_round_down_and_sell_prices_round_up(price: Decimal) -> None:
    assert RULES.price(price, Side.BUY) <= price <= RULES.price(price, Side.SELL)


@given(
    quote=st.decimals(min_value=Decimal("5.5"), max_value=Decimal("100000"), places=2),
    price=st.decimals(min_value=Decimal("100"), max_value=Decimal("100000"), places=2),
)
def test_an_amount_sized_from_quote_never_spends_more_than_the_quote(quote: Decimal, price: Decimal) -> None:
    amount = RULES.amount(quote / price)
    assert amount * price <= quote


@pytest.mark.parametrize(
    ("amount", "price", "field"),
    [
        ("0", "100", "amount"),
        ("0.000001", "100", "amount"),  # not a multiple of the step
        ("0.00001", "100.001", "price"),  # not a multiple of the tick
        ("0.00002", "100", "notional"),  # 0.002 USDT < 5
    ],
)
def test_rule_violations_name_the_field(amount: str, price: str, field: str) -> None:
    with pytest.raises(OrderRejected) as info:
        RULES.check(Decimal(amount), Decimal(price))
    assert info.value.field == field
