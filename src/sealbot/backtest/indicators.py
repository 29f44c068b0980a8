"""Indicator events for backtests, computed the way the engine computes them live.

Bots stay pure: they do not compute indicators, they receive ``IndicatorUpdated``
events (e.g. RSI for the DCA bot's ``start_condition: rsi``). Live, the engine computes
them with talipp on closed candles of the indicator's timeframe; here the same talipp
indicator runs over the backtest's candles resampled to that timeframe, and each value
is stamped with its candle's close time, so ``simulate.run(events=...)`` delivers it at
the moment it became known.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from talipp.indicators import RSI

from sealbot.backtest.data import resample
from sealbot.domain import IndicatorUpdated, Pair, timeframe_seconds

RSI_UNIT = Decimal("0.0001")  # the engine's precision for indicator values (engine/candles.py)


def rsi_events(frame: pd.DataFrame, pair: Pair, timeframe: str, period: int) -> list[IndicatorUpdated]:
    """RSI(``period``) of ``timeframe`` candles built from ``frame``, rounded to 4 decimals
    as the engine's feed rounds them (a value near a threshold must fall on the same side)."""
    candles = resample(frame, timeframe)
    values = RSI(period=period, input_values=candles["close"].astype(float).tolist())
    length = timedelta(seconds=timeframe_seconds(timeframe))
    events = []
    for open_time, value in zip(candles["open_time"], values, strict=True):
        if value is None:
            continue
        at = pd.Timestamp(open_time).to_pydatetime() + length
        events.append(IndicatorUpdated(pair, timeframe, "rsi", period, Decimal(repr(float(value))).quantize(RSI_UNIT),
                                       at))
    return events


def wants_indicators(config: Any) -> bool:
    """Whether ``config`` uses an indicator (an ``rsi`` setting its start condition uses)."""
    return getattr(config, "rsi", None) is not None and str(getattr(config, "start_condition", "")) == "rsi"


def events_for(config: Any, candles: Mapping[Pair, pd.DataFrame]) -> list[IndicatorUpdated]:
    """The indicator events ``config`` asks for: an ``rsi`` setting (timeframe, period)
    used by its start condition gives RSI events for every pair."""
    if not wants_indicators(config):
        return []
    rsi = config.rsi
    return [event for pair, frame in sorted(candles.items()) for event in
            rsi_events(frame, pair, rsi.timeframe, rsi.period)]
