"""Impossible DCA settings are refused with the field path and the reason (HTTP 422 style)."""

from __future__ import annotations

from typing import Any

import pytest

from bots_dca.dca_factory import FINE_MARKET
from sealbot.bots import dca
from sealbot.bots.common import parse_config
from sealbot.domain import InvalidConfig


def base(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "bot_id": "b1",
        "markets": [FINE_MARKET],
        "base_order_volume": "10",
        "safety_order_volume": "20",
        "max_safety_orders": 3,
        "take_profit": "1",
    }
    data.update(overrides)
    return data


INVALID = [
    # (overrides, field path, words the reason must contain)
    (
        {"safety_order_step_percentage": "30", "martingale_step_coefficient": "2", "max_safety_orders": 3},
        "safety_order_step_percentage",
        ">= 100%",
    ),  # 30 + 60 + 120 = 210 % below the base price
    (
        {
            "custom_safety_steps": [
                {"price_deviation": "50", "volume": "1"},
                {"price_deviation": "100", "volume": "1"},
            ],
            "max_safety_orders": 0,
            "active_safety_orders_count": 1,
        },
        "custom_safety_steps",
        ">= 100%",
    ),
    (
        {
            "take_profit_steps": [
                {"amount_percentage": "50", "profit_percentage": "1"},
                {"amount_percentage": "40", "profit_percentage": "2"},
            ]
        },
        "take_profit_steps",
        "sum to 100",
    ),
    ({"active_safety_orders_count": 4}, "active_safety_orders_count", "exceeds"),
    ({"min_price": "200", "max_price": "100"}, "min_price", "below max_price"),
    ({"min_price": "100", "max_price": "100"}, "min_price", "below max_price"),
    ({"bot_id": "bad-id!"}, "bot_id", "pattern"),
    ({"bot_id": "waytoolongbotid"}, "bot_id", "pattern"),
    ({"trailing_enabled": True, "trailing_deviation": "0"}, "trailing_deviation", "positive"),
    ({"trailing_enabled": True, "trailing_deviation": "2", "take_profit": "1"}, "trailing_deviation", "below"),
    ({"tsl_enabled": True}, "tsl_enabled", "stop_loss_percentage"),
    ({"stop_loss_percentage": "100"}, "stop_loss_percentage", "100%"),
    ({"start_condition": "rsi"}, "rsi", "rsi condition"),
    ({"start_condition": "rsi", "rsi": {"timeframe": "7x"}}, "rsi.timeframe", "1m"),
    (
        {
            "take_profit_steps": [
                {"amount_percentage": "50", "profit_percentage": "2"},
                {"amount_percentage": "50", "profit_percentage": "1"},
            ]
        },
        "take_profit_steps.1.profit_percentage",
        "increase",
    ),
    (
        {"take_profit_steps": [{"amount_percentage": "20", "profit_percentage": str(i)} for i in range(1, 6)]},
        "take_profit_steps",
        "at most 4",
    ),
    ({"markets": [FINE_MARKET, FINE_MARKET]}, "markets.1.pair", "twice"),
    ({"markets": [{**FINE_MARKET, "min_notional": "11"}]}, "base_order_volume", "minimum"),
    ({"safety_order_volume": "0"}, "safety_order_volume", "positive"),
    ({"base_order_volume": "-1"}, "base_order_volume", "greater than 0"),
    ({"markets": [{"pair": "BTCUSDT"}]}, "markets.0.pair", "BASE/QUOTE"),
    ({"fees": {"taker": "1.5"}}, "fees.taker", "less than 1"),
    ({"stop_loss_timeout_in_seconds": 60}, "stop_loss_timeout_in_seconds", "without a stop loss"),
    (
        {"take_profit_steps": [{"amount_percentage": "100", "profit_percentage": "0"}]},
        "take_profit_steps.0.profit_percentage",
        "greater than 0",
    ),
    ({"strategy": "short", "take_profit": "150"}, "take_profit", "100%"),
    ({"unknown_field": 1}, "unknown_field", "Extra inputs"),
]


@pytest.mark.parametrize(
    ("overrides", "path", "words"), INVALID, ids=[case[1] + f"-{i}" for i, case in enumerate(INVALID)]
)
def test_an_impossible_setting_names_its_field_and_reason(overrides: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        parse_config(dca.DcaConfig, base(**overrides))
    assert info.value.field == path
    assert words in info.value.reason


def test_there_are_at_least_ten_distinct_invalid_fields() -> None:
    assert len({path for _, path, _ in INVALID}) >= 10


def test_the_base_config_itself_is_valid() -> None:
    cfg = parse_config(dca.DcaConfig, base())
    assert cfg.max_funds == 70  # 10 + 3 * 20
