"""Run a bot's very own ``step`` over recorded candles, with the fill model of ``fills``.

The simulator is the bot's whole world: it turns candles into ``CandleClosed`` events,
carries out ``PlaceOrder``/``CancelOrder`` against a simulated order book (one per
pair), and answers with ``OrderFilled``/``OrderCanceled``/``OrderRejected`` events,
exactly as the engine does live. It keeps the account (quote and base balances) in
Decimal.

Speed comes from ``interest``: before each candle it asks the bot which levels it is
waiting for, widens that band by the resting orders' own limit and stop prices, and
jumps (``search.next_touch``) to the first candle that reaches the band or the
bot's ``until`` time. The bot is not called for the candles in between; by the
``BotKind`` contract they could not change it. ``skip=False`` steps every candle,
which gives the same result (a test pins that down) and is how a bot that breaks the
contract would be caught.

Several pairs run as one bot instance per pair (``config_for_pair`` makes each pair's
config; by default a dataclass/pydantic config gets its ``pair`` field replaced), with
one shared account for the metrics.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

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
from sealbot.backtest.metrics import OrderRecord, PairOutcome, Result, build_result
from sealbot.backtest.search import next_touch, widen_above, widen_below
from sealbot.bots.base import BotKind
from sealbot.domain import (
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

MAX_EVENTS_PER_CANDLE = 10_000  # a bot that keeps answering itself is a bug, not a strategy


class BotLoopError(RuntimeError):
    """A bot produced events without end on one candle."""


@dataclass(slots=True)
class _PairSim:
    """One bot instance on one pair's candles, with its own simulated order book."""

    kind: BotKind[Any, Any]
    config: Any
    arrays: CandleArrays
    model: FillModel
    skip: bool
    state: Any = None
    working: dict[str, Working] = field(default_factory=dict)
    arrivals: list[Working] = field(default_factory=list)
    records: dict[str, OrderRecord] = field(default_factory=dict)
    fills: list[Any] = field(default_factory=list)
    deals: dict[int, Any] = field(default_factory=dict)
    alerts: list[RaiseAlert] = field(default_factory=list)
    stopped: str | None = None
    quote: Decimal = ZERO
    base: Decimal = ZERO
    locked: Decimal = ZERO
    max_funds: Decimal = ZERO
    balance_log: list[tuple[int, Decimal, Decimal]] = field(default_factory=list)
    funds_log: list[tuple[int, int, Decimal]] = field(default_factory=list)  # (candle, seq, funds)
    seq: int = 0
    trades: int = 0
    steps: int = 0
    candles_stepped: int = 0
    index: int = 0
    price: Decimal = ZERO
    now: datetime | None = None
    closing: bool = False
    fired_until: datetime | None = None
    queue: deque[Event] = field(default_factory=deque)
    draining: bool = False

    # -- the loop -------------------------------------------------------------------

    def run(self) -> PairOutcome:
        self.state = self.kind.initial_state(self.config)
        arrays, n = self.arrays, len(self.arrays)
        close_ns = arrays.open_ns + arrays.step_ns
        i = 0
        while i < n and self.stopped is None:
            if self.skip and not self.arrivals:
                interest = self.kind.interest(self.config, self.state)
                if not interest.every_candle:
                    below, above = interest.below, interest.above
                    for working in self.working.values():
                        level, falls = _level(working)
                        if falls:
                            below = level if below is None or level > below else below
                        else:
                            above = level if above is None or level < above else above
                    stop = n
                    until = interest.until
                    if until is not None and until != self.fired_until:
                        stop = max(i, int(close_ns.searchsorted(_ns(until), side="left")))
                    i = next_touch(
                        arrays.low,
                        arrays.high,
                        i,
                        stop,
                        widen_below(below, arrays.tick),
                        widen_above(above, arrays.tick),
                    )
                    if i >= n:
                        break
            self._candle(i)
            i += 1
        self._log_balance()
        return PairOutcome(
            pair=arrays.pair,
            arrays=arrays,
            orders=list(self.records.values()),
            fills=self.fills,
            deals=sorted(self.deals.values(), key=lambda d: (d.opened_at, d.no)),
            alerts=self.alerts,
            stopped=self.stopped,
            quote=self.quote,
            base=self.base,
            max_funds=self.max_funds,
            balance_log=self.balance_log,
            funds_log=self.funds_log,
            steps=self.steps,
            candles_stepped=self.candles_stepped,
        )

    def _candle(self, i: int) -> None:
        arrays = self.arrays
        candle = arrays.candle(i)
        self.index, self.closing, self.candles_stepped = i, False, self.candles_stepped + 1
        start = arrays.close_price(i - 1) if i > 0 else candle.open
        t0 = candle.open_time
        # The gap from the previous close to this open, walked by orders already resting.
        self._walk(start, candle.open, t0)
        self._arrive(candle.open, t0)
        first, second = (candle.low, candle.high) if candle.close >= candle.open else (candle.high, candle.low)
        third = timedelta(seconds=arrays.step_ns / 3e9)
        points = (candle.open, first, second, candle.close)
        for k in range(3):
            if self.stopped is not None:
                return
            self._walk(points[k], points[k + 1], t0 + third * (k + 1))
        if self.stopped is not None:
            return
        self.closing, self.price, self.now = True, candle.close, candle.close_time
        interest_until = self.kind.interest(self.config, self.state).until
        if interest_until is not None and interest_until != self.fired_until and interest_until <= candle.close_time:
            self.fired_until = interest_until
            self._deliver(TimerFired(candle.close_time))
        self._deliver(CandleClosed(candle))
        self._log_balance()

    # -- order book -----------------------------------------------------------------

    def _walk(self, start: Decimal, end: Decimal, at: datetime) -> None:
        """Move the price from ``start`` to ``end``, executing what it meets in order."""
        mode = self.model.limit_fill
        current = start
        while self.stopped is None:
            hit = next_on_segment(list(self.working.values()), current, end, mode)
            if hit is None:
                return
            working, point = hit
            current, self.price, self.now = point, point, at
            if working.is_stop_waiting:
                working.triggered = True
                limit = working.order.price
                assert limit is not None
                if limit_crosses(working.order.side, limit, point, "touch"):
                    self._execute(working, point, is_maker=False)
            else:
                self._execute(working, point, is_maker=True)
            self._drain()

    def _arrive(self, price: Decimal, at: datetime) -> None:
        """Orders decided on the previous close reach the book at this open."""
        self.price, self.now = price, at
        arrivals, self.arrivals = self.arrivals, []
        for working in arrivals:
            if working.order.client_id.text not in self.records or self.stopped is not None:
                continue
            self._enter(working)
            self._drain()

    def _enter(self, working: Working) -> None:
        """An order meets the book at the current price: execute, trigger or rest."""
        order, price = working.order, self.price
        if working.is_market:
            self._execute(working, self.model.market_price(order.side, price), is_maker=False)
            return
        if working.is_stop_waiting and stop_touched(working, price):
            working.triggered = True
        limit = order.price
        assert limit is not None
        if not working.is_stop_waiting and limit_crosses(order.side, limit, price, "touch" if working.triggered else
                                                          self.model.limit_fill):
            if order.type is OrderType.LIMIT_MAKER:
                self._reject(working, "post-only order would take liquidity")
                return
            self._execute(working, price, is_maker=False)
            return
        self.working[order.client_id.text] = working
        if order.side is Side.BUY:
            self.locked += limit * order.amount
            self._note_funds()
        self.records[order.client_id.text].status = OrderStatus.OPEN

    def _execute(self, working: Working, price: Decimal, *, is_maker: bool) -> None:
        order = working.order
        key = order.client_id.text
        if self.working.pop(key, None) is not None and order.side is Side.BUY and order.price is not None:
            self.locked -= order.price * order.amount
        assert self.now is not None
        self.trades += 1
        fill = make_fill(self.model, working, price, is_maker, self.now, self.trades)
        self.fills.append(fill)
        notional = fill.price * fill.amount
        pair = self.model.pair
        if order.side is Side.BUY:
            self.base += fill.amount
            self.quote -= notional
        else:
            self.base -= fill.amount
            self.quote += notional
        if fill.fee_currency == pair.base:
            self.base -= fill.fee
        else:
            self.quote -= fill.fee
        self.records[key].filled(fill)
        self._note_funds()
        self.queue.append(OrderFilled(fill, ZERO))

    def _reject(self, working: Working, reason: str) -> None:
        record = self.records[working.order.client_id.text]
        record.status, record.reason = OrderStatus.REJECTED, reason
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
            self._drain_queue()
        finally:
            self.draining = False

    def _drain_queue(self) -> None:
        handled = 0
        while self.queue and self.stopped is None:
            event = self.queue.popleft()
            handled += 1
            if handled > MAX_EVENTS_PER_CANDLE:
                raise BotLoopError(f"{self.arrays.pair}: more than {MAX_EVENTS_PER_CANDLE} events at {self.now}")
            self.steps += 1
            self.state, commands = self.kind.step(self.config, self.state, event)
            for command in commands:
                self._command(command)

    def _command(self, command: Any) -> None:
        assert self.now is not None
        if isinstance(command, PlaceOrder):
            self._place(command)
        elif isinstance(command, CancelOrder):
            key = command.client_id.text
            working = self.working.pop(key, None)
            if working is not None:
                if working.order.side is Side.BUY and working.order.price is not None:
                    self.locked -= working.order.price * working.order.amount
            else:
                working = next((w for w in self.arrivals if w.order.client_id.text == key), None)
                if working is None:
                    return  # unknown or already final: the exchange answers with an error, nothing changes
                self.arrivals.remove(working)
            record = self.records[key]
            record.status, record.closed_at = OrderStatus.CANCELED, self.now
            self._note_funds()
            self.queue.append(OrderCanceled(command.client_id, self.now))
        elif isinstance(command, DealChanged):
            self.deals[command.deal.no] = command.deal
        elif isinstance(command, RaiseAlert):
            self.alerts.append(command)
        elif isinstance(command, StopBot):
            self.stopped = command.reason

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
        if order.pair != self.model.pair:
            self._reject(working, f"this backtest has no market {order.pair}")
            return
        try:
            check_order(self.model, order, self.price)
        except OrderRejected as exc:
            self._reject(working, str(exc))
            return
        if self.closing:
            self.arrivals.append(working)
        else:
            self._enter(working)

    # -- accounting -------------------------------------------------------------------

    def _note_funds(self) -> None:
        funds = self.locked - self.quote
        if funds > self.max_funds:
            self.max_funds = funds
        self.funds_log.append((self.index, len(self.funds_log), funds))

    def _log_balance(self) -> None:
        log = self.balance_log
        if not log or log[-1][1] != self.quote or log[-1][2] != self.base:
            log.append((self.index, self.quote, self.base))


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


