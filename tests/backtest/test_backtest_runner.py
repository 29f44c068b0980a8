"""File-based entry points (what ``sealbot backtest`` calls) and the resumable download."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

import sealbot.bots.dca as dca
from sealbot.backtest.data import DataError, read_frame
from sealbot.backtest.download import download_candles, last_candle_time
from sealbot.backtest.runner import read_space, run_backtest_file, run_sweep_file
from sealbot.backtest.simulate import run
from sealbot.domain import Candle, InvalidConfig, Pair
from sealbot.domain.money import floor_to_step

DATA = Path(__file__).resolve().parents[2] / "src" / "sealbot" / "data"
BTC = DATA / "BTC-PERP-1m-20211231-20220107.csv.gz"
BOT = {"kind": "dca", "bot_id": "file", "markets": [{"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001"}],
       "base_order_volume": "100", "safety_order_volume": "100", "max_safety_orders": 2,
       "active_safety_orders_count": 1, "take_profit": "0.5"}
PAIR = Pair("BTC", "USDT")


def bot_file(tmp_path: Path, **changes: object) -> Path:
    path = tmp_path / "bot.json"
    path.write_text(json.dumps({**BOT, **changes}))
    return path


def test_backtest_file_run_equals_a_direct_run_and_writes_reports(tmp_path: Path) -> None:
    result = run_backtest_file(bot_file(tmp_path), [str(BTC)], report_path=tmp_path / "out.html",
                               json_path=tmp_path / "out.json")
    data = {k: v for k, v in BOT.items() if k != "kind"}
    direct = run(dca, dca.DcaConfig.model_validate(data), {PAIR: read_frame(BTC)})
    assert json.dumps(result.to_dict()) == json.dumps(direct.to_dict())
    assert (tmp_path / "out.html").stat().st_size > 1_000_000
    assert json.loads((tmp_path / "out.json").read_text())["metrics"]["deals_closed"] == direct.metrics.deals_closed


def test_backtest_file_run_cuts_and_resamples(tmp_path: Path) -> None:
    toml = tmp_path / "bot.toml"
    toml.write_text('kind = "dca"\nbot_id = "t"\nbase_order_volume = "100"\ntake_profit = "0.5"\n'
                    'active_safety_orders_count = 0\n'
                    '[[markets]]\npair = "BTC/USDT"\ntick_size = "0.01"\nstep_size = "0.00001"\n')
    start, end = datetime(2022, 1, 2, tzinfo=UTC), datetime(2022, 1, 3, tzinfo=UTC)
    result = run_backtest_file(toml, [f"BTC/USDT={BTC}"], timeframe="5m", start=start, end=end)
    assert (result.timeframe, result.start, result.end, result.metrics.candles) == ("5m", start, end, 288)


def test_backtest_file_errors_name_the_problem(tmp_path: Path) -> None:
    no_kind = tmp_path / "nokind.json"
    no_kind.write_text(json.dumps({"bot_id": "x"}))
    with pytest.raises(InvalidConfig, match="kind"):
        run_backtest_file(no_kind, [str(BTC)])
    with pytest.raises(InvalidConfig, match="take_profit"):
        run_backtest_file(bot_file(tmp_path, take_profit="-1"), [str(BTC)])
    with pytest.raises(DataError, match="cannot make finer 30s"):
        run_backtest_file(bot_file(tmp_path), [str(BTC)], timeframe="30s")
    with pytest.raises(InvalidConfig, match="PAIR=path"):
        run_backtest_file(bot_file(tmp_path), [str(BTC), str(BTC)])


def test_backtest_sweep_file(tmp_path: Path) -> None:
    space_path = tmp_path / "space.json"
    space_path.write_text(json.dumps({"take_profit": ["0.3", "0.9"], "max_safety_orders": [1, 2]}))
    result = run_sweep_file(bot_file(tmp_path), [str(BTC)], read_space(space_path), workers=1,
                            end=datetime(2022, 1, 2, tzinfo=UTC))
    assert len(result.rows) == 4 and result.rows[0].score is not None
    space_path.write_text(json.dumps({"take_profit": {"low": "0.2", "high": "1", "step": "0.1"}}))
    with pytest.raises(InvalidConfig, match="samples"):
        run_sweep_file(bot_file(tmp_path), [str(BTC)], read_space(space_path))
    sampled = run_sweep_file(bot_file(tmp_path), [str(BTC)], read_space(space_path), samples=3, seed=1, workers=1,
                             end=datetime(2022, 1, 1, 6, tzinfo=UTC))
    assert len(sampled.rows) == 3


class ReplayExchange:
    """Serves the real BTC week like an exchange's OHLCV endpoint: pages of at most
    ``page`` candles from ``since``; fails once after ``fail_after`` pages."""

    def __init__(self, fail_after: int | None = None) -> None:
        frame = read_frame(BTC)
        self.rows = [Candle(PAIR, "1m", t.to_pydatetime(), *(D(repr(float(x))) for x in (o, h, lo, c, v)))
                     for t, o, h, lo, c, v in frame.itertuples(index=False)]
        self.calls, self.fail_after = 0, fail_after

    async def fetch_candles(self, pair: Pair, timeframe: str, since: datetime | None = None,
                            limit: int | None = None) -> list[Candle]:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            self.fail_after = None
            raise ConnectionError("network went away")
        chosen = [c for c in self.rows if since is None or c.open_time >= since]
        return chosen[: min(limit or 500, 500)]


async def test_backtest_download_resumes_after_a_failure(tmp_path: Path) -> None:
    path = tmp_path / "btc.csv.gz"
    start, end = datetime(2021, 12, 31, 23, 1, tzinfo=UTC), datetime(2022, 1, 3, tzinfo=UTC)
    flaky = ReplayExchange(fail_after=3)
    seen: list[tuple[int, int]] = []
    with pytest.raises(ConnectionError):
        await download_candles(flaky, PAIR, "1m", start, end, path, page=500,  # type: ignore[arg-type]
                               progress=lambda d, t: seen.append((d, t)))
    assert last_candle_time(path) == flaky.rows[1499].open_time  # three pages of 500 made it to the file
    added = await download_candles(flaky, PAIR, "1m", start, end, path, page=500,  # type: ignore[arg-type]
                                   progress=lambda d, t: seen.append((d, t)))
    got = read_frame(path)
    source = read_frame(BTC)
    expected = source[source["open_time"] < end].reset_index(drop=True)
    assert added == len(expected) - 1500
    assert got["open_time"].tolist() == expected["open_time"].tolist()
    columns = ["open", "high", "low", "close"]
    assert (got[columns].to_numpy() == expected[columns].to_numpy()).all()
    assert seen[-1] == (len(expected), len(expected)) and [d for d, _ in seen] == sorted(d for d, _ in seen)


async def test_backtest_download_up_to_now_leaves_out_the_forming_candle(tmp_path: Path) -> None:
    """An exchange answers with the candle still forming; written down, it would stay
    half-formed for good (the next download resumes after it)."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    exchange = ReplayExchange()
    exchange.rows = [Candle(PAIR, "1h", hour - timedelta(hours=2 - i), D(100), D(101), D(99), D(100), D(1))
                     for i in range(3)]  # the last one opened this hour: forming
    path = tmp_path / "btc-1h.csv"
    added = await download_candles(exchange, PAIR, "1h", hour - timedelta(hours=2),  # type: ignore[arg-type]
                                   hour + timedelta(hours=1), path)
    assert added == 2 and last_candle_time(path) == hour - timedelta(hours=1)


