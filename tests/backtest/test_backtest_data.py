"""Loading, validating and resampling the bundled real candles."""

from __future__ import annotations

import csv
import gzip
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sealbot.backtest.data import (
    CandleArrays,
    DataError,
    clean,
    exact,
    infer_timeframe,
    load_candles,
    load_trades,
    read_frame,
    resample,
    trades_to_candles,
    validate,
)
from sealbot.domain import Pair

DATA = Path(__file__).resolve().parents[2] / "src" / "sealbot" / "data"
BTC = DATA / "BTC-PERP-1m-20211231-20220107.csv.gz"
XRP = DATA / "XRP_ETH-1m.feather"
ETH = DATA / "ETH_BTC-5m.feather"
UNIT = DATA / "UNITTEST_BTC-1m.feather"
TRADES = DATA / "BTCUSDT-trades-binance.parquet"


@pytest.mark.parametrize(("path", "rows", "timeframe"), [(BTC, 10080, "1m"), (ETH, 5760, "5m"), (XRP, 2469, "1m"),
                                                          (UNIT, 13681, "1m")])
def test_backtest_loads_every_bundled_candle_file(path: Path, rows: int, timeframe: str) -> None:
    frame = read_frame(path)
    assert list(frame.columns) == ["open_time", "open", "high", "low", "close", "volume"]
    assert len(frame) == rows
    assert str(frame["open_time"].dt.tz) == "UTC"
    assert infer_timeframe(frame) == timeframe


def test_backtest_first_csv_row_is_read_as_recorded() -> None:
    frame = read_frame(BTC)
    first = frame.iloc[0]
    assert first["open_time"] == pd.Timestamp("2021-12-31 23:01:00", tz="UTC")
    assert (first["open"], first["high"], first["low"], first["close"]) == (46319.0, 46385.0, 46319.0, 46377.0)


def test_backtest_csv_prices_become_the_exact_recorded_decimals() -> None:
    frame = read_frame(BTC)
    arrays = CandleArrays(Pair("BTC", "USDT"), "1m", frame)
    with gzip.open(BTC, "rt") as handle:
        rows = list(csv.DictReader(handle))
    for i in range(0, len(rows), 97):
        candle = arrays.candle(i)
        assert (candle.open, candle.high, candle.low, candle.close) == tuple(
            Decimal(rows[i][k]) for k in ("open", "high", "low", "close")
        )


def test_backtest_float_prices_keep_their_published_digits() -> None:
    frame = read_frame(XRP)
    candle = CandleArrays(Pair("XRP", "ETH"), "1m", frame).candle(5)
    assert str(candle.close) == repr(float(frame["close"].iloc[5]))
    assert exact(0.1) == Decimal("0.1")  # not 0.1000000000000000055511151231257827...
    assert exact(0.1 + 0.2) == Decimal("0.30000000000000004")  # float noise a producer left in ...
    assert exact(0.1 + 0.2, Decimal("0.00000001")) == Decimal("0.30000000")  # ... removed by the tick


def test_backtest_parquet_round_trip_of_real_candles(tmp_path: Path) -> None:
    original = read_frame(ETH)
    path = tmp_path / "eth.parquet"
    original.rename(columns={"open_time": "date"}).to_parquet(path)
    again = read_frame(path)
    pd.testing.assert_frame_equal(again, original)


def test_backtest_epoch_millisecond_csv(tmp_path: Path) -> None:
    original = read_frame(XRP).head(50)
    path = tmp_path / "xrp.csv"
    out = original.copy()
    out["timestamp"] = out.pop("open_time").astype("int64") // 1_000_000
    out.to_csv(path, index=False)
    pd.testing.assert_frame_equal(read_frame(path), original, check_like=True)


def test_backtest_trades_aggregate_into_candles() -> None:
    trades = load_trades(TRADES)
    candles = trades_to_candles(trades, "1s")
    assert candles["volume"].sum() == pytest.approx(trades["quantity"].sum())
    first_second = trades[trades["timestamp"] < trades["timestamp"].iloc[0].floor("s") + pd.Timedelta(seconds=1)]
    first = candles.iloc[0]
    assert first["open"] == first_second["price"].iloc[0]
    assert first["close"] == first_second["price"].iloc[-1]
    assert first["high"] == first_second["price"].max()
    assert first["low"] == first_second["price"].min()
    assert validate(candles, "1s").of_kind("high_below_low") == []


