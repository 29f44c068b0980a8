"""Through the real backtester, on the bundled real BTC week: a run that skips the
candles outside the bot's ``interest`` gives exactly the same result as one that steps
every candle, for DCA and smart-trade settings that lean on time and trailing levels
(cooldown, stop-loss timeout, trailing stop, trailing take profit, short)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import sealbot
from sealbot.backtest.data import read_frame
from sealbot.backtest.simulate import Result, run
from sealbot.bots import dca, smart
from sealbot.domain import Pair

PAIR = Pair("BTC", "USDT")
WEEK = read_frame(Path(sealbot.__file__).parent / "data" / "BTC-PERP-1m-20211231-20220107.csv.gz")
MARKET = {"pair": "BTC/USDT", "tick_size": "0.1", "step_size": "0.00001", "min_notional": "5"}


def comparable(result: Result) -> str:
    data = result.to_dict()
    data["metrics"].pop("candles_stepped")
    return json.dumps(data, sort_keys=True)


DCA_CASES: list[dict[str, Any]] = [
    {"cooldown": 1800, "take_profit": "0.4"},
    {"cooldown": 600, "take_profit": "0.3", "max_price": "47100"},  # after a cooldown, wait for the price
    {"stop_loss_percentage": "1", "stop_loss_timeout_in_seconds": 600, "take_profit": "1.5"},
    {"stop_loss_percentage": "1.5", "tsl_enabled": True, "trailing_enabled": True, "trailing_deviation": "0.2"},
    {"strategy": "short", "stop_loss_percentage": "2", "cooldown": 900, "take_profit": "0.5"},
]


@pytest.mark.parametrize("over", DCA_CASES)
def test_dca_skipping_matches_stepping_on_real_data(over: dict[str, Any]) -> None:
    config = dca.DcaConfig.model_validate({
        "bot_id": "sk", "markets": [MARKET], "base_order_volume": "100", "safety_order_volume": "100",
        "safety_order_step_percentage": "0.7", "max_safety_orders": 3, "active_safety_orders_count": 2, **over,
    })  # fmt: skip
    frames = {PAIR: WEEK.iloc[:4000].reset_index(drop=True)}
    skipped, stepped = run(dca, config, frames), run(dca, config, frames, skip=False)
    assert comparable(skipped) == comparable(stepped)
    assert skipped.metrics.candles_stepped < stepped.metrics.candles_stepped
    assert len(skipped.fills) >= 4


def test_smart_trade_skipping_matches_stepping_on_real_data() -> None:
    config = smart.SmartTradeConfig.model_validate({
        "bot_id": "sk", "market": MARKET, "volume": "1000", "entry_type": "trailing", "entry_price": "47000",
        "entry_trailing_deviation": "0.3", "stop_loss_percentage": "1", "tsl_enabled": True, "timeout_seconds": 86400,
        "take_profit_steps": [{"amount_percentage": "50", "profit_percentage": "1"},
                              {"amount_percentage": "50", "profit_percentage": "2"}],
        "trailing_enabled": True, "trailing_deviation": "0.3",
    })  # fmt: skip
    frames = {PAIR: WEEK}
    skipped, stepped = run(smart, config, frames), run(smart, config, frames, skip=False)
    assert comparable(skipped) == comparable(stepped)
    assert len(skipped.fills) >= 2
