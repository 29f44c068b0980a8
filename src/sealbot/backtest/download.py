"""Download candles from an exchange into a CSV file, resumably.

Goes through the ``Venue`` interface (``CcxtVenue`` public data needs no key; simex
stands in for the exchange in tests), page by page from ``start`` to ``end``. Each page
is appended to the file as soon as it arrives, prices written as the exact decimal text
the exchange sent, so an interrupted download loses at most one page: run it again and
it continues after the last candle in the file. ``.csv.gz`` files are appended as new
gzip members (which every gzip reader, and ``data.read_frame``, reads as one file).
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from sealbot.backtest.data import DataError, read_frame
from sealbot.domain import Candle, Pair, timeframe_seconds
from sealbot.domain.money import to_text
from sealbot.venues.base import Venue
from sealbot.venues.ccxt_venue import CcxtVenue

Progress = Callable[[int, int], None]
HEADER = ("timestamp", "open", "high", "low", "close", "volume")


def _open_append(path: Path) -> TextIO:
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "ab"), encoding="utf-8", newline="")
    return path.open("a", encoding="utf-8", newline="")


def last_candle_time(path: Path) -> datetime | None:
    """Open time of the last candle already in ``path`` (None for a missing/empty file)."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    frame = read_frame(path)
    if frame.empty:
        return None
    last: datetime = pd.Timestamp(frame["open_time"].max()).to_pydatetime()
    return last


async def download_candles(
    venue: Venue,
    pair: Pair,
    timeframe: str,
    start: datetime,
    end: datetime,
    path: str | Path,
    *,
    page: int = 1000,
    progress: Progress | None = None,
) -> int:
    """Fetch ``pair``'s closed ``timeframe`` candles with open time in [start, end) into
    ``path`` (``.csv`` or ``.csv.gz``), continuing after what the file holds. Returns how many
    candles were added. ``progress(done, total)`` counts candles of the whole range."""
    path = Path(path)
    if not (path.name.endswith(".csv") or path.name.endswith(".csv.gz")):
        raise DataError(f"{path.name}: downloads are written as .csv or .csv.gz (appendable)")
    step = timedelta(seconds=timeframe_seconds(timeframe))
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    total = max(0, int((end - start) / step))
    last = last_candle_time(path)
    cursor = max(start, last + step) if last is not None else start
    done = max(0, int((cursor - start) / step))
    added = 0
    if progress:
        progress(min(done, total), total)
    new_file = last is None
    while cursor < end:
        # only closed candles: a range reaching the present gets the forming candle too, which
        # written down would stay half-formed (a resumed download continues after it). Closed:
        # the answer holds a later candle (the exchange's own clock, whatever ours says: simex
        # may run ahead of it), or it had closed on ours when asked
        asked = datetime.now(UTC)
        candles = await venue.fetch_candles(pair, timeframe, cursor, page)
        newest = max((c.open_time for c in candles), default=None)
        fresh = [c for c in candles if cursor <= c.open_time < end
                 and (c.open_time != newest or c.open_time + step <= asked)]
        if not fresh:
            break  # the exchange has nothing more in the range
        _append(path, fresh, header=new_file)
        new_file = False
        added += len(fresh)
        cursor = fresh[-1].open_time + step
        done = int((cursor - start) / step)
        if progress:
            progress(min(done, total), total)
    return added


def _append(path: Path, candles: list[Candle], *, header: bool) -> None:
    with _open_append(path) as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(HEADER)
        for c in candles:
            stamp = c.open_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
            writer.writerow((stamp, to_text(c.open), to_text(c.high), to_text(c.low), to_text(c.close),
                             to_text(c.volume)))


async def download_from_exchange(
    exchange_id: str,
    pair: Pair,
    timeframe: str,
    start: datetime,
    end: datetime,
    path: str | Path,
    *,
    urls: dict[str, Any] | None = None,
    page: int = 1000,
    progress: Progress | None = None,
) -> int:
    """``sealbot data download``: public candles of ``exchange_id`` (any ccxt id; ``urls``
    points it elsewhere, e.g. at simex) into ``path``, resumable. No API key is used."""
    venue = CcxtVenue(exchange_id, urls=urls)
    try:
        return await download_candles(venue, pair, timeframe, start, end, path, page=page, progress=progress)
    finally:
        await venue.close()