def test_backtest_clean_real_files_validate_clean() -> None:
    for path in (BTC, ETH):
        assert validate(read_frame(path)).ok


def test_backtest_real_gaps_are_reported_with_rows_and_sizes() -> None:
    frame = read_frame(XRP)
    report = validate(frame, "1m")
    gaps = report.of_kind("gap")
    step = frame["open_time"].diff()
    expected_rows = [int(i) for i in np.flatnonzero((step > pd.Timedelta(minutes=1)).to_numpy())]
    assert [g.row for g in gaps] == expected_rows
    assert report.missing_candles == int((step[step > pd.Timedelta(minutes=1)] / pd.Timedelta(minutes=1) - 1).sum())
    assert gaps[0].timestamp == str(frame["open_time"].iloc[gaps[0].row])
    with pytest.raises(DataError, match="gap"):
        validate(frame, "1m", strict=True)


def _injected() -> pd.DataFrame:
    frame = read_frame(BTC).head(200).copy()
    frame = frame.drop(index=[50, 51, 52])  # a 3-candle hole after row 49
    frame = pd.concat([frame.iloc[:100], frame.iloc[[99]], frame.iloc[100:]])  # a duplicate of file row 99
    rows = frame.reset_index(drop=True)
    rows.iloc[[150, 151]] = rows.iloc[[151, 150]].to_numpy()  # two rows swapped
    rows.loc[170, "low"] = -1.0
    rows.loc[180, ["high", "low"]] = [100.0, 200.0]
    return rows


def test_backtest_validation_finds_every_injected_problem() -> None:
    report = validate(_injected(), "1m")
    kinds = {(i.kind, i.row) for i in report.issues}
    assert ("gap", 50) in kinds and "3 candle(s) missing" in report.of_kind("gap")[0].detail
    assert ("duplicate", 100) in kinds
    assert ("out_of_order", 151) in kinds
    assert ("non_positive", 170) in kinds
    assert ("high_below_low", 180) in kinds
    assert report.of_kind("high_below_low")[0].detail == "high 100.0 < low 200.0"
    assert not report.ok
    summary = report.summary()
    assert "row 100" in summary and "duplicate" in summary and "out_of_order" in summary


def test_backtest_strict_loading_raises_with_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "bad.feather"
    _injected().to_feather(path)
    with pytest.raises(DataError, match=r"row 100 .*duplicate: same open time as row 99"):
        load_candles(path, "1m", strict=True)


def test_backtest_clean_repairs_explicitly() -> None:
    repaired = clean(_injected())
    report = validate(repaired, "1m")
    assert {i.kind for i in report.issues} == {"gap"}
    assert repaired["open_time"].is_monotonic_increasing and repaired["open_time"].is_unique


def test_backtest_resample_1m_to_5m_matches_ohlc_semantics_on_real_data() -> None:
    frame = read_frame(UNIT)  # real 1m data with gaps
    five = resample(frame, "5m")
    buckets = frame.groupby(frame["open_time"].dt.floor("5min"))
    assert len(five) == buckets.ngroups
    np.testing.assert_array_equal(five["open_time"].to_numpy(), np.array(list(buckets.groups), dtype=five[
        "open_time"].to_numpy().dtype))
    np.testing.assert_array_equal(five["open"].to_numpy(), buckets["open"].first().to_numpy())
    np.testing.assert_array_equal(five["high"].to_numpy(), buckets["high"].max().to_numpy())
    np.testing.assert_array_equal(five["low"].to_numpy(), buckets["low"].min().to_numpy())
    np.testing.assert_array_equal(five["close"].to_numpy(), buckets["close"].last().to_numpy())
    np.testing.assert_allclose(five["volume"].to_numpy(), buckets["volume"].sum().to_numpy())


def test_backtest_resample_of_the_btc_week_to_1h() -> None:
    hourly = resample(read_frame(BTC), "1h")
    assert infer_timeframe(hourly) == "1h"
    assert validate(hourly, "1h").of_kind("ohlc_outside_range") == []
    assert (hourly["open_time"].dt.minute == 0).all()


def test_backtest_candle_arrays_refuse_unsorted_candles() -> None:
    with pytest.raises(DataError, match="validate and clean"):
        CandleArrays(Pair("BTC", "USDT"), "1m", _injected())
