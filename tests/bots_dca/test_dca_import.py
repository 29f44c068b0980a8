"""Importing a 3Commas DCA-bot export: fields map by name, everything else is explained."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from sealbot.bots.dca import StartCondition
from sealbot.bots.threecommas_dca import import_dca
from sealbot.domain import InvalidConfig

EXPORT: dict[str, Any] = {
    "id": 9876543,
    "account_id": 1,
    "is_enabled": True,
    "name": "BTC long",
    "type": "Bot::SingleBot",
    "pairs": ["USDT_BTC"],
    "strategy": "long",
    "base_order_volume": "10.0",
    "base_order_volume_type": "quote_currency",
    "safety_order_volume": "20.0",
    "safety_order_volume_type": "quote_currency",
    "safety_order_step_percentage": "1.0",
    "max_safety_orders": 5,
    "active_safety_orders_count": 2,
    "martingale_volume_coefficient": "2.0",
    "martingale_step_coefficient": "1.5",
    "take_profit": "1.5",
    "take_profit_type": "total",
    "take_profit_steps": [],
    "trailing_enabled": True,
    "trailing_deviation": "0.2",
    "stop_loss_percentage": "10.0",
    "stop_loss_type": "stop_loss_and_disable_bot",
    "stop_loss_timeout_enabled": True,
    "stop_loss_timeout_in_seconds": 300,
    "tsl_enabled": False,
    "sl_to_breakeven_enabled": False,
    "cooldown": "60",
    "min_price": None,
    "max_price": "0.0",
    "max_active_deals": 1,
    "start_order_type": "limit",
    "profit_currency": "quote_currency",
    "strategy_list": [{"strategy": "rsi", "options": {"time": "15m", "points": "28"}}],
    "close_strategy_list": [],
    "btc_price_limit": "0.0",
    "leverage_type": "not_specified",
    "finished_deals_count": "12",
    "reinvesting_percentage": None,
}


def test_a_full_export_maps_field_for_field() -> None:
    cfg, notes = import_dca(EXPORT)
    assert cfg.bot_id == "d9876543"
    assert [m.pair for m in cfg.markets] == ["BTC/USDT"]
    assert (cfg.base_order_volume, cfg.safety_order_volume, cfg.max_safety_orders) == (D(10), D(20), 5)
    assert cfg.martingale_step_coefficient == D("1.5") and cfg.active_safety_orders_count == 2
    assert cfg.trailing_enabled and cfg.trailing_deviation == D("0.2")
    assert cfg.stop_loss_type.value == "stop_loss_and_disable_bot" and cfg.stop_loss_timeout_in_seconds == 300
    assert cfg.base_order_type.value == "limit" and cfg.cooldown == 60 and cfg.max_price is None
    assert cfg.start_condition is StartCondition.RSI
    assert cfg.rsi is not None and (cfg.rsi.timeframe, cfg.rsi.value) == ("15m", D(28))
    explained = {note.split(":", 1)[0] for note in notes}
    # every field that was not used is explained, one line each
    assert {"account_id", "is_enabled", "close_strategy_list", "btc_price_limit", "leverage_type",
            "finished_deals_count", "reinvesting_percentage", "markets"} <= explained  # fmt: skip
    assert "take_profit" not in explained and "pairs" not in explained


def test_ladder_and_signal_start_and_multi_pair() -> None:
    data = {**EXPORT, "pairs": ["USDT_BTC", "USDT_ETH"], "trailing_enabled": False,
            "strategy_list": [{"strategy": "manual"}],
            "take_profit_steps": [{"amount_percentage": 50, "profit_percentage": 1},
                                  {"amount_percentage": 50, "profit_percentage": 2}]}  # fmt: skip
    markets = [{"pair": "BTC/USDT", "tick_size": "0.01"}, {"pair": "ETH/USDT", "tick_size": "0.01"}]
    cfg, _ = import_dca(data, bot_id="mine", markets=markets)
    assert cfg.multi_pair and cfg.start_condition is StartCondition.SIGNAL
    assert [s.profit_percentage for s in cfg.take_profit_steps] == [D(1), D(2)]


def test_unsupported_start_conditions_fall_back_to_signals_and_say_so() -> None:
    _, notes = import_dca({**EXPORT, "strategy_list": [{"strategy": "qfl"}]})
    assert any(n.startswith("strategy_list: qfl") for n in notes)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"pairs": []}, "pairs"),
        ({"pairs": ["BTCUSDT"]}, "pairs"),
        ({"base_order_volume_type": "percent"}, "base_order_volume_type"),
        ({"active_safety_orders_count": 9}, "active_safety_orders_count"),
        ({"take_profit": "abc"}, "take_profit"),
    ],
)
def test_an_export_that_cannot_work_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        import_dca({**EXPORT, **change})
    assert info.value.field == field