def _default_config_for_pair(config: Any, pair: Pair) -> Any:
    if hasattr(config, "model_copy"):
        return config.model_copy(update={"pair": pair})
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.replace(config, pair=pair)
    return config


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
    timeframe: str | None = None,
    skip: bool = True,
    initial_capital: Decimal | None = None,
    config_for_pair: Callable[[Any, Pair], Any] | None = None,
) -> Result:
    """Backtest ``config`` of the bot module ``kind`` (anything with ``initial_state``,
    ``step``, ``interest``) over ``candles`` (one clean frame or ``CandleArrays`` per
    pair). ``rules`` gives each pair's tick/step/min-notional (none: no rounding rules);
    ``initial_capital`` is the base for percentages, returns and drawdown (default: the
    maximum funds the run used). Deterministic: the same inputs give the same Result."""
    if not candles:
        raise ValueError("candles: give at least one pair")
    fees = fees or FeeSchedule()
    make_config = config_for_pair or (_default_config_for_pair if len(candles) > 1 else (lambda c, _p: c))
    outcomes = []
    for pair in sorted(candles):
        data = candles[pair]
        pair_rules = rules.get(pair) if isinstance(rules, Mapping) else rules
        pair_rules = pair_rules or MarketRules(pair, ZERO, ZERO)
        if isinstance(data, CandleArrays):
            arrays = data
        else:
            tick = pair_rules.tick_size or None
            arrays = CandleArrays(pair, timeframe or infer_timeframe(data), data, tick)
        model = FillModel(pair_rules, fees, fee_currency, slippage, limit_fill)
        sim = _PairSim(kind, make_config(config, pair), arrays, model, skip)
        outcomes.append(sim.run())
    return build_result(outcomes, initial_capital=initial_capital)
