"""The HTML report renders in a real browser (Debian's Chromium, headless) with the trades
on the chart, offline: the page is loaded from a file with no network."""

from __future__ import annotations

import shutil
import subprocess
from decimal import Decimal as D
from pathlib import Path

import pytest

import sealbot.bots.dca as dca
from sealbot.backtest.data import read_frame
from sealbot.backtest.report import write_report
from sealbot.backtest.simulate import run
from sealbot.domain import Pair

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DATA = Path(__file__).resolve().parents[2] / "src" / "sealbot" / "data"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Chromium (Debian package chromium)"),
]


def rendered_dom(page: Path) -> str:
    """The DOM after the page's scripts ran (plotly draws the chart as SVG)."""
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000", "--dump-dom",
         page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return done.stdout


def test_backtest_report_chart_draws_every_candle_and_fill_in_chromium(tmp_path: Path) -> None:
    frame = read_frame(DATA / "BTC-PERP-1m-20211231-20220107.csv.gz").iloc[:1500]
    config = dca.DcaConfig.model_validate(dict(
        bot_id="web", markets=[{"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001"}],
        base_order_volume=D("100"), safety_order_volume=D("100"), max_safety_orders=3, active_safety_orders_count=2,
        safety_order_step_percentage=D("0.3"), take_profit=D("0.4"),
    ))
    result = run(dca, config, {Pair("BTC", "USDT"): frame})
    assert len(result.fills) > 10
    dom = rendered_dom(write_report(result, tmp_path / "report.html"))
    # plotly drew one SVG marker per fill (entries, safety orders, exits) and one box per candle.
    assert dom.count('class="point"') == len(result.fills)
    assert dom.count('class="box"') == len(frame)
    assert dom.count('<g class="trace scatter') >= 5  # three marker kinds, equity, drawdown
