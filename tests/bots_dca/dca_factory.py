"""Config builders for the DCA tests: a fine-grained market so hand arithmetic holds."""

from __future__ import annotations

from typing import Any

from sealbot.bots import dca

FINE_MARKET = {"pair": "BTC/USDT", "tick_size": "0.00000001", "step_size": "0.00000001"}
CENT_MARKET = {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.0001", "min_notional": "5"}


def config(**overrides: Any) -> dca.DcaConfig:
    data: dict[str, Any] = {
        "bot_id": "b1",
        "markets": [FINE_MARKET],
        "base_order_volume": "10",
        "safety_order_volume": "20",
        "safety_order_step_percentage": "1",
        "martingale_volume_coefficient": "2",
        "martingale_step_coefficient": "1.5",
        "max_safety_orders": 5,
        "active_safety_orders_count": 1,
        "take_profit": "1",
        "fees": {"maker": "0", "taker": "0"},
    }
    data.update(overrides)
    return dca.DcaConfig.model_validate(data)
