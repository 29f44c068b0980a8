"""HTML and JSON reports of a real-data DCA backtest."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest

import sealbot.bots.dca as dca
from sealbot.backtest.data import read_frame
from sealbot.backtest.metrics import Result
from sealbot.backtest.report import PLOTLY_MARK, build_figure, render_report, with_plotlyjs, write_json, write_report
from sealbot.backtest.simulate import run
from sealbot.domain import Pair

DATA = Path(__file__).resolve().parents[2] / "src" / "sealbot" / "data"
PAIR = Pair("BTC", "USDT")


@pytest.fixture(scope="module")
def result() -> Result:
    frame = read_frame(DATA / "BTC-PERP-1m-20211231-20220107.csv.gz").iloc[:3000]
    config = dca.DcaConfig.model_validate(dict(
        bot_id="rep", markets=[{"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001"}],
        base_order_volume=D("100"), safety_order_volume=D("100"), max_safety_orders=3, active_safety_orders_count=2,
        safety_order_step_percentage=D("0.3"), take_profit=D("0.4"),
    ))
    return run(dca, config, {PAIR: frame})


def test_backtest_chart_marks_every_fill_as_entry_safety_or_exit(result: Result) -> None:
    figure = build_figure(result)
    markers = {trace.name: trace for trace in figure.data if trace.type == "scatter" and trace.mode == "markers"}
    assert set(markers) == {"entry", "safety", "exit"}
    assert sum(len(trace.x) for trace in markers.values()) == len(result.fills)
    entries = [f for f in result.fills if f.client_id.step == "bo"]
    assert [float(f.price) for f in entries] == list(markers["entry"].y)
    assert len(markers["exit"].x) == sum(1 for f in result.fills if f.side.value == "sell")
    candles = [trace for trace in figure.data if trace.type == "candlestick"]
    assert len(candles) == 1 and len(candles[0].x) == 3000
    assert {"equity", "drawdown"} <= {trace.name for trace in figure.data}


def test_backtest_chart_marks_a_short_deals_sells_as_entries_and_its_buys_as_exits() -> None:
    # A short enters by selling and exits by buying: its base order was drawn as an exit
    # (red, down) and its take profit as an entry (green, up), the chart read backwards.
    frame = read_frame(DATA / "BTC-PERP-1m-20211231-20220107.csv.gz").iloc[:3000]
    config = dca.DcaConfig.model_validate(dict(
        bot_id="rep", strategy="short", markets=[{"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001"}],
        base_order_volume=D("100"), safety_order_volume=D("100"), max_safety_orders=3, active_safety_orders_count=2,
        safety_order_step_percentage=D("0.3"), take_profit=D("0.4"),
    ))
    short = run(dca, config, {PAIR: frame})
    markers = {trace.name: trace for trace in build_figure(short).data
               if trace.type == "scatter" and trace.mode == "markers"}
    entries = [f for f in short.fills if f.client_id.step == "bo"]
    assert entries and all(f.side.value == "sell" for f in entries)
    assert [float(f.price) for f in entries] == list(markers["entry"].y)
    assert len(markers["exit"].x) == sum(1 for f in short.fills if f.side.value == "buy")
    assert all(" sell " in text for text in markers["safety"].text)


def test_backtest_report_says_why_the_bot_stopped_and_lists_its_alerts() -> None:
    # A base order below the exchange minimum after rounding stops the bot at once: the
    # page showed zeros and no reason.
    frame = read_frame(DATA / "BTC-PERP-1m-20211231-20220107.csv.gz").iloc[:100]
    config = dca.DcaConfig.model_validate(dict(
        bot_id="rep", markets=[{"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"}],
        base_order_volume=D("5"), safety_order_volume=D("5"), max_safety_orders=1, take_profit=D("1"),
        safety_order_step_percentage=D("1"),
    ))
    stopped = run(dca, config, {PAIR: frame})
    assert stopped.stopped and stopped.alerts
    page = render_report(stopped, title="t")
    assert f'<p id="stopped"><strong>The bot stopped:</strong> {stopped.stopped}</p>' in page
    assert '<table id="alerts">' in page and "<td>base_order_too_small</td>" in page


def test_backtest_long_runs_are_drawn_on_coarser_candles(result: Result) -> None:
    figure = build_figure(result, max_candles=500)
    candles = next(trace for trace in figure.data if trace.type == "candlestick")
    assert len(candles.x) <= 500
    assert any("drawn as 15m candles" in a.text for a in figure.layout.annotations)


def test_backtest_html_report_is_self_contained(result: Result, tmp_path: Path) -> None:
    path = write_report(result, tmp_path / "report.html", title="DCA on BTC")
    page = path.read_text()
    assert page.startswith("<!doctype html>") and "<title>DCA on BTC</title>" in page
    assert "<script src=" not in page and "Plotly.newPlot" in page and len(page) > 1_000_000  # plotly.js inline
    assert f'data-fills="{len(result.fills)}"' in page
    assert page.count("<tr>") >= len(result.deals) + 1
    assert "max_funds_used" in page


def test_backtest_html_report_can_share_plotly_js(result: Result, tmp_path: Path) -> None:
    path = write_report(result, tmp_path / "r.html", plotlyjs="directory")
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000
    assert 'src="plotly.min.js"' in path.read_text() and path.stat().st_size < 1_000_000


def test_backtest_json_result_round_trips(result: Result, tmp_path: Path) -> None:
    data = json.loads(write_json(result, tmp_path / "r.json").read_text())
    assert data["pairs"] == ["BTC/USDT"] and len(data["fills"]) == len(result.fills)
    assert D(data["metrics"]["pnl"]) == result.metrics.pnl
    assert [d["no"] for d in data["deals"]] == [d.no for d in result.deals]


def test_backtest_report_for_the_dashboard_points_at_a_served_plotly(result: Result) -> None:
    page = render_report(result, title="t", plotlyjs_src="/static/plotly.min.js")
    assert 'src="/static/plotly.min.js"' in page and len(page) < 1_000_000
    assert 'id="sealbot-chart"' in page and 'id="deals"' in page


def test_a_report_kept_without_plotly_js_is_made_whole_when_served(result: Result, tmp_path: Path) -> None:
    """The dashboard keeps each report without the 4.8 MB library and inlines it as it
    serves the page: the served page is the self-contained one, byte for byte."""
    kept = write_report(result, tmp_path / "kept.html", plotlyjs="served").read_text()
    whole = write_report(result, tmp_path / "whole.html").read_text()
    assert PLOTLY_MARK in kept and "Plotly.newPlot" in kept and len(kept) < len(whole) - 4_000_000
    assert with_plotlyjs(kept) == whole
    assert with_plotlyjs(whole) == whole  # a report that carries its library is served as it is


def test_evenly_spaced_equity_is_sent_as_a_start_and_a_step(result: Result) -> None:
    figure = build_figure(result)
    equity = next(trace for trace in figure.data if trace.name == "equity")
    assert equity.x is None and equity.dx == 60_000 and len(equity.y) == 3000
    assert equity.x0 == result.equity.index[0]
    uneven = result.equity.drop(result.equity.index[5])
    from sealbot.backtest.report import _times
    assert list(_times(uneven.index)["x"]) == list(uneven.index)
