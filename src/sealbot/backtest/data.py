"""Recorded OHLCV candles: load (feather, parquet, CSV/CSV.gz), validate, resample.

A backtest is only as good as its data, so loading never repairs anything silently:
``validate`` reports every gap, duplicate, out-of-order row and impossible price with
its row number and timestamp, and ``strict=True`` turns any of them into a
``DataError``. Repairs (``clean``) are explicit.

Prices stay exact. Files store prices as binary floats (feather, parquet) or text
(CSV). The float is kept only for the vectorised search for the next candle that
touches a level; every price that reaches a bot or a fill is ``Decimal(repr(x))``:
``repr`` of a float is the shortest text that reads back to the same float, i.e. the
text the exchange published (46319.0, 0.00141266), never the binary expansion
(``Decimal(0.1)`` is 0.1000000000000000055...). With a market's ``tick_size`` the
Decimal is also rounded to the tick, which removes any noise a producer's float
arithmetic may have left in the file (e.g. 0.30000000000000004 -> 0.3).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from sealbot.domain import Candle, Pair, SealbotError, timeframe_seconds
from sealbot.domain.money import round_to_step

OHLCV = ("open", "high", "low", "close", "volume")
_TIME_COLUMNS = ("date", "timestamp", "open_time", "time", "datetime")

IssueKind = Literal[
    "gap", "duplicate", "out_of_order", "non_positive", "high_below_low", "ohlc_outside_range", "missing_value"
]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class DataError(SealbotError):
    """Candle data that cannot be used as it is; the message names rows and timestamps."""


@dataclass(frozen=True, slots=True)
class DataIssue:
    """One problem found in a candle file: which row (0-based, file order), when, what."""

    kind: IssueKind
    row: int
    timestamp: str
    detail: str

    def __str__(self) -> str:
        return f"row {self.row} ({self.timestamp}): {self.kind}: {self.detail}"


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """Everything ``validate`` found. ``ok`` is True only for a clean file."""

    rows: int
    timeframe: str
    issues: tuple[DataIssue, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.issues

    def of_kind(self, kind: IssueKind) -> list[DataIssue]:
        return [issue for issue in self.issues if issue.kind == kind]

    @property
    def missing_candles(self) -> int:
        """Candles absent inside gaps (a 3-minute hole in 1m data is 2 missing)."""
        return sum(int(issue.detail.split()[0]) for issue in self.of_kind("gap"))

    def summary(self, limit: int = 20) -> str:
        if self.ok:
            return f"{self.rows} candles of {self.timeframe}: no problem found"
        counts: dict[str, int] = {}
        for issue in self.issues:
            counts[issue.kind] = counts.get(issue.kind, 0) + 1
        head = ", ".join(f"{n} {kind}" for kind, n in counts.items())
        lines = [f"{self.rows} candles of {self.timeframe}: {head}"]
        lines += [f"  {issue}" for issue in self.issues[:limit]]
        if len(self.issues) > limit:
            lines.append(f"  ... and {len(self.issues) - limit} more")
        return "\n".join(lines)

    def raise_if_invalid(self) -> None:
        if not self.ok:
            raise DataError(self.summary())


def read_frame(path: str | Path) -> pd.DataFrame:
    """Read a candle file as it is (no sorting, no dedup): the format follows the suffix."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".feather"):
        frame = pd.read_feather(path)
    elif name.endswith(".parquet"):
        frame = pd.read_parquet(path)
    elif name.endswith(".csv.gz"):
        with gzip.open(path, "rt") as handle:
            frame = pd.read_csv(handle)
    elif name.endswith(".csv"):
        frame = pd.read_csv(path)
    else:
        raise DataError(f"{path.name}: unknown format (use .feather, .parquet, .csv or .csv.gz)")
    return _normalise(frame, path.name)


