"""Vectorised search for the next candle that can wake a bot: the backtester's speed.

Between two candles that stay strictly inside a bot's band (``Interest.below`` <
low, high < ``Interest.above``) nothing can happen to it, so the simulator jumps
straight to the first candle whose low reaches ``below`` or whose high reaches
``above``. numpy scans growing windows (256 candles, then x4 up to 64k) so a short
hop costs little and a long one is a handful of array operations.

The search is a filter, never a decision: levels are widened by a relative 1e-9 (plus
one tick when prices are rounded to the tick), so a float comparison can only wake
the bot early (harmless: an in-band candle changes nothing), never late. Fills are
then decided on exact Decimals.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
_FIRST_WINDOW = 256
_MAX_WINDOW = 1 << 16
_WIDEN = 1e-9


def widen_below(level: Decimal | None, tick: Decimal | None) -> float:
    """A float at or above ``level`` (so ``low <= it`` catches every exact touch)."""
    if level is None:
        return -math.inf
    value = float(level) + (float(tick) if tick else 0.0)
    return value + abs(value) * _WIDEN


def widen_above(level: Decimal | None, tick: Decimal | None) -> float:
    if level is None:
        return math.inf
    value = float(level) - (float(tick) if tick else 0.0)
    return value - abs(value) * _WIDEN


def next_touch(low: FloatArray, high: FloatArray, start: int, stop: int, below: float, above: float) -> int:
    """The first index in ``[start, stop)`` whose low <= ``below`` or high >= ``above``;
    ``stop`` if there is none."""
    check_low, check_high = below != -math.inf, above != math.inf
    if not (check_low or check_high):
        return stop
    i, window = start, _FIRST_WINDOW
    while i < stop:
        j = min(stop, i + window)
        if check_low and check_high:
            hits = (low[i:j] <= below) | (high[i:j] >= above)
        elif check_low:
            hits = low[i:j] <= below
        else:
            hits = high[i:j] >= above
        first = int(hits.argmax())
        if hits[first]:
            return i + first
        i, window = j, min(window * 4, _MAX_WINDOW)
    return stop
