"""A bot as the runner holds it in memory, and the rule that decides what wakes it.

``LiveBot`` is the loaded form of a journalled bot (config parsed, state loaded, the
``Interest`` it declared after its last step); ``wakes`` is the brute-force rule the
trigger index (``engine.triggers``) must agree with, and the runner applies again when
an event's turn comes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sealbot.bots.base import Interest
from sealbot.bots.registry import BotModule
from sealbot.domain import CandleClosed, Deal, Event, Pair, PriceTicked, TimerFired
from sealbot.engine.candles import IndicatorSpec
from sealbot.engine.journal import BotRecord, BotStatus


@dataclass
class LiveBot:
    record: BotRecord
    module: BotModule
    config: Any
    state: Any
    pairs: tuple[Pair, ...]
    interest: Interest = Interest.ALWAYS
    deals: dict[int, Deal] = field(default_factory=dict)
    feed_id: str = ""  # its name in the FeedHub: "<account>:<bot>"

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def running(self) -> bool:
        return self.record.status == BotStatus.RUNNING


def wakes(interest: Interest, event: Event) -> bool:
    """Whether a market event can change a bot that declared ``interest``."""
    if isinstance(event, CandleClosed):
        c = event.candle
        return (interest.every_candle or (interest.below is not None and c.low <= interest.below)
                or (interest.above is not None and c.high >= interest.above)
                or (interest.until is not None and c.close_time >= interest.until))
    if isinstance(event, PriceTicked):
        return ((interest.below is not None and event.price <= interest.below)
                or (interest.above is not None and event.price >= interest.above)
                or (interest.until is not None and event.at >= interest.until))
    if isinstance(event, TimerFired):
        return interest.until is not None and event.at >= interest.until
    return True


def bot_pairs(config: Any) -> tuple[Pair, ...]:
    """The pairs a bot config trades (``markets`` list or a single ``market``)."""
    markets = getattr(config, "markets", None)
    if markets:
        return tuple(Pair.parse(m.pair) for m in markets)
    market = getattr(config, "market", None)
    return (Pair.parse(market.pair),) if market is not None else ()


def bot_indicators(config: Any) -> tuple[IndicatorSpec, ...]:
    rsi = getattr(config, "rsi", None)
    return (IndicatorSpec("rsi", rsi.period, rsi.timeframe),) if rsi is not None else ()


__all__ = ["LiveBot", "bot_indicators", "bot_pairs", "wakes"]
