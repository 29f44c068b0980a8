"""What the backtester refuses up front, naming the setting: a slippage that is no cost,
candle files that do not match the bot's pairs, unreadable bot, space and candle files,
outputs it could not write, and sweeps that could only fail. Each used to run (or crash
with a traceback) instead; the CLI prints these as one line and exits 2 (tests/foundation)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest

import sealbot.bots.dca as dca
from sealbot.backtest.data import DataError, read_frame
from sealbot.backtest.runner import read_space, run_backtest_file, run_sweep_file
from sealbot.backtest.simulate import run
from sealbot.domain import InvalidConfig, Pair

DATA = Path(__file__).resolve().parents[2] / "src" / "sealbot" / "data"
BTC = DATA / "BTC-PERP-1m-20211231-20220107.csv.gz"
BOT = {"kind": "dca", "bot_id": "file", "markets": [{"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001"}],
       "base_order_volume": "100", "safety_order_volume": "100", "max_safety_orders": 2,
       "safety_order_step_percentage": "0.5", "take_profit": "0.5", "base_order_type": "market"}
ETH_MARKET = {"pair": "ETH/USDT", "tick_size": "0.01", "step_size": "0.0001"}
FIRST_DAY = datetime(2022, 1, 1, tzinfo=UTC)


def bot_file(tmp_path: Path, **changes: object) -> Path:
    path = tmp_path / "bot.json"
    path.write_text(json.dumps({**BOT, **changes}))
    return path


@pytest.mark.parametrize("slippage", ["-1", "-0.0001", "-50", "0.11", "1", "NaN", "Infinity"])
def test_a_slippage_that_is_no_cost_or_absurd_is_refused(tmp_path: Path, slippage: str) -> None:
    # -1 once gave a week of DCA a pnl of 89.25 and -50 one of 4975: slippage paid the bot
    with pytest.raises(InvalidConfig, match=r"slippage: must be a fraction from 0 to 0.1"):
        run_backtest_file(bot_file(tmp_path), [str(BTC)], end=FIRST_DAY, slippage=D(slippage))


def test_the_simulator_itself_refuses_negative_slippage() -> None:
    config = dca.DcaConfig.model_validate({k: v for k, v in BOT.items() if k != "kind"})
    with pytest.raises(InvalidConfig, match="slippage"):
        run(dca, config, {Pair("BTC", "USDT"): read_frame(BTC).head(60)}, slippage=D("-0.01"))


@pytest.mark.parametrize("slippage", ["0", "0.001", "0.1"])
def test_a_slippage_from_0_to_10_percent_runs(tmp_path: Path, slippage: str) -> None:
    result = run_backtest_file(bot_file(tmp_path), [str(BTC)], end=FIRST_DAY, slippage=D(slippage))
    assert result.metrics.orders > 0


def test_candles_of_a_pair_the_bot_does_not_trade_are_refused(tmp_path: Path) -> None:
    # ETH/USDT=<file> for a BTC/USDT bot ran to 0 orders and exit 0, without a word
    with pytest.raises(InvalidConfig, match="data: ETH/USDT: the bot does not trade this pair"):
        run_backtest_file(bot_file(tmp_path), [f"ETH/USDT={BTC}"])


def test_a_traded_pair_without_candles_is_refused(tmp_path: Path) -> None:
    two_pairs = bot_file(tmp_path, markets=[*BOT["markets"], ETH_MARKET])  # type: ignore[misc]
    with pytest.raises(InvalidConfig, match="data: ETH/USDT: the bot trades this pair but no candle file"):
        run_backtest_file(two_pairs, [f"BTC/USDT={BTC}"])


def test_pairs_of_different_quote_currencies_are_refused(tmp_path: Path) -> None:
    # BTC/USDT and ETH/BTC once ran, and the metrics added USDT and BTC: a pnl of 0.0017 "quote"
    eth_btc = {"pair": "ETH/BTC", "tick_size": "0.000001", "step_size": "0.001"}
    bot = bot_file(tmp_path, markets=[BOT["markets"][0], eth_btc])  # type: ignore[index]
    with pytest.raises(InvalidConfig, match=r"^markets: the pairs quote in BTC and USDT"):
        run_backtest_file(bot, [f"BTC/USDT={BTC}", f"ETH/BTC={DATA / 'ETH_BTC-5m.feather'}"])


def test_a_badly_named_pair_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match=r"data: .*BTCUSDT.* is not of the form BASE/QUOTE"):
        run_backtest_file(bot_file(tmp_path), [f"BTCUSDT={BTC}"])


def test_a_missing_candle_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read it"):
        run_backtest_file(bot_file(tmp_path), [f"BTC/USDT={tmp_path / 'none.csv'}"])


@pytest.mark.parametrize(("name", "text", "form"), [("bot.json", "{not json", "JSON"),
                                                     ("bot.toml", "kind = = 1", "TOML")])
def test_a_bot_file_that_does_not_parse_names_the_file(tmp_path: Path, name: str, text: str, form: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InvalidConfig, match=f"{name}: not valid {form}"):
        run_backtest_file(path, [str(BTC)])


def test_an_unknown_timeframe_is_refused_before_reading_any_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="timeframe: '7x' is not like 1m"):
        run_backtest_file(tmp_path / "not-even-there.json", [str(BTC)], timeframe="7x")


def test_a_report_into_a_missing_folder_is_refused_before_the_run(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match=r"report: .*missing is not an existing directory"):
        run_backtest_file(bot_file(tmp_path), [str(BTC)], report_path=tmp_path / "missing" / "r.html")
    with pytest.raises(InvalidConfig, match=r"json: .*missing is not an existing directory"):
        run_backtest_file(bot_file(tmp_path), [str(BTC)], json_path=tmp_path / "missing" / "r.json")


def test_a_report_that_cannot_be_written_names_the_file(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()  # a folder where the report should go
    with pytest.raises(InvalidConfig, match="taken: cannot write it"):
        run_backtest_file(bot_file(tmp_path), [str(BTC)], end=FIRST_DAY, json_path=target)


@pytest.mark.parametrize(("text", "match"), [
    ("{not json", "space: space.json is not valid JSON"),
    ("[1, 2]", "space: space.json must be a JSON object"),
    ("{}", "space: space.json must be a JSON object"),
    ('{"take_profit": []}', "space.take_profit: give a non-empty list"),
    ('{"take_profit": "1"}', "space.take_profit: give a non-empty list"),
    ('{"take_profit": {"low": "1", "high": "2"}}', "space.take_profit: a range needs low, high and step"),
    ('{"take_profit": {"low": "x", "high": "2", "step": "1"}}', "space.take_profit: low, high and step must be"),
    ('{"take_profit": {"low": "1", "high": "2", "step": "0"}}', "space.take_profit: needs finite numbers"),
    ('{"take_profit": {"low": "3", "high": "2", "step": "1"}}', "space.take_profit: needs finite numbers"),
])
def test_a_space_file_that_cannot_be_a_space_is_refused(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "space.json"
    path.write_text(text)
    with pytest.raises(InvalidConfig, match=match):
        read_space(path)


def test_a_sweep_over_a_setting_the_bot_does_not_have_is_refused_up_front(tmp_path: Path) -> None:
    # it used to run every variant and rank a table of KeyErrors, exit 0
    with pytest.raises(InvalidConfig, match=r"space.take_profitx: the DcaConfig config has no setting 'take_profitx'"):
        run_sweep_file(bot_file(tmp_path), [str(BTC)], {"take_profit": ["1"], "take_profitx": ["0.5", "1"]},
                       workers=1)
    with pytest.raises(InvalidConfig, match=r"space.fees.makr: the .* config has no setting 'makr'"):
        run_sweep_file(bot_file(tmp_path), [str(BTC)], {"fees.makr": ["0.001"]}, workers=1)


def test_a_nested_setting_may_be_swept(tmp_path: Path) -> None:
    result = run_sweep_file(bot_file(tmp_path), [str(BTC)], {"fees.maker": ["0.001", "0.002"]}, workers=1,
                            end=FIRST_DAY)
    assert [row.error for row in result.rows] == [None, None]


@pytest.mark.parametrize("samples", [0, -3])
def test_a_sweep_of_no_samples_is_refused(tmp_path: Path, samples: int) -> None:
    # --samples -3 printed an empty table and exit 0
    with pytest.raises(InvalidConfig, match=f"samples: must be 1 or more, not {samples}"):
        run_sweep_file(bot_file(tmp_path), [str(BTC)], {"take_profit": ["1"]}, samples=samples, workers=1)


def test_a_sweep_ranked_by_no_figure_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="objective: 'drawdown' is not one of"):
        run_sweep_file(bot_file(tmp_path), [str(BTC)], {"take_profit": ["1"]}, objective="drawdown", workers=1)
