"""Run a bot's very own ``step`` over recorded candles, with the fill model of ``fills``.

The simulator is the bot's whole world: it turns candles into ``CandleClosed`` events,
carries out ``PlaceOrder``/``CancelOrder`` against a simulated order book (one per
pair), and answers with ``OrderFilled``/``OrderCanceled``/``OrderRejected`` events,
exactly as the engine does live (and outside events, such as indicator values and
recorded signals, at their time). It keeps the account (quote and base balances) in
Decimal.

Speed comes from ``interest``: before each candle it asks the bot which levels it is
waiting for, widens that band by the resting orders' own limit and stop prices, and
jumps (``search.next_touch``) to the first candle that reaches the band or the
bot's ``until`` time. The bot is not called for the candles in between; by the
``BotKind`` contract they could not change it. ``skip=False`` steps every candle,
which gives the same result (a test pins that down) and is how a bot that breaks the
contract would be caught.

Several pairs run through one bot instance (the sealbot DCA bot is multi-pair by
itself): at each moment the pairs' candles are walked in pair order, then their
``CandleClosed`` events are delivered. Skipping across pairs uses each pair's resting
orders; a bot band (``below``/``above``) cannot say which pair it means, so with
several pairs such a band means every candle is stepped. An order for another pair
than the one being walked reaches that pair's book at its next open.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import pandas as pd

from sealbot.backtest.data import CandleArrays, infer_timeframe
from sealbot.backtest.fills import (
    FeeCurrency,
    FillModel,
    LimitFill,
    Working,
    check_order,
    limit_crosses,
    make_fill,
    next_on_segment,
    stop_touched,
)
from sealbot.backtest.indicators import events_for, wants_indicators
from sealbot.backtest.metrics import OrderRecord, PairOutcome, Result, SimOutcome, build_result
from sealbot.backtest.search import next_touch, widen_above, widen_below
from sealbot.bots.base import BotKind
from sealbot.domain import (
    BalanceReported,
    CancelOrder,
    CandleClosed,
    DealChanged,
    Event,
    FeeSchedule,
    MarketRules,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    OrderType,
    OrderWasRejected,
    Pair,
    PlaceOrder,
    RaiseAlert,
    Side,
    StopBot,
    TimerFired,
)
from sealbot.domain.money import ZERO

React = Literal["at_fill", "segment_end"]
PointTimes = Literal["thirds", "quarters"]
MAX_EVENTS_PER_CANDLE = 10_000  # a bot that keeps answering itself is a bug, not a strategy


class BotLoopError(RuntimeError):
    """A bot produced events without end on one candle."""


@dataclass(slots=True)
class _Book:
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


@dataclass(slots=True)
class _Sim:
    """One bot instance over one or many pairs' candles (one book per pair)."""

    kind: BotKind[Any, Any]
    config: Any
    books: dict[Pair, _Book]
    skip: bool
    react: React = "at_fill"
    state: Any = None
    records: dict[str, OrderRecord] = field(default_factory=dict)
    fills: list[Any] = field(default_factory=list)
    deals: dict[int, Any] = field(default_factory=dict)
    alerts: list[RaiseAlert] = field(default_factory=list)
    stopped: str | None = None
    max_funds: Decimal = ZERO
    total_quote: Decimal = ZERO
    total_locked: Decimal = ZERO
    seq: int = 0
    trades: int = 0
    steps: int = 0
    active: _Book | None = None  # the book whose candle is being walked
    price: Decimal = ZERO
    now: datetime | None = None
    closing: bool = False
    walking: bool = False  # inside a path segment (reactions may wait for its end)
    holding: bool = False  # fills are held: the bot hears of them after its close decisions are carried out
    held: list[Event] = field(default_factory=list)
    fired_until: datetime | None = None
    queue: deque[Event] = field(default_factory=deque)
    draining: bool = False
    feed: list[Any] = field(default_factory=list)  # outside events (indicators, signals), by time
    fed: int = 0
    wallet: dict[str, Decimal] | None = None  # holdings per asset, when balances are modelled
    reserved: dict[str, Decimal] = field(default_factory=dict)  # set aside by resting orders

    # -- the loop -------------------------------------------------------------------

    def run(self) -> SimOutcome:
        self.state = self.kind.initial_state(self.config)
        books = list(self.books.values())
        if self.wallet is not None and any(len(b.arrays) for b in books):
            self.now = min(b.arrays.time(0) for b in books if len(b.arrays))
            self._report_balances(sorted(self.wallet), self.now)
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

    def _walk_candle(self, book: _Book, i: int) -> None:
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

    def _close_candles(self, due: list[tuple[_Book, int]]) -> None:
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

    # -- order book -----------------------------------------------------------------

    def _walk(self, book: _Book, start: Decimal, end: Decimal, at: datetime) -> None:
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

    def _walk_segment(self, book: _Book, start: Decimal, end: Decimal, at: datetime) -> None:
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

    def _open_like_the_engine(self, book: _Book, start: Decimal, open_: Decimal, at: datetime) -> None:
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

    def _arrive(self, book: _Book, price: Decimal, at: datetime) -> None:
        """Orders decided on an earlier close reach the book at this open."""
        self.price, self.now, book.last_price = price, at, price
        # One at a time, each taken off the waiting list only as it enters (see _walk).
        while book.arrivals and self.stopped is None:
            self._enter(book, book.arrivals.pop(0))
            self._drain()

    def _enter(self, book: _Book, working: Working) -> None:
        """An order meets the book at the current price: execute, trigger or rest."""
        order, price, model = working.order, self.price, book.model
        if self.wallet is not None and not self._affordable(book, working):
            self._reject(working, "insufficient balance")
            return
        if working.is_market:
            self._execute(book, working, model.market_price(order.side, price), is_maker=False)
            return
        if working.is_stop_waiting and stop_touched(working, price):
            working.triggered = True
        limit = order.price
        assert limit is not None
        mode = "touch" if working.triggered else model.limit_fill
        if not working.is_stop_waiting and model.crosses_on_arrival(order.side, limit, price, mode):
            if order.type is OrderType.LIMIT_MAKER:
                self._reject(working, "post-only order would take liquidity")
                return
            self._execute(book, working, model.taker_price(order.side, price), is_maker=False)
            return
        book.working[order.client_id.text] = working
        if order.side is Side.BUY:
            book.locked += limit * order.amount
            self.total_locked += limit * order.amount
        else:
            book.locked_base += order.amount
        if self.wallet is not None:
            asset = book.model.pair.quote if order.side is Side.BUY else book.model.pair.base
            working.reserved = limit * order.amount if order.side is Side.BUY else order.amount
            self.reserved[asset] = self.reserved.get(asset, ZERO) + working.reserved
        self._note_funds()
        self.records[order.client_id.text].status = OrderStatus.OPEN

    def _execute(self, book: _Book, working: Working, price: Decimal, *, is_maker: bool) -> None:
        order = working.order
        key = order.client_id.text
        if book.working.pop(key, None) is not None:
            self._unlock(book, working)
        assert self.now is not None
        self.trades += 1
        fill = make_fill(book.model, working, price, is_maker, self.now, self.trades)
        self.fills.append(fill)
        notional = fill.price * fill.amount
        before = book.quote
        if order.side is Side.BUY:
            book.base += fill.amount
            book.quote -= notional
        else:
            book.base -= fill.amount
            book.quote += notional
        if fill.fee_currency == book.model.pair.base:
            book.base -= fill.fee
        else:
            book.quote -= fill.fee
        self.total_quote += book.quote - before
        self.records[key].filled(fill)
        self._note_funds()
        (self.held if self.holding else self.queue).append(OrderFilled(fill, ZERO))
        if self.wallet is not None:
            pair = book.model.pair
            sign = 1 if order.side is Side.BUY else -1
            self.wallet[pair.base] = self.wallet.get(pair.base, ZERO) + sign * fill.amount
            self.wallet[pair.quote] = self.wallet.get(pair.quote, ZERO) - sign * notional
            self.wallet[fill.fee_currency] = self.wallet.get(fill.fee_currency, ZERO) - fill.fee
            self._report_balances([pair.base, pair.quote], self.now, deliver=False)

    def _unlock(self, book: _Book, working: Working) -> None:
        order = working.order
        if working.reserved:
            asset = book.model.pair.quote if order.side is Side.BUY else book.model.pair.base
            self.reserved[asset] -= working.reserved
            working.reserved = ZERO
        if order.side is Side.BUY and order.price is not None:
            book.locked -= order.price * order.amount
            self.total_locked -= order.price * order.amount
        elif order.side is Side.SELL:
            book.locked_base -= order.amount

    def _reject(self, working: Working, reason: str) -> None:
        record = self.records[working.order.client_id.text]
        record.status, record.reason, record.closed_at = OrderStatus.REJECTED, reason, self.now
        assert self.now is not None
        self.queue.append(OrderWasRejected(working.order.client_id, reason, self.now))

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

    def _cancel(self, command: CancelOrder) -> None:
        key = command.client_id.text
        record = self.records.get(key)
        book = self.books.get(record.pair) if record is not None else None
        if book is None:
            return  # unknown: the exchange answers with an error, nothing changes
        if self.closing and self.react == "segment_end":
            book.cancels.append(command)  # reaches the market at the next open, after the gap
            return
        self._apply_cancel(book, command)

    def _apply_cancel(self, book: _Book, command: CancelOrder) -> None:
        key = command.client_id.text
        record = self.records.get(key)
        working = book.working.pop(key, None)
        if working is not None:
            self._unlock(book, working)
        else:
            waiting = book.arrivals + book.deferred
            working = next((w for w in waiting if w.order.client_id.text == key), None)
            if working is None:
                return  # already final: nothing changes
            (book.arrivals if working in book.arrivals else book.deferred).remove(working)
        assert record is not None and self.now is not None
        record.status, record.closed_at = OrderStatus.CANCELED, self.now
        self._note_funds()
        self.queue.append(OrderCanceled(command.client_id, self.now))

    def _place(self, command: PlaceOrder) -> None:
        order = command.order
        key = order.client_id.text
        assert self.now is not None
        if key in self.records:
            self.queue.append(OrderWasRejected(order.client_id, "duplicate client order id", self.now))
            return
        self.seq += 1
        working = Working(order, self.seq)
        self.records[key] = OrderRecord.of(order, self.now)
        book = self.books.get(order.pair)
        if book is None:
            self._reject(working, f"this backtest has no market {order.pair}")
            return
        reference = self.price if book is self.active else book.arrays.close_price(max(book.index, 0))
        try:
            check_order(book.model, order, reference)
        except OrderRejected as exc:
            self._reject(working, str(exc))
            return
        if self.closing or book is not self.active:
            book.arrivals.append(working)
        elif self.walking:
            book.deferred.append(working)
        else:
            self._enter(book, working)

    # -- accounting -------------------------------------------------------------------

    def _free(self, asset: str) -> Decimal:
        assert self.wallet is not None
        return self.wallet.get(asset, ZERO) - self.reserved.get(asset, ZERO)

    def _affordable(self, book: _Book, working: Working) -> bool:
        """Whether the account's free balance covers the order, as the exchange checks it:
        a buy needs its quote (at its limit, or the market price for a market order), a
        sell its base."""
        order, pair = working.order, book.model.pair
        if order.side is Side.SELL:
            return self._free(pair.base) >= order.amount
        price = order.price if order.price is not None else book.model.market_price(Side.BUY, self.price)
        return self._free(pair.quote) >= order.amount * price

    def _report_balances(self, assets: list[str], at: datetime, *, deliver: bool = True) -> None:
        """``BalanceReported`` for ``assets`` (free balances), so %-of-balance sizing stays pure."""
        events = self.held if self.holding else self.queue
        for asset in assets:
            events.append(BalanceReported(asset, self._free(asset), at))
        if deliver:
            self._drain()

    def _note_funds(self) -> None:
        """Funds the bot needs now: quote in buy orders or spent and not yet back, plus, for
        sells of base it does not hold (a short), that base at the pair's current price."""
        funds = max(ZERO, self.total_locked - self.total_quote)
        for book in self.books.values():
            if book.locked_base > book.base:
                funds += (book.locked_base - book.base) * book.last_price
        if funds > self.max_funds:
            self.max_funds = funds


