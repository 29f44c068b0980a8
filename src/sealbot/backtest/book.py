"""One pair's simulated order book in a backtest: the orders resting on it, the orders
waiting to reach it, and the account's balances on that pair.

The simulation (``kernel``) walks a pair's candles against its ``Book``; the book's
``band`` is what lets it skip candles that cannot touch any resting order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from sealbot.backtest.data import CandleArrays
from sealbot.backtest.fills import FillModel, Working
from sealbot.domain import CancelOrder, Side
from sealbot.domain.money import ZERO


@dataclass(slots=True)
class Book:
    """One pair's simulated order book and the account's balances on that pair."""

    arrays: CandleArrays
    model: FillModel
    working: dict[str, Working] = field(default_factory=dict)
    arrivals: list[Working] = field(default_factory=list)
    deferred: list[Working] = field(default_factory=list)  # reactions waiting for the segment's end
    cancels: list[CancelOrder] = field(default_factory=list)  # decided on a close, for the next open (segment_end)
    quote: Decimal = ZERO
    base: Decimal = ZERO
    locked: Decimal = ZERO  # quote held by resting buy orders
    locked_base: Decimal = ZERO  # base held by resting sell orders
    last_price: Decimal = ZERO
    index: int = -1
    candles_stepped: int = 0
    balance_log: list[tuple[int, Decimal, Decimal]] = field(default_factory=list)
    parts: int = 3  # the path's k-th point is stamped at k/parts of the timeframe (3: 20/40/60 s of a minute)
    segment: timedelta = timedelta(0)  # the time each path segment takes

    def __post_init__(self) -> None:
        self.segment = timedelta(microseconds=self.arrays.step_ns // (1000 * self.parts))

    def log_balance(self) -> None:
        log = self.balance_log
        if not log or log[-1][1] != self.quote or log[-1][2] != self.base:
            log.append((self.index, self.quote, self.base))

    def band(self) -> tuple[Decimal | None, Decimal | None]:
        """The nearest levels below and above at which a resting order can act."""
        below: Decimal | None = None
        above: Decimal | None = None
        for working in self.working.values():
            level, falls = _level(working)
            if falls:
                below = level if below is None or level > below else below
            else:
                above = level if above is None or level < above else above
        return below, above



def _level(working: Working) -> tuple[Decimal, bool]:
    """The price at which a resting order can next act, and whether the price must fall to it."""
    order = working.order
    if working.is_stop_waiting:
        assert order.stop_price is not None
        return order.stop_price, working.falls_trigger
    assert order.price is not None
    return order.price, order.side is Side.BUY

