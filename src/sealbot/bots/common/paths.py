"""Turning market events into the prices a bot reacts to, and merging interests.

A candle is walked as open -> low -> high -> close when it closed up and open -> high ->
low -> close when it closed down (the usual backtesting assumption), so trailing logic
sees a plausible order. Every point lies inside [low, high]: a candle strictly inside
a bot's ``Interest`` band cannot move any trigger, which is what makes skipping exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from sealbot.bots.base import Interest
from sealbot.domain.candles import Candle


def candle_path(candle: Candle) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    if candle.close >= candle.open:
        return (candle.open, candle.low, candle.high, candle.close)
    return (candle.open, candle.high, candle.low, candle.close)


def merge(interests: Iterable[Interest]) -> Interest:
    """One interest that wakes whenever any of ``interests`` would."""
    below: Decimal | None = None
    above: Decimal | None = None
    until: datetime | None = None
    every = False
    for item in interests:
        every = every or item.every_candle
        if item.below is not None:
            below = item.below if below is None else max(below, item.below)
        if item.above is not None:
            above = item.above if above is None else min(above, item.above)
        if item.until is not None:
            until = item.until if until is None else min(until, item.until)
    return Interest(below=below, above=above, until=until, every_candle=every)


def touches(interest: Interest, candle: Candle) -> bool:
    """Whether a driver must deliver ``candle`` to a bot with this interest."""
    if interest.every_candle:
        return True
    if interest.below is not None and candle.low <= interest.below:
        return True
    if interest.above is not None and candle.high >= interest.above:
        return True
    return interest.until is not None and candle.close_time >= interest.until
