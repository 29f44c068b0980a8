"""The backtest's time loop: one bot instance stepped over one or many pairs' candles.

``Simulation`` walks each candle's price path (gap from the previous close, open,
low/high, high/low, close) against the pairs' books, lets its ``Desk`` (``orders``)
carry out what the path meets, delivers the resulting events to the bot's own ``step``
and carries out the commands it returns. Between the candles the bot's ``interest``
and the books' bands say cannot matter it jumps (``search.next_touch``); see
``simulate`` for the whole contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from sealbot.backtest.book import Book
from sealbot.backtest.fills import limit_crosses, next_on_segment
from sealbot.backtest.metrics import PairOutcome, SimOutcome
from sealbot.backtest.orders import Desk
from sealbot.backtest.search import next_touch, widen_above, widen_below
from sealbot.bots.base import BotKind
from sealbot.domain import (
    CancelOrder,
    CandleClosed,
    DealChanged,
    Event,
    PlaceOrder,
    RaiseAlert,
    StopBot,
    TimerFired,
)

MAX_EVENTS_PER_CANDLE = 10_000  # a bot that keeps answering itself is a bug, not a strategy


class BotLoopError(RuntimeError):
    """A bot produced events without end on one candle."""


@dataclass(slots=True, kw_only=True)
class Simulation(Desk):
    """One bot instance over one or many pairs' candles (one book per pair)."""

    kind: BotKind[Any, Any]
    config: Any
    skip: bool
    state: Any = None
    deals: dict[int, Any] = field(default_factory=dict)
    alerts: list[RaiseAlert] = field(default_factory=list)
    stopped: str | None = None
    steps: int = 0
    fired_until: datetime | None = None
    draining: bool = False
    feed: list[Any] = field(default_factory=list)  # outside events (indicators, signals), by time
    fed: int = 0

    # -- the loop -------------------------------------------------------------------

    def run(self) -> SimOutcome:
        self.state = self.kind.initial_state(self.config)
        books = list(self.books.values())
        if self.wallet is not None and any(len(b.arrays) for b in books):
            self.now = min(b.arrays.time(0) for b in books if len(b.arrays))
            self._queue_balances(sorted(self.wallet), self.now)
            self._drain()
        single = len(books) == 1
        close_ns = [b.arrays.open_ns + b.arrays.step_ns for b in books]
        pos = [0] * len(books)
        while self.stopped is None:
            if all(p >= len(b.arrays) for b, p in zip(books, pos, strict=True)):
                break
            nxt = list(pos)
            if self.skip and not any(b.arrivals or b.cancels for b in books):
                interest = self.kind.interest(self.config, self.state)
                if not interest.every_candle and (single or (interest.below is None and interest.above is None)):
                    until = interest.until if interest.until != self.fired_until else None
                    if self.fed < len(self.feed):  # the next outside event wakes the bot too
                        due_at = self.feed[self.fed].at
                        until = due_at if until is None else min(until, due_at)
                    for k, book in enumerate(books):
                        n = len(book.arrays)
                        if pos[k] >= n:
                            continue
                        below, above = book.band()
                        if single:
                            below = _max(below, interest.below)
                            above = _min(above, interest.above)
                        stop = n
                        if until is not None:
                            stop = max(pos[k], int(close_ns[k].searchsorted(_ns(until), side="left")))
                        arrays = book.arrays
                        nxt[k] = next_touch(arrays.low, arrays.high, pos[k], stop,
                                            widen_below(below, arrays.tick), widen_above(above, arrays.tick))
            times = [int(b.arrays.open_ns[i]) for b, i in zip(books, nxt, strict=True) if i < len(b.arrays)]
            if not times:
                break
            moment = min(times)
            due = [k for k, (b, i) in enumerate(zip(books, nxt, strict=True))
                   if i < len(b.arrays) and int(b.arrays.open_ns[i]) == moment]
            for k in due:
                self._walk_candle(books[k], nxt[k])
                if self.stopped is not None:
                    break
            if self.stopped is None:
                self._close_candles([(books[k], nxt[k]) for k in due])
            for k, book in enumerate(books):  # everything up to this moment is consumed
                pos[k] = nxt[k] + 1 if k in due else int(book.arrays.open_ns.searchsorted(moment, side="right"))
        for book in books:
            book.log_balance()
        return SimOutcome(
            books=[
                PairOutcome(b.arrays.pair, b.arrays, b.quote, b.base, b.balance_log, b.candles_stepped) for b in books
            ],
            orders=list(self.records.values()),
            fills=self.fills,
            deals=sorted(self.deals.values(), key=lambda d: (d.opened_at, d.no)),
            alerts=self.alerts,
            stopped=self.stopped,
            max_funds=self.max_funds,
            steps=self.steps,
            state=self.state,
            balances=dict(sorted(self.wallet.items())) if self.wallet is not None else None,
        )

    def _walk_candle(self, book: Book, i: int) -> None:
        """The candle's path: the gap from the previous close, arrivals at the open, then
        open -> low/high -> high/low -> close."""
        arrays = book.arrays
        candle = arrays.candle(i)
        book.index, book.candles_stepped = i, book.candles_stepped + 1
        self.active, self.closing = book, False
        start = arrays.close_price(i - 1) if i > 0 else candle.open
        t0 = candle.open_time
        if self.react == "segment_end":
            self._open_like_the_engine(book, start, candle.open, t0)
        else:
            self._walk(book, start, candle.open, t0)
            self._arrive(book, candle.open, t0)
        if not book.working:
            return  # nothing rests on the book: the path cannot fill anything
        first, second = (candle.low, candle.high) if candle.close >= candle.open else (candle.high, candle.low)
        segment = book.segment
        points = (candle.open, first, second, candle.close)
        for k in range(3):
            if self.stopped is not None:
                return
            self._walk(book, points[k], points[k + 1], t0 + segment * (k + 1))

    def _close_candles(self, due: list[tuple[Book, int]]) -> None:
        """Tell the bot the candles closed (after a due timer), in pair order."""
        self.active, self.closing = None, True
        for book, i in due:
            candle = book.arrays.candle(i)
            self.price, self.now, book.last_price = candle.close, candle.close_time, candle.close
            until = self.kind.interest(self.config, self.state).until
            if until is not None and until != self.fired_until and until <= candle.close_time:
                self.fired_until = until
                self._deliver(TimerFired(candle.close_time))
            while self.fed < len(self.feed) and self.feed[self.fed].at <= candle.close_time and self.stopped is None:
                self.fed += 1
                self._deliver(self.feed[self.fed - 1])
            self._deliver(CandleClosed(candle))
            if self.stopped is not None:
                break
        for book, _ in due:
            book.log_balance()

    # -- the price path -------------------------------------------------------------

    def _walk(self, book: Book, start: Decimal, end: Decimal, at: datetime) -> None:
        """Move the price from ``start`` to ``end``, executing what it meets in order.
        With ``react="segment_end"`` orders the bot places in reaction reach the book at
        ``end``, as a live engine polling the exchange after each path point places them."""
        if start == end or not book.working:
            return
        self.walking = self.react == "segment_end"
        try:
            self._walk_segment(book, start, end, at)
        finally:
            self.walking = False
        if book.deferred and self.stopped is None:
            self.price, self.now, book.last_price = end, at, end
            # One at a time, each taken off the waiting list only as it enters: a fill of
            # an earlier one may make the bot cancel a later one, which must find it waiting.
            while book.deferred and self.stopped is None:
                self._enter(book, book.deferred.pop(0))
                self._drain()

    def _walk_segment(self, book: Book, start: Decimal, end: Decimal, at: datetime) -> None:
        mode, down = book.model.limit_fill, end < start
        current = start
        while self.stopped is None:
            hit = next_on_segment(list(book.working.values()), current, end, mode, down=down)
            if hit is None:
                return
            working, point = hit
            current, self.price, self.now, book.last_price = point, point, at, point
            if working.is_stop_waiting:
                working.triggered = True
                limit = working.order.price
                assert limit is not None
                if limit_crosses(working.order.side, limit, point, "touch"):
                    self._execute(book, working, point, is_maker=False)
            else:
                self._execute(book, working, point, is_maker=True)
            self._drain()

    def _open_like_the_engine(self, book: Book, start: Decimal, open_: Decimal, at: datetime) -> None:
        """The open as an engine polling an exchange meets it. It hears of the close only
        now, when the gap to this open has traded; it sends what the bot decided on the
        close — new orders, then cancels (which find an order the gap filled already
        final) — and hears at once of refusals and cancels, but of fills only when it next
        polls: then of the gap's and the new orders' fills, in the order they happened."""
        self.holding = True
        try:
            self._walk(book, start, open_, at)
            self._arrive(book, open_, at)
        finally:
            self.holding = False
        while book.cancels and self.stopped is None:
            self._apply_cancel(book, book.cancels.pop(0))
            self._drain()
        held, self.held = self.held, []
        if self.stopped is None:
            self.queue.extend(held)
            self._drain()

    def _arrive(self, book: Book, price: Decimal, at: datetime) -> None:
        """Orders decided on an earlier close reach the book at this open."""
        self.price, self.now, book.last_price = price, at, price
        # One at a time, each taken off the waiting list only as it enters (see _walk).
        while book.arrivals and self.stopped is None:
            self._enter(book, book.arrivals.pop(0))
            self._drain()

    # -- the bot ----------------------------------------------------------------------

    def _deliver(self, event: Event) -> None:
        self.queue.append(event)
        self._drain()

    def _drain(self) -> None:
        """Deliver queued events in order. Re-entrant calls (an order filled while the
        commands of a step are still being carried out) leave the work to the outer
        loop, so every command of one step is applied before the next event."""
        if self.draining:
            return
        self.draining = True
        try:
            handled = 0
            while self.queue and self.stopped is None:
                event = self.queue.popleft()
                handled += 1
                if handled > MAX_EVENTS_PER_CANDLE:
                    raise BotLoopError(f"more than {MAX_EVENTS_PER_CANDLE} events at {self.now}")
                self.steps += 1
                self.state, commands = self.kind.step(self.config, self.state, event)
                for command in commands:
                    self._command(command)
        finally:
            self.draining = False

    def _command(self, command: Any) -> None:
        assert self.now is not None
        if isinstance(command, PlaceOrder):
            self._place(command)
        elif isinstance(command, CancelOrder):
            self._cancel(command)
        elif isinstance(command, DealChanged):
            self.deals[command.deal.no] = command.deal
        elif isinstance(command, RaiseAlert):
            self.alerts.append(command)
        elif isinstance(command, StopBot):
            self.stopped = command.reason


def _max(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return b if a is None else a if b is None else max(a, b)


def _min(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return b if a is None else a if b is None else min(a, b)



def _ns(moment: datetime) -> int:
    return int(pd.Timestamp(moment).value)

