"""Candles and timeframes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache

from sealbot.domain.market import Pair

_TIMEFRAME = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@cache  # a handful of spellings, asked on every candle a bot steps on
def timeframe_seconds(timeframe: str) -> int:
    """``5m`` -> 300. The ccxt spelling of timeframes."""
    match = _TIMEFRAME.match(timeframe)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"timeframe: {timeframe!r} is not like 1m, 5m, 1h, 1d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV bar. ``open_time`` is its start (UTC); it closes at ``close_time``."""

    pair: Pair
    timeframe: str
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    @property
    def close_time(self) -> datetime:
        return self.open_time + timedelta(seconds=timeframe_seconds(self.timeframe))
