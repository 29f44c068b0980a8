"""The grid through the backtester on real recorded BTC candles: skipping the candles
``interest`` says cannot matter gives exactly the same run as stepping every one."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import sealbot
from sealbot.backtest.data import load_candles
from sealbot.backtest.simulate import run
from sealbot.bots import grid
from sealbot.domain import Pair

DATA = Path(sealbot.__file__).parent / "data" / "BTC-PERP-1m-20211231-20220107.csv.gz"


def test_skipping_by_interest_changes_nothing_on_real_data() -> None:
    frame, _ = load_candles(DATA)
    frame = frame.iloc[:4000]
    cfg = grid.parse_config({
        "bot_id": "bt1", "market": {"pair": "BTC/USDT", "tick_size": "0.1", "step_size": "0.00001",
                                    "min_notional": "5"},
        "lower_price": "45000", "upper_price": "48000", "grids_quantity": 31, "investment": "10000",
        "trailing_up_enabled": True, "trailing_down_enabled": True, "trailing_down_stop_price": "44000",
        "lower_stop_loss_enabled": True, "lower_stop_loss_price": "43000"})
    candles = {Pair("BTC", "USDT"): frame}
    skipped = run(grid, cfg, candles, skip=True)
    stepped = run(grid, cfg, candles, skip=False)
    assert skipped.final_state == stepped.final_state
    assert skipped.fills == stepped.fills and len(skipped.fills) > 20
    assert skipped.metrics.candles_stepped < stepped.metrics.candles_stepped / 5
    assert skipped.final_state.cycles > 0 and skipped.final_state.profit > 0
    assert D(skipped.metrics.max_funds_used) <= D("10000")