def _max(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return b if a is None else a if b is None else max(a, b)


def _min(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return b if a is None else a if b is None else min(a, b)


def _level(working: Working) -> tuple[Decimal, bool]:
    """The price at which a resting order can next act, and whether the price must fall to it."""
    order = working.order
    if working.is_stop_waiting:
        assert order.stop_price is not None
        return order.stop_price, working.falls_trigger
    assert order.price is not None
    return order.price, order.side is Side.BUY


def _ns(moment: datetime) -> int:
    return int(pd.Timestamp(moment).value)


def _config_rules(config: Any) -> Mapping[Pair, MarketRules] | MarketRules | None:
    rules = getattr(config, "rules", None)
    return rules if isinstance(rules, MarketRules | Mapping) else None


def _config_fees(config: Any) -> FeeSchedule | None:
    fees = getattr(config, "fees", None)
    schedule = getattr(fees, "schedule", fees)
    return schedule if isinstance(schedule, FeeSchedule) else None


def run(
    kind: BotKind[Any, Any],
    config: Any,
    candles: Mapping[Pair, pd.DataFrame | CandleArrays],
    *,
    fees: FeeSchedule | None = None,
    rules: Mapping[Pair, MarketRules] | MarketRules | None = None,
    slippage: Decimal = ZERO,
    fee_currency: FeeCurrency = FeeCurrency.RECEIVED,
    limit_fill: LimitFill = "through",
    spread_ticks: int = 0,
    fee_decimals: int | None = None,
    react: React = "at_fill",
    point_times: PointTimes = "thirds",
    timeframe: str | None = None,
    skip: bool = True,
    initial_capital: Decimal | None = None,
    events: Sequence[Event] | None = None,
    balances: Mapping[str, Decimal] | None = None,
) -> Result:
    """Backtest ``config`` of the bot module ``kind`` (anything with ``initial_state``,
    ``step``, ``interest``) over ``candles`` (one clean frame or ``CandleArrays`` per
    pair; one bot instance sees all pairs, like a multi-pair bot live).

    ``rules`` (tick/step/min notional per pair) and ``fees`` default to the config's own
    (``config.rules``, ``config.fees.schedule``, as the sealbot bots carry them), else
    no rounding rules and 0.1 % fees. ``initial_capital`` is the base for percentages,
    returns and drawdown (default: the most funds the run used). ``events`` are outside
    events with an ``at`` time (``IndicatorUpdated``, ``SignalReceived``): each is
    delivered just before the ``CandleClosed`` of the first candle closing at or after
    its time, and wakes a skipping bot. ``None`` (default) derives the indicator events
    the config asks for (``indicators.events_for``: RSI for an RSI start condition), as
    the engine would compute them live; ``()`` sends none. ``balances`` (asset -> amount)
    models the account: orders its free balance cannot cover are rejected ("insufficient
    balance"), and the bot gets ``BalanceReported`` at the start and after each fill;
    None (default) leaves funds unlimited. ``spread_ticks`` quotes a synthetic book of
    that half-spread around the price (market and crossing orders take at its ask/bid);
    ``fee_decimals`` rounds each fee up to that precision (simex and Binance: 8).
    ``react`` says when orders placed in reaction to a fill inside a path segment reach
    the book: ``"at_fill"`` (default) at once, at the fill's price, or ``"segment_end"``
    at the segment's end, as the engine trading on simex places them. ``point_times``
    stamps the path's points after the open at thirds of the timeframe (default: 20, 40,
    60 s into a minute) or at ``"quarters"`` (15, 30, 45 s: simex holds each point a
    quarter, so the close comes before the next open). With all set as simex is
    (``spread_ticks=1``, ``fee_decimals=8``, ``react="segment_end"``,
    ``point_times="quarters"``), the backtest trades like the engine on simex, to the
    second (docs/parity.md). Deterministic: the same inputs give the same Result."""
    if not candles:
        raise ValueError("candles: give at least one pair")
    if spread_ticks < 0:
        raise ValueError(f"spread_ticks: must be 0 or more, not {spread_ticks}")
    if fee_decimals is not None and fee_decimals < 0:
        raise ValueError(f"fee_decimals: must be 0 or more, not {fee_decimals}")
    if react not in ("at_fill", "segment_end"):
        raise ValueError(f"react: must be 'at_fill' or 'segment_end', not {react!r}")
    if point_times not in ("thirds", "quarters"):
        raise ValueError(f"point_times: must be 'thirds' or 'quarters', not {point_times!r}")
    fees = fees or _config_fees(config) or FeeSchedule()
    rules = rules if rules is not None else _config_rules(config)
    books: dict[Pair, _Book] = {}
    for pair in sorted(candles):
        data = candles[pair]
        pair_rules = rules.get(pair) if isinstance(rules, Mapping) else rules
        if pair_rules is None or pair_rules.pair != pair:
            pair_rules = MarketRules(pair, ZERO, ZERO)
        if isinstance(data, CandleArrays):
            arrays = data
        else:
            tick = pair_rules.tick_size or None
            arrays = CandleArrays(pair, timeframe or infer_timeframe(data), data, tick)
        model = FillModel(pair_rules, fees, fee_currency, slippage, limit_fill, spread_ticks, fee_decimals)
        books[pair] = _Book(arrays, model, parts=3 if point_times == "thirds" else 4)
    if events is None:
        frames = {pair: book.arrays.frame() for pair, book in books.items()} if wants_indicators(config) else {}
        events = events_for(config, frames) if frames else []
    feed = sorted(events, key=lambda e: e.at)  # stable: same-time events keep their order
    wallet = None
    if balances is not None:
        wallet = {asset: ZERO for pair in books for asset in (pair.base, pair.quote)} | dict(balances)
    outcome = _Sim(kind, config, books, skip, react, feed=feed, wallet=wallet).run()
    return build_result(outcome, initial_capital=initial_capital)