def _normalise(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Columns ``open_time`` (UTC datetime), open, high, low, close, volume (float64)."""
    columns = {str(c).lower(): c for c in frame.columns}
    time_col = next((columns[c] for c in _TIME_COLUMNS if c in columns), None)
    if time_col is None:
        raise DataError(f"{source}: no time column (expected one of {', '.join(_TIME_COLUMNS)})")
    missing = [c for c in OHLCV if c not in columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(missing)}")
    raw_time = frame[time_col]
    if pd.api.types.is_numeric_dtype(raw_time):
        # Epoch numbers: milliseconds (ccxt, Binance) unless they are plainly seconds.
        unit = "ms" if raw_time.abs().max() > 10**11 else "s"
        times = pd.to_datetime(raw_time, unit=unit, utc=True)
    else:
        times = pd.to_datetime(raw_time, utc=True)
    out = pd.DataFrame({"open_time": times.astype("datetime64[ns, UTC]")})
    for name in OHLCV:
        out[name] = pd.to_numeric(frame[columns[name]], errors="coerce").astype("float64")
    return out.reset_index(drop=True)


def infer_timeframe(frame: pd.DataFrame) -> str:
    """The most common step between rows, in ccxt spelling (``1m``, ``5m``, ``1h``)."""
    times = frame["open_time"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    steps = np.diff(times)
    steps = steps[steps > 0]
    if steps.size == 0:
        raise DataError("cannot infer the timeframe from fewer than two distinct timestamps")
    values, counts = np.unique(steps, return_counts=True)
    seconds = int(values[counts.argmax()]) // 1_000_000_000  # the most common step (smallest on a tie)
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def validate(frame: pd.DataFrame, timeframe: str | None = None, *, strict: bool = False) -> ValidationReport:
    """Report gaps, duplicates, out-of-order rows, missing values and impossible prices.

    Rows are numbered in file order (0-based) so a report points at the file's line.
    ``strict`` raises ``DataError`` listing the problems instead of returning them.
    """
    timeframe = timeframe or infer_timeframe(frame)
    step = np.int64(timeframe_seconds(timeframe) * 1_000_000_000)
    times = frame["open_time"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    open_times = frame["open_time"]
    issues: list[tuple[int, int, DataIssue]] = []  # (row, order within row, issue) for a stable sort

    def add(row: int, rank: int, kind: IssueKind, detail: str) -> None:
        issues.append((row, rank, DataIssue(kind, row, str(open_times.iloc[row]), detail)))

    prices = frame[["open", "high", "low", "close"]].to_numpy()
    values = frame[list(OHLCV)].to_numpy()
    for row in np.flatnonzero(np.isnan(values).any(axis=1)):
        add(int(row), 0, "missing_value", "a price or the volume is empty")
    for row in np.flatnonzero((prices <= 0).any(axis=1)):
        add(int(row), 1, "non_positive", "a price is zero or negative")
    high, low = frame["high"].to_numpy(), frame["low"].to_numpy()
    for row in np.flatnonzero(high < low):
        add(int(row), 2, "high_below_low", f"high {float(high[row])!r} < low {float(low[row])!r}")
    body_hi = np.maximum(frame["open"].to_numpy(), frame["close"].to_numpy())
    body_lo = np.minimum(frame["open"].to_numpy(), frame["close"].to_numpy())
    for row in np.flatnonzero((high >= low) & ((body_hi > high) | (body_lo < low))):
        add(int(row), 3, "ohlc_outside_range", "open or close lies outside [low, high]")

    stamp_series = pd.Series(times)
    duplicates = np.flatnonzero(stamp_series.duplicated(keep="first").to_numpy())
    if duplicates.size:
        unique = stamp_series.drop_duplicates(keep="first")
        first_row = dict(zip(unique.to_numpy().tolist(), unique.index.tolist(), strict=True))
        for dup in duplicates:
            add(int(dup), 4, "duplicate", f"same open time as row {first_row[int(times[dup])]}")
    deltas = np.diff(times)
    for row in np.flatnonzero(deltas < 0) + 1:
        add(int(row), 5, "out_of_order", f"earlier than row {row - 1} ({open_times.iloc[row - 1]})")
    for row in np.flatnonzero(deltas > step) + 1:
        missing = int(deltas[row - 1] // step) - 1 + (1 if deltas[row - 1] % step else 0)
        add(int(row), 6, "gap", f"{missing} candle(s) missing after row {row - 1} ({open_times.iloc[row - 1]})")
    for row in np.flatnonzero((deltas > 0) & (deltas % step != 0)) + 1:
        add(int(row), 7, "gap", f"0 candle(s) missing; open time is off the {timeframe} grid")

    report = ValidationReport(len(frame), timeframe, tuple(i for _, _, i in sorted(issues, key=lambda t: t[:2])))
    if strict:
        report.raise_if_invalid()
    return report


def clean(frame: pd.DataFrame) -> pd.DataFrame:
    """An explicit repair: sort by time, keep the first of duplicate timestamps, drop rows
    with missing or impossible prices. Gaps stay gaps (no candle is invented)."""
    prices = frame[["open", "high", "low", "close"]]
    good = (prices > 0).all(axis=1) & (frame["high"] >= frame["low"]) & frame[list(OHLCV)].notna().all(axis=1)
    out = frame[good].sort_values("open_time", kind="stable")
    return out.drop_duplicates("open_time", keep="first").reset_index(drop=True)


def load_candles(
    path: str | Path, timeframe: str | None = None, *, strict: bool = False, repair: bool = False
) -> tuple[pd.DataFrame, ValidationReport]:
    """Read a file and validate it. ``strict`` raises on any issue; ``repair`` returns the
    ``clean``-ed frame (the report still describes the file as read)."""
    frame = read_frame(path)
    report = validate(frame, timeframe, strict=strict)
    return (clean(frame) if repair else frame), report


def resample(frame: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """OHLCV at a coarser timeframe: first open, max high, min low, last close, summed
    volume per bucket; buckets start on the timeframe grid (UTC) and are labelled by
    their start, like exchanges label candles. Empty buckets (gaps) are dropped."""
    rule = f"{timeframe_seconds(timeframe)}s"
    indexed = frame.set_index("open_time")
    out = indexed.resample(rule, label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    out = out.dropna(subset=["open"])
    return out.reset_index()


def load_trades(path: str | Path) -> pd.DataFrame:
    """Public trades (columns timestamp, price, quantity) as recorded, e.g. the bundled parquet."""
    frame = pd.read_parquet(path) if str(path).endswith(".parquet") else pd.read_csv(path)
    if not {"timestamp", "price", "quantity"} <= set(frame.columns):
        raise DataError(f"{Path(path).name}: trades need columns timestamp, price, quantity")
    frame = frame.copy()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def trades_to_candles(trades: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Aggregate trades into OHLCV candles (volume in base units), empty buckets dropped."""
    rule = f"{timeframe_seconds(timeframe)}s"
    grouped = trades.set_index("timestamp").resample(rule, label="left", closed="left")
    out = grouped["price"].ohlc()
    out["volume"] = grouped["quantity"].sum()
    out = out.dropna(subset=["open"]).reset_index().rename(columns={"timestamp": "open_time"})
    return out


def exact(value: float, tick: Decimal | None = None) -> Decimal:
    """A recorded float price as the Decimal the exchange published (see module doc)."""
    price = Decimal(repr(float(value)))
    return round_to_step(price, tick) if tick else price


class CandleArrays:
    """One pair's candles as numpy arrays for the simulator: float64 for vectorised
    searches, exact Decimals (``exact``) built lazily for the candles a bot sees.

    The frame must be clean (sorted, unique times): ``validate`` first.
    """

    __slots__ = ("_cache", "close", "high", "low", "open", "open_ns", "pair", "tick", "timeframe", "volume")

    def __init__(self, pair: Pair, timeframe: str, frame: pd.DataFrame, tick: Decimal | None = None) -> None:
        self.pair, self.timeframe, self.tick = pair, timeframe, tick
        self.open_ns = frame["open_time"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        if len(self.open_ns) > 1 and not bool(np.all(np.diff(self.open_ns) > 0)):
            raise DataError(f"{pair}: candles are not strictly increasing in time; validate and clean first")
        self.open = np.ascontiguousarray(frame["open"].to_numpy(dtype=np.float64))
        self.high = np.ascontiguousarray(frame["high"].to_numpy(dtype=np.float64))
        self.low = np.ascontiguousarray(frame["low"].to_numpy(dtype=np.float64))
        self.close = np.ascontiguousarray(frame["close"].to_numpy(dtype=np.float64))
        self.volume = np.ascontiguousarray(frame["volume"].to_numpy(dtype=np.float64))
        self._cache: dict[int, Candle] = {}

    def __len__(self) -> int:
        return len(self.open_ns)

    @property
    def step_ns(self) -> int:
        return timeframe_seconds(self.timeframe) * 1_000_000_000

    def time(self, i: int) -> datetime:
        return _EPOCH + timedelta(microseconds=int(self.open_ns[i]) // 1000)

    def candle(self, i: int) -> Candle:
        found = self._cache.get(i)
        if found is None:
            tick = self.tick
            found = Candle(
                self.pair,
                self.timeframe,
                self.time(i),
                exact(self.open[i], tick),
                exact(self.high[i], tick),
                exact(self.low[i], tick),
                exact(self.close[i], tick),
                Decimal(repr(float(self.volume[i]))),
            )
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[i] = found
        return found

    def frame(self) -> pd.DataFrame:
        """The candles back as a frame (``open_time`` + OHLCV), e.g. to resample."""
        return pd.DataFrame({
            "open_time": pd.DatetimeIndex(self.open_ns, tz="UTC"), "open": self.open, "high": self.high,
            "low": self.low, "close": self.close, "volume": self.volume,
        })

    def close_price(self, i: int) -> Decimal:
        return exact(self.close[i], self.tick)
