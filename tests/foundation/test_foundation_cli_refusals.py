"""Bad input on the command line is one line on stderr naming the problem, exit 2, no
traceback (docs/cli.md): options out of range, files that do not parse, paths that do
not exist, a simex that cannot be reached, a panic nobody confirmed. Each of these
once ended in a traceback (exit 1), a silent exit 0, or exit 3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sealbot

DATA = Path(sealbot.__file__).parent / "data" / "BTC-PERP-1m-20211231-20220107.csv.gz"
DCA = {"kind": "dca", "markets": [{"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001",
                                   "min_notional": "5"}],
       "base_order_volume": "100", "safety_order_volume": "100", "max_safety_orders": 3,
       "safety_order_step_percentage": "0.5", "take_profit": "0.5", "base_order_type": "market"}


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh, private instance (data and config under ``tmp_path``), no terminal on stdin."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOT_") or k.startswith("SEALBOT_TEST_")}
    (tmp_path / "none.toml").write_text("")
    env = {**base, "SEALBOT_DATA_DIR": str(tmp_path / "data"), "SEALBOT_CONFIG_DIR": str(tmp_path / "config"),
           "SEALBOT_CONFIG": str(tmp_path / "none.toml")}
    return subprocess.run([sys.executable, "-m", "sealbot.cli", *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=120, cwd=tmp_path)


def assert_refused(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "dca.json").write_text(json.dumps(DCA))
    (tmp_path / "huge.json").write_text(json.dumps(DCA).replace('"base_order_volume": "100"',
                                                                '"base_order_volume": 1e400'))
    (tmp_path / "notjson.json").write_text("{not json")
    (tmp_path / "space.json").write_text(json.dumps({"take_profit": ["0.5", "1"]}))
    (tmp_path / "typo-space.json").write_text(json.dumps({"take_profitx": ["0.5", "1"]}))
    return tmp_path


@pytest.mark.parametrize(("args", "fragments"), [
    (["serve", "--port", "99999"], ["--port", "65535"]),
    (["serve", "--port", "0"], ["--port"]),
    (["simex", "--port", "-1"], ["--port"]),
    (["simex", "--speed", "-1"], ["--speed"]),
    (["demo", "--speed", "-5"], ["--speed", "more than 0"]),
    (["demo", "--speed", "0"], ["--speed", "more than 0"]),
    (["demo", "--port", "70000"], ["--port"]),
    (["worker", "--metrics-port", "70000"], ["--metrics-port"]),
    (["db", "upgrade", "9999"], ["revision", "'9999' is not a migration"]),
    (["panic", "--reason", "x"], ["--yes", "confirmation", "nothing was changed"]),
    (["simex", "key", "create", "--url", "http://127.0.0.1:1", "--admin-token", "x"],
     ["cannot reach http://127.0.0.1:1"]),
    (["frobnicate"], ["No such command 'frobnicate'"]),
])
def test_a_bad_option_is_one_line_and_exit_2(tmp_path: Path, args: list[str], fragments: list[str]) -> None:
    assert_refused(run(tmp_path, *args), *fragments)


@pytest.mark.parametrize(("args", "fragments"), [
    (["run", "notjson.json"], ["notjson.json: not valid JSON"]),
    (["run", "huge.json"], ["base_order_volume"]),
    (["run", "dca.json", "--timeframe", "7x"], ["timeframe: '7x'"]),
    (["run", "dca.json", "--slippage", "NaN"], ["slippage: must be a fraction from 0 to 0.1"]),
    (["run", "dca.json", "--slippage=-1"], ["slippage: must be a fraction from 0 to 0.1", "not -1"]),
    (["run", "dca.json", "--slippage", "abc"], ["--slippage", "'abc' is not a number"]),
    (["run", "dca.json", "--report", "/nonexistent/dir/r.html"], ["report: /nonexistent/dir"]),
    (["run", "dca.json", "--json", "/nonexistent/dir/r.json"], ["json: /nonexistent/dir"]),
    (["sweep", "dca.json", "--space", "notjson.json"], ["space: notjson.json is not valid JSON"]),
    (["sweep", "dca.json", "--space", "typo-space.json"], ["space.take_profitx", "no setting 'take_profitx'"]),
    (["sweep", "dca.json", "--space", "space.json", "--samples", "-3"], ["--samples"]),
    (["sweep", "dca.json", "--space", "space.json", "--samples", "0"], ["--samples"]),
    (["sweep", "dca.json", "--space", "space.json", "--objective", "drawdown"], ["objective: 'drawdown'"]),
])
def test_a_bad_backtest_is_one_line_and_exit_2(files: Path, args: list[str], fragments: list[str]) -> None:
    command, bot, *rest = args
    assert_refused(run(files, "backtest", command, bot, "--data", f"BTC/USDT={DATA}", *rest), *fragments)


def test_candles_for_another_pair_are_refused_naming_it(files: Path) -> None:
    # it ran to 0 orders and exit 0 without a word
    assert_refused(run(files, "backtest", "run", "dca.json", "--data", f"ETH/USDT={DATA}"),
                   "ETH/USDT", "does not trade this pair")


def test_a_command_group_without_a_command_still_shows_its_help(tmp_path: Path) -> None:
    result = run(tmp_path, "backtest")
    assert result.returncode == 2
    assert "Usage" in result.stderr and "sweep" in result.stderr and "error:" not in result.stderr
