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

The parts, one job each: ``book`` (one pair's order book and balances), ``orders``
(the simulated exchange desk: matching, the account, the events it answers with),
``kernel`` (the time loop, each candle's price path, the bot's event queue) and this
module (the entry point: options checked, books built, the result assembled).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

import pandas as pd

from sealbot.backtest.book import Book
from sealbot.backtest.data import CandleArrays, infer_timeframe
from sealbot.backtest.fills import FeeCurrency, FillModel, LimitFill
from sealbot.backtest.indicators import events_for, wants_indicators
from sealbot.backtest.kernel import MAX_EVENTS_PER_CANDLE, BotLoopError, Simulation
from sealbot.backtest.metrics import Result, build_result
from sealbot.backtest.orders import React
from sealbot.bots.base import BotKind
from sealbot.domain import Event, FeeSchedule, InvalidConfig, MarketRules, Pair
from sealbot.domain.money import ZERO

__all__ = ["MAX_EVENTS_PER_CANDLE", "MAX_SLIPPAGE", "BotLoopError", "PointTimes", "React", "Result", "check_slippage",
           "run"]

PointTimes = Literal["thirds", "quarters"]


MAX_SLIPPAGE = Decimal("0.1")


def check_slippage(slippage: Decimal) -> None:
    """Slippage is a cost against market orders, as a fraction of the price: a negative
    one would pay the bot for trading (``--slippage=-1`` once made a week of DCA look
    profitable), and above ``MAX_SLIPPAGE`` (10 %) it is almost surely a percentage typed
    as a fraction (``1`` for 1 %); 1 or more would sell at a price of zero or below."""
    if not slippage.is_finite() or not ZERO <= slippage <= MAX_SLIPPAGE:
        raise InvalidConfig("slippage", f"must be a fraction from 0 to {MAX_SLIPPAGE} (0.001 is 0.1 %), "
                                        f"not {slippage}")


def config_rules(config: Any) -> Mapping[Pair, MarketRules] | MarketRules | None:
    """The market rules a sealbot config carries: ``config.rules`` (DCA, grid, signal
    bot) or its one ``market``'s (smart trade)."""
    rules = getattr(config, "rules", None)
    if rules is None:
        rules = getattr(getattr(config, "market", None), "rules", None)
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
    (``config_rules``, ``config.fees.schedule``, as the sealbot bots carry them), else
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
    check_slippage(slippage)
    if spread_ticks < 0:
        raise ValueError(f"spread_ticks: must be 0 or more, not {spread_ticks}")
    if fee_decimals is not None and fee_decimals < 0:
        raise ValueError(f"fee_decimals: must be 0 or more, not {fee_decimals}")
    if react not in ("at_fill", "segment_end"):
        raise ValueError(f"react: must be 'at_fill' or 'segment_end', not {react!r}")
    if point_times not in ("thirds", "quarters"):
        raise ValueError(f"point_times: must be 'thirds' or 'quarters', not {point_times!r}")
    fees = fees or _config_fees(config) or FeeSchedule()
    rules = rules if rules is not None else config_rules(config)
    books: dict[Pair, Book] = {}
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
        books[pair] = Book(arrays, model, parts=3 if point_times == "thirds" else 4)
    _check_timeframes(list(books.values()))
    if events is None:
        frames = {pair: book.arrays.frame() for pair, book in books.items()} if wants_indicators(config) else {}
        events = events_for(config, frames) if frames else []
    feed = sorted(events, key=lambda e: e.at)  # stable: same-time events keep their order
    wallet = None
    if balances is not None:
        wallet = {asset: ZERO for pair in books for asset in (pair.base, pair.quote)} | dict(balances)
    outcome = Simulation(kind=kind, config=config, books=books, skip=skip, react=react, feed=feed,
                         wallet=wallet).run()
    return build_result(outcome, initial_capital=initial_capital)


def _check_timeframes(books: list[Book]) -> None:
    """Pairs of different timeframes may not trade over the same time. The kernel walks
    candles in the order they open and tells the bot each close as it walks it, so a 5m
    candle's close (its price at 00:05) reached the bot before the 1m candles of 00:01 to
    00:04 on the other pair: the bot saw the future. Apart in time (one file after the
    other) they run as each pair alone would."""
    spans = [(int(b.arrays.open_ns[0]), int(b.arrays.open_ns[-1]) + b.arrays.step_ns, b.arrays)
             for b in books if len(b.arrays)]
    for i, (start, end, arrays) in enumerate(spans):
        for other_start, other_end, other in spans[i + 1:]:
            if arrays.step_ns != other.step_ns and start < other_end and other_start < end:
                raise InvalidConfig("timeframe", f"{arrays.pair} ({arrays.timeframe}) and {other.pair} "
                                                 f"({other.timeframe}) overlap in time: resample them to one "
                                                 f"timeframe ({max(arrays, other, key=lambda a: a.step_ns).timeframe} "
                                                 f"or coarser)")
