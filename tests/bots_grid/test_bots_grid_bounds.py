"""Grid, signal and smart-trade configs and signal bodies refuse amounts, prices and
delays beyond the bounds (``domain.money``, ``bots.common.fields``), naming the field.
Before: a grid with ``upper_price`` "1e400" raised ``InvalidOperation`` in its checks (a
500), and a DCA signal with a huge ``delay_seconds`` an ``OverflowError``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from sealbot.bots.registry import parse_config
from sealbot.bots.signals import SignalRejected, parse_signal
from sealbot.domain import InvalidConfig

MARKET = {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001"}
GRID = {"bot_id": "1", "market": MARKET, "lower_price": "40000", "upper_price": "50000", "grids_quantity": 5,
        "quantity_per_grid": "0.001"}
SIGNAL = {"bot_id": "1", "markets": [MARKET], "amount": "50"}
SMART = {"bot_id": "1", "market": MARKET, "volume": "100", "entry_type": "limit", "entry_price": "40000"}
NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(("kind", "base", "field", "value", "reason"), [
    ("grid", GRID, "upper_price", "1e400", "must be at most 1000000000000"),
    ("grid", GRID, "lower_price", "0.0000000000001", "has more than 12 decimal places"),
    ("grid", {**GRID, "quantity_per_grid": None}, "investment", "1e400", "must be at most 1000000000000"),
    ("signal", SIGNAL, "amount", "1e400", "must be at most 1000000000000"),
    ("signal", SIGNAL, "max_position", 1e308, "must be at most 1000000000000"),
    ("smart", SMART, "volume", "1e400", "must be at most 1000000000000"),
    ("smart", SMART, "entry_price", "1" + "0" * 200, "must be at most 1000000000000"),
    ("smart", SMART, "stop_loss_percentage", "1e400", "must be at most 1000"),
])
def test_an_out_of_bounds_value_is_refused_naming_the_field(kind: str, base: dict[str, Any], field: str,
                                                            value: object, reason: str) -> None:
    with pytest.raises(InvalidConfig) as caught:
        parse_config(kind, {**base, field: value})
    assert (caught.value.field, caught.value.reason) == (field, reason)


def test_durations_beyond_the_bounds_are_refused() -> None:
    with pytest.raises(InvalidConfig) as caught:
        parse_config("signal", {**SIGNAL, "max_signal_age_seconds": 10**12})
    assert caught.value.field == "max_signal_age_seconds"
    with pytest.raises(InvalidConfig) as caught:
        parse_config("smart", {**SMART, "timeout_seconds": 10**20})
    assert caught.value.field == "timeout_seconds"


@pytest.mark.parametrize(("body", "field", "reason"), [
    ({"message_type": "bot", "bot_id": 999, "email_token": "t", "pair": "USDT_BTC", "delay_seconds": 10**12},
     "delay_seconds", "must be at most 86400 seconds (one day)"),
    ({"message_type": "bot", "bot_id": 999, "email_token": "t", "action": "add_funds_in_quote", "volume": "1e400"},
     "volume", "must be at most 1000000000000"),
    ({"secret": "s", "bot_uuid": "u", "action": "enter_long", "order": {"amount": "1e400"}},
     "order.amount", "must be at most 1000000000000"),
    ({"secret": "s", "bot_uuid": "u", "action": "enter_long", "trigger_price": "1e400"},
     "trigger_price", "must be at most 1000000000000"),
    ({"secret": "s", "bot_uuid": "u", "action": "enter_long", "max_lag": 10**20},
     "max_lag", "must be at most 86400 seconds (one day)"),
])
def test_a_signal_beyond_the_bounds_is_rejected_naming_the_field(body: dict[str, Any], field: str,
                                                                 reason: str) -> None:
    with pytest.raises(SignalRejected) as caught:
        parse_signal(json.dumps(body).encode(), NOW)
    assert (caught.value.field, caught.value.reason) == (field, reason)


def test_a_day_long_delay_is_still_accepted() -> None:
    body = {"message_type": "bot", "bot_id": 9, "email_token": "t", "pair": "USDT_BTC", "delay_seconds": 86_400}
    parsed = parse_signal(json.dumps(body).encode(), NOW)
    assert parsed.not_before is not None and (parsed.not_before - NOW).total_seconds() == 86_400
