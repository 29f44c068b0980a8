"""`sealbot backtest run` and `sealbot data download` through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

import sealbot
from sealbot.simex import SimexServer

DATA = Path(sealbot.__file__).parent / "data" / "BTC-PERP-1m-20211231-20220107.csv.gz"
DCA = {
    "kind": "dca", "bot_id": "bt1",
    "markets": [{"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"}],
    "base_order_volume": "100", "safety_order_volume": "100", "max_safety_orders": 3,
    "safety_order_step_percentage": "0.5", "take_profit": "0.5", "base_order_type": "market",
}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOT_") or k.startswith("SEALBOT_TEST_")}
    return subprocess.run([sys.executable, "-m", "sealbot.cli", *args], capture_output=True, text=True, env=env,
                          timeout=180)


def test_backtest_run_writes_a_report_and_a_json_result(tmp_path: Path) -> None:
    bot = tmp_path / "dca.json"
    bot.write_text(json.dumps(DCA))
    result = cli("backtest", "run", str(bot), "--data", f"BTC/USDT={DATA}", "--end", "2022-01-03",
                 "--report", str(tmp_path / "r.html"), "--json", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr
    outcome = json.loads((tmp_path / "r.json").read_text())
    assert outcome["metrics"]["deals_closed"] > 0
    assert "deals_closed" in result.stdout
    assert (tmp_path / "r.html").stat().st_size > 10_000


def test_backtest_of_a_bad_config_names_the_field(tmp_path: Path) -> None:
    bot = tmp_path / "dca.json"
    bot.write_text(json.dumps({**DCA, "take_profit": "-1"}))
    result = cli("backtest", "run", str(bot), "--data", str(DATA))
    assert result.returncode == 2
    assert "take_profit" in result.stderr and "Traceback" not in result.stderr


def test_data_download_from_simex_resumes_without_duplicates(tmp_path: Path) -> None:
    out = tmp_path / "btc.csv"
    with SimexServer(speed=0) as sx:
        start = pd.Timestamp(sx.admin.clock()["now_ms"], unit="ms", tz="UTC")
        end = start + pd.Timedelta(hours=3)
        sx.admin.set_clock(advance_seconds=3 * 3600 + 60)  # the replayed market moves on three hours
        first = cli("data", "download", "binance", "BTC/USDT", "--output", str(out), "--start",
                    (start).isoformat(), "--end", (end - pd.Timedelta(hours=1)).isoformat(), "--api-base", sx.base_url)
        assert first.returncode == 0, first.stderr
        rows_first = len(pd.read_csv(out))
        again = cli("data", "download", "binance", "BTC/USDT", "--output", str(out), "--start", start.isoformat(),
                    "--end", end.isoformat(), "--api-base", sx.base_url)
        assert again.returncode == 0, again.stderr
    frame = pd.read_csv(out)
    assert rows_first >= 110 and len(frame) > rows_first
    assert frame.iloc[:, 0].is_unique and frame.iloc[:, 0].is_monotonic_increasing


def test_backtest_run_says_why_a_bot_stopped(tmp_path: Path) -> None:
    # 5 USDT at 46,377 rounds down to 0.00010 BTC, 4.64 USDT: below the 5 minimum, so the
    # bot stops at once. The table of zeros used to be all the command printed.
    bot = tmp_path / "dca.json"
    bot.write_text(json.dumps({**DCA, "base_order_volume": "5", "safety_order_volume": "5"}))
    result = cli("backtest", "run", str(bot), "--data", f"BTC/USDT={DATA}", "--end", "2022-01-01")
    assert result.returncode == 0, result.stderr
    assert "the bot stopped: base order is below the exchange minimum after rounding" in result.stdout
    assert "warning base_order_too_small:" in result.stdout


def test_backtest_run_models_the_account_and_the_fee_currency(tmp_path: Path) -> None:
    # A signal bot sizing in percent of its balance could not be backtested from the command
    # line (no balance is reported without --balance), nor fees taken in quote (KuCoin).
    bot = tmp_path / "signal.json"
    bot.write_text(json.dumps({"kind": "signal", "bot_id": "sp", "amount": "50", "amount_type": "percent_of_balance",
                               "markets": DCA["markets"]}))
    signals = tmp_path / "signals.csv"
    signals.write_text("at,action,trigger_price\n2022-01-01T06:00:00Z,enter_long,47187\n")
    args = ("backtest", "run", str(bot), "--data", f"BTC/USDT={DATA}", "--end", "2022-01-02", "--signals",
            str(signals), "--json")
    result = cli(*args, str(tmp_path / "r.json"), "--balance", "USDT=1000", "--fee-currency", "quote")
    assert result.returncode == 0, result.stderr
    outcome = json.loads((tmp_path / "r.json").read_text())
    (fill,) = outcome["fills"]
    assert fill["fee_currency"] == "USDT" and fill["amount"] == "0.01059"  # 500 USDT / 47187, to the step
    assert outcome["final_balances"]["BTC"] == "0.01059"
    unmodelled = cli(*args, str(tmp_path / "u.json"))
    assert json.loads((tmp_path / "u.json").read_text())["fills"] == []
    assert "no USDT balance reported" in unmodelled.stdout


def test_backtest_run_refuses_a_bad_balance_or_fee_currency(tmp_path: Path) -> None:
    bot = tmp_path / "dca.json"
    bot.write_text(json.dumps(DCA))
    for option, value in (("--balance", "USDT"), ("--balance", "USDT=-5"), ("--fee-currency", "bnb")):
        result = cli("backtest", "run", str(bot), "--data", str(DATA), option, value)
        assert result.returncode == 2 and option in result.stderr and "Traceback" not in result.stderr
