"""`sealbot bots import`: a 3Commas export becomes a sealbot config, every unmapped field explained."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

EXPORT = {  # the shape of a bot returned by 3Commas' GET /ver1/bots/{id}
    "id": 1234567, "name": "BTC long", "type": "Bot::SingleBot", "pairs": ["USDT_BTC"], "strategy": "long",
    "base_order_volume": "10.0", "base_order_volume_type": "quote_currency", "safety_order_volume": "20.0",
    "safety_order_volume_type": "quote_currency", "safety_order_step_percentage": "1.0", "max_safety_orders": 5,
    "active_safety_orders_count": 2, "martingale_volume_coefficient": "2.0", "martingale_step_coefficient": "1.5",
    "take_profit": "1.5", "take_profit_type": "total", "take_profit_steps": [], "trailing_enabled": False,
    "trailing_deviation": "0.2", "stop_loss_percentage": "0", "cooldown": "0", "max_active_deals": 1,
    "start_order_type": "market", "profit_currency": "quote_currency", "strategy_list": [{"strategy": "nonstop"}],
    "btc_price_limit": "0.0", "leverage_type": "not_specified",
}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOT_") or k.startswith("SEALBOT_TEST_")}
    return subprocess.run([sys.executable, "-m", "sealbot.cli", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_a_dca_export_is_translated_and_explained(tmp_path: Path) -> None:
    export = tmp_path / "bot.json"
    export.write_text(json.dumps(EXPORT))
    result = cli("bots", "import", str(export), "--output", str(tmp_path / "sealbot.json"))
    assert result.returncode == 0, result.stderr
    written = json.loads((tmp_path / "sealbot.json").read_text())
    assert written["kind"] == "dca"
    assert Decimal(written["config"]["safety_order_volume"]) == 20
    assert written["config"]["max_safety_orders"] == 5
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert any("btc_price_limit" in n for n in notes)  # a field with no sealbot meaning is explained


def test_a_broken_export_is_one_line_and_exit_2(tmp_path: Path) -> None:
    export = tmp_path / "bot.json"
    export.write_text(json.dumps({**EXPORT, "max_safety_orders": -3}))
    result = cli("bots", "import", str(export))
    assert result.returncode == 2
    assert "max_safety_orders" in result.stderr and "Traceback" not in result.stderr
