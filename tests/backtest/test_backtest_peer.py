"""bench/backtest.py's strategy gives the same trades in sealbot and in backtesting.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("backtesting", reason="the bench extra (backtesting.py) is not installed")

BENCH = Path(__file__).resolve().parents[2] / "bench" / "backtest.py"


def _bench_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("sealbot_bench_backtest", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the bench passes its own module to run() as the bot
    spec.loader.exec_module(module)
    return module


def test_backtest_same_trades_as_backtesting_py_on_the_real_week() -> None:
    bench = _bench_module()
    frame = bench.read_frame(bench.DATA)
    ours, our_pnl = bench.sealbot_trades(frame)
    theirs, their_pnl = bench.backtesting_trades(frame)
    assert len(ours) > 10
    assert ours == theirs
    assert our_pnl == pytest.approx(their_pnl)


def test_backtest_stitched_synthetic_data_is_continuous() -> None:
    bench = _bench_module()
    frame = bench.read_frame(bench.DATA)
    long = bench.stitched(frame, 4)
    assert len(long) == 4 * len(frame)
    seams = [len(frame) * k for k in (1, 2, 3)]
    # A time-reversed copy opens where the previous copy closed, and the other way round.
    assert all(long["open"].iloc[i] == long["close"].iloc[i - 1] for i in seams)
    assert long["high"].max() == frame["high"].max() and long["low"].min() == frame["low"].min()