def test_backtest_recorded_signals_start_deals_at_their_time(tmp_path: Path) -> None:
    signals = tmp_path / "signals.csv"
    signals.write_text("at,action,pair\n2022-01-01T00:00:30Z,start_deal,BTC/USDT\n"
                       "2022-01-02 12:00,start_deal,BTC/USDT\n")
    bot = bot_file(tmp_path, start_condition="signal", take_profit="0.3")
    result = run_backtest_file(bot, [str(BTC)], signals_path=signals)
    # Each signal is delivered with the first candle close at or after it, where the deal opens.
    assert [d.opened_at for d in result.deals] == [datetime(2022, 1, 1, 0, 1, tzinfo=UTC),
                                                   datetime(2022, 1, 2, 12, 0, tzinfo=UTC)]
    assert run_backtest_file(bot, [str(BTC)]).deals == []
    bad = tmp_path / "bad.csv"
    bad.write_text("at,action\n2022-01-01,jump\n")
    with pytest.raises(DataError, match="row 0"):
        run_backtest_file(bot, [str(BTC)], signals_path=bad)


def test_backtest_signal_bot_trades_recorded_tradingview_alerts(tmp_path: Path) -> None:
    bot = tmp_path / "signal.json"
    bot.write_text(json.dumps({"kind": "signal", "bot_id": "tv", "amount": "500", "markets": [
        {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"}]}))
    source = read_frame(BTC).set_index("open_time")
    close = D(repr(float(source.loc["2022-01-01 05:59", "close"])))  # TradingView's {{close}} at 06:00
    signals = tmp_path / "alerts.csv"
    signals.write_text(f"at,action,pair,trigger_price\n2022-01-01T06:00:00Z,enter_long,BTC/USDT,{close}\n"
                       "2022-01-02T06:00:00Z,exit_long,BTC/USDT,\n")
    result = run_backtest_file(bot, [str(BTC)], signals_path=signals)
    buys = [f for f in result.fills if f.side.value == "buy"]
    sells = [f for f in result.fills if f.side.value == "sell"]
    # The 06:00 alert reaches the bot with the close of the 05:59 candle (at 06:00); its market
    # entry fills at the next open, the 06:00 candle's; the exit the same way a day later.
    assert [f.at for f in buys] == [datetime(2022, 1, 1, 6, 0, tzinfo=UTC)]
    assert buys[0].price == D(repr(float(source.loc["2022-01-01 06:00", "open"])))
    assert [f.at for f in sells] == [datetime(2022, 1, 2, 6, 0, tzinfo=UTC)]
    assert buys[0].amount == floor_to_step(D(500) / close, D("0.00001"))  # 500 USDT at the alert's price
    assert sells[0].amount <= buys[0].amount


def test_backtest_signal_bot_reverses_a_long_into_a_short_on_a_strategy_alert(tmp_path: Path) -> None:
    bot = tmp_path / "signal.json"
    bot.write_text(json.dumps({"kind": "signal", "bot_id": "tv", "amount": "500", "short_enabled": True,
                               "reverse_on_opposite_entry": True, "markets": [
                                   {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001"}]}))
    signals = tmp_path / "alerts.csv"
    signals.write_text("at,action,pair,trigger_price\n2022-01-01T06:00:00Z,enter_long,BTC/USDT,47000\n"
                       "2022-01-02T06:00:00Z,enter_short,BTC/USDT,47500\n"
                       "2022-01-03T06:00:00Z,exit_short,BTC/USDT,\n")
    result = run_backtest_file(bot, [str(BTC)], signals_path=signals)
    long_in, long_out, short_in, short_out = result.fills
    assert [(f.client_id.deal, f.client_id.step, f.side.value) for f in result.fills] == [
        (1, "e", "buy"), (1, "x1", "sell"), (2, "e", "sell"), (2, "x1", "buy")]
    # the short opens once the long's exit has filled, sized from its own alert
    assert long_in.fee_currency == "BTC"  # the close sells what the long holds, net of the fee in base
    assert long_out.amount == floor_to_step(long_in.amount - long_in.fee, D("0.00001"))
    assert long_out.at <= short_in.at
    assert short_in.amount == floor_to_step(D(500) / D(47500), D("0.00001")) == short_out.amount
    assert short_out.at == datetime(2022, 1, 3, 6, 0, tzinfo=UTC)
    bot.write_text(json.dumps({**json.loads(bot.read_text()), "reverse_on_opposite_entry": False}))
    without = run_backtest_file(bot, [str(BTC)], signals_path=signals)
    assert [f.side.value for f in without.fills] == ["buy"]
    assert any(a.code == "signal.position_open" for a in without.alerts)


def test_backtest_signal_bot_sizes_a_percent_of_the_modelled_balance(tmp_path: Path) -> None:
    bot = tmp_path / "signal.json"
    bot.write_text(json.dumps({"kind": "signal", "bot_id": "tv", "amount": "50", "amount_type": "percent_of_balance",
                               "markets": [{"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001"}]}))
    signals = tmp_path / "alerts.csv"
    signals.write_text("at,action,pair,trigger_price\n2022-01-01T06:00:00Z,enter_long,BTC/USDT,47000\n")
    result = run_backtest_file(bot, [str(BTC)], signals_path=signals, balances={"USDT": D("1000")})
    # 50 % of the 1000 USDT the bot was told it had, at the alert's price.
    assert [f.amount for f in result.fills] == [floor_to_step(D(500) / D(47000), D("0.00001"))]
    assert result.final_balances is not None and result.final_balances["USDT"] == D(1000) - result.fills[0].notional
    without = run_backtest_file(bot, [str(BTC)], signals_path=signals)
    assert without.fills == [] and any(a.code == "signal.not_sized" for a in without.alerts)


def test_a_smart_trade_file_runs_on_its_one_market_with_that_markets_rules(tmp_path: Path) -> None:
    """A smart trade names its pair in ``market`` (not ``markets``): the file needs no
    ``PAIR=`` and the fills keep to the market's tick and step, as live."""
    path = tmp_path / "smart.json"
    path.write_text(json.dumps({
        "kind": "smart", "market": {"pair": "BTC/USDT", "tick_size": "0.1", "step_size": "0.001"},
        "volume": "100", "take_profit_steps": [{"amount_percentage": "100", "profit_percentage": "0.5"}]}))
    result = run_backtest_file(path, [str(BTC)])
    assert [f.side.value for f in result.fills] == ["buy", "sell"]
    for fill in result.fills:
        assert fill.amount == floor_to_step(fill.amount, D("0.001")) and fill.amount > 0
    assert result.fills[1].price == floor_to_step(result.fills[1].price, D("0.1"))


def test_backtest_files_of_different_timeframes_need_one_timeframe(tmp_path: Path) -> None:
    # The first file's timeframe was forced on every pair: 5m candles closed a minute after
    # they opened (or 1m candles five), so fill times, durations and the equity's times
    # depended on the order the files were given in.
    markets = [{"pair": "ETH/BTC", "tick_size": "0.000001", "step_size": "0.001"},
               {"pair": "UNITTEST/BTC", "tick_size": "0.00000001", "step_size": "1"}]
    bot = bot_file(tmp_path, markets=markets, base_order_volume="0.01", safety_order_volume="0.01")
    eth, unit = f"ETH/BTC={DATA / 'ETH_BTC-5m.feather'}", f"UNITTEST/BTC={DATA / 'UNITTEST_BTC-1m.feather'}"
    for files in ([eth, unit], [unit, eth]):
        with pytest.raises(InvalidConfig, match=r"^timeframe: the candle files hold 1m and 5m candles"):
            run_backtest_file(bot, files)
    results = [run_backtest_file(bot, files, timeframe="5m") for files in ([eth, unit], [unit, eth])]
    for result in results:
        assert {o.pair.symbol: o.arrays.timeframe for o in result.outcomes} == {"ETH/BTC": "5m", "UNITTEST/BTC": "5m"}
    assert results[0].metrics == results[1].metrics and results[0].fills == results[1].fills


def test_backtest_file_of_one_candle_in_the_chosen_range_runs(tmp_path: Path) -> None:
    # The timeframe was inferred from the cut data: one candle could not say it.
    start = datetime(2022, 1, 3, tzinfo=UTC)
    result = run_backtest_file(bot_file(tmp_path), [str(BTC)], start=start, end=start + timedelta(minutes=1))
    assert result.metrics.candles == 1 and result.timeframe == "1m"
    ranked = run_sweep_file(bot_file(tmp_path), [str(BTC)], {"take_profit": ["0.5", "1"]}, workers=1, start=start,
                            end=start + timedelta(minutes=1))
    assert [row.error for row in ranked.rows] == [None, None]
