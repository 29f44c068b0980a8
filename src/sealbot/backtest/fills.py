"""The fill model: how an order book would have treated sealbot's orders inside a candle.

A candle only says where price went, not in which order, so the backtester assumes the
path a careful trader assumes (the same as most backtesters):

    previous close -> open -> low -> high -> close     if close >= open (a green candle)
    previous close -> open -> high -> low -> close     if close <  open (a red candle)

Price moves continuously along each segment. On that path:

* **Resting limit orders** fill at their own limit price, as maker, when the price
  trades *strictly through* them (a buy needs a lower price, a sell a higher one);
  with ``limit_fill="touch"`` trading *at* the limit is enough. The first segment,
  previous close -> open, is the gap between candles: on a 24/7 market the price
  walked through it, so an order resting there fills at its limit, not at the open.
* **Market orders** fill at the price of the moment plus slippage (buys pay
  ``price * (1 + slippage)`` rounded up to the tick, sells receive
  ``price * (1 - slippage)`` rounded down), as taker. A bot's decision on a candle's
  close reaches the market at the next candle's open, so market orders (and limit
  orders that cross on arrival) placed on ``CandleClosed`` fill at the next open.
  Orders placed in reaction to a fill inside a candle take effect at that fill's price
  and can fill on the rest of the same candle's path (``react="at_fill"``, the
  default); with ``react="segment_end"`` they reach the book at the end of the path
  segment where the fill happened, which is when an engine polling an exchange that
  replays this path (simex) sees the fill and answers it. That mode also meets each open
  as such an engine does: cancels decided on the close reach the market after the gap
  (not at the close), and the bot hears of the gap's fills and of its new orders' fills
  only once those orders went out.
* **A limit order that crosses on arrival** (a buy above the price of the moment)
  fills at once at that price, as taker. ``limit_maker`` (post-only) orders that
  would cross are rejected, as exchanges do.
* **Spread** (``spread_ticks``, default 0): a synthetic book around the price of the
  moment, bid = price - n ticks (never below one tick), ask = price + n ticks, as
  simex quotes it. Market orders take at the ask (buy) or bid (sell), then slippage
  applies; a limit order crosses on arrival when it reaches the ask (buy) or bid
  (sell) and takes there. With n >= 1 a limit order at the price of the moment rests,
  exactly as with n = 0 (simex with ``spread_ticks=0`` would take it: use n >= 1 to
  model simex).
* **Stop orders** (``stop_loss_limit``, ``take_profit_limit``) trigger when the price
  *touches* ``stop_price``: a sell stop-loss (and a buy take-profit) when the price
  falls to it, a buy stop-loss (and a sell take-profit) when it rises to it. Once
  triggered the order is a limit order at ``price``: it fills at once if that limit
  is marketable at the trigger price, else it rests.
* Orders the path reaches at the same point fill in the order they were placed.
* **Times**: fills in the gap and at the open are stamped with the candle's open time;
  fills on the k-th intra-candle segment (k = 1, 2, 3) at open time + k/3 of the
  timeframe (20 s, 40 s, 60 s into a 1m candle), or + k/4 with
  ``point_times="quarters"`` (15, 30, 45 s, as simex holds each point). The bot hears of
  a candle's close after every fill inside it.
* **Fees**: maker or taker rate from ``FeeSchedule``, charged in the currency the
  exchange charges: ``received`` (Binance: base on a buy, quote on a sell),
  ``quote`` or ``base``. Fees are exact unless ``fee_decimals`` is set: then each is
  rounded *up* to that many decimals, as exchanges charge them (Binance and simex: 8).
* **Rules**: amounts and prices must already respect ``MarketRules`` (step, tick,
  min/max amount and notional); an order that breaks one is rejected like the
  exchange would (``OrderRejected`` naming the rule), never silently rounded.
* **Balances** are checked only when the backtest models them (``run(balances=...)``):
  an order the free balance cannot cover is rejected ("insufficient balance").
* **Not modelled**: partial fills (an order fills completely or not at all), order
  book depth and queue position (a touch in ``touch`` mode fills completely), latency
  inside a candle, funding and borrow costs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_UP, Decimal
from enum import StrEnum
from typing import Literal

from sealbot.domain import FeeSchedule, Fill, MarketRules, Order, OrderRejected, OrderType, Pair, Side
from sealbot.domain.money import ONE, ZERO, ceil_to_step, floor_to_step

LimitFill = Literal["through", "touch"]
_STOPS = (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)


class FeeCurrency(StrEnum):
    """In which asset the exchange takes the fee."""

    RECEIVED = "received"  # Binance spot default: base on buys, quote on sells
    QUOTE = "quote"
    BASE = "base"


@dataclass(frozen=True, slots=True)
class FillModel:
    """Everything the fill model needs to know about one market."""

    rules: MarketRules
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    fee_currency: FeeCurrency = FeeCurrency.RECEIVED
    slippage: Decimal = ZERO  # a fraction: 0.0005 is 0.05 % against market orders
    limit_fill: LimitFill = "through"
    spread_ticks: int = 0  # half-spread of the synthetic book, in ticks (simex's spread_ticks)
    fee_decimals: int | None = None  # round each fee up to this many decimals (None: exact)

    @property
    def pair(self) -> Pair:
        return self.rules.pair

    def fee(self, side: Side, price: Decimal, amount: Decimal, is_maker: bool) -> tuple[Decimal, str]:
        """(fee, currency) of one execution."""
        rate = self.fees.maker if is_maker else self.fees.taker
        in_base = self.fee_currency is FeeCurrency.BASE or (
            self.fee_currency is FeeCurrency.RECEIVED and side is Side.BUY
        )
        fee, currency = (amount * rate, self.pair.base) if in_base else (price * amount * rate, self.pair.quote)
        if self.fee_decimals is not None:
            fee = fee.quantize(Decimal(1).scaleb(-self.fee_decimals), rounding=ROUND_UP)
        return fee, currency

    def taker_price(self, side: Side, price: Decimal) -> Decimal:
        """The best ask (buy) or bid (sell) of the synthetic book around ``price``. The bid
        never goes below one tick, as simex quotes it (a price must stay positive)."""
        if not self.spread_ticks:
            return price
        half = self.rules.tick_size * self.spread_ticks
        return price + half if side is Side.BUY else max(self.rules.tick_size, price - half)

    def market_price(self, side: Side, price: Decimal) -> Decimal:
        """What a market order gets at ``price``: the spread and slippage against it, on the tick."""
        price = self.taker_price(side, price)
        if side is Side.BUY:
            return ceil_to_step(price * (ONE + self.slippage), self.rules.tick_size)
        return floor_to_step(price * (ONE - self.slippage), self.rules.tick_size)

    def crosses_on_arrival(self, side: Side, limit: Decimal, price: Decimal, mode: LimitFill) -> bool:
        """Does a limit order arriving with the market at ``price`` take liquidity? Without a
        spread by ``limit_crosses``; with one when it reaches the ask (buy) or bid (sell)."""
        if not self.spread_ticks:
            return limit_crosses(side, limit, price, mode)
        taker = self.taker_price(side, price)
        return limit >= taker if side is Side.BUY else limit <= taker


@dataclass(slots=True)
class Working:
    """An order the simulated market holds: placed, not yet filled or canceled."""

    order: Order
    seq: int
    triggered: bool = False
    reserved: Decimal = ZERO  # what the account set aside for it while it rests (with balances)

    @property
    def is_market(self) -> bool:
        return self.order.type is OrderType.MARKET

    @property
    def is_stop_waiting(self) -> bool:
        return self.order.type in _STOPS and not self.triggered

    @property
    def falls_trigger(self) -> bool:
        """A stop that triggers when the price falls to it."""
        kind, side = self.order.type, self.order.side
        return (kind is OrderType.STOP_LOSS_LIMIT and side is Side.SELL) or (
            kind is OrderType.TAKE_PROFIT_LIMIT and side is Side.BUY
        )


def limit_crosses(side: Side, limit: Decimal, price: Decimal, mode: LimitFill) -> bool:
    """Would a limit order at ``limit`` execute with the market at ``price``?"""
    if side is Side.BUY:
        return limit > price or (mode == "touch" and limit == price)
    return limit < price or (mode == "touch" and limit == price)


def stop_touched(working: Working, price: Decimal) -> bool:
    stop = working.order.stop_price
    assert stop is not None
    return price <= stop if working.falls_trigger else price >= stop


def next_on_segment(
    orders: list[Working], start: Decimal, end: Decimal, mode: LimitFill, *, down: bool | None = None
) -> tuple[Working, Decimal] | None:
    """The first resting order the price reaches moving from ``start`` to ``end``, and
    the price at which that happens (its limit, or its stop for a waiting stop).

    ``down`` is the direction of the whole segment being walked; it matters when the walk
    has already reached ``end`` (``start == end``) and more orders sit at that very point.
    Orders marketable at ``start`` itself are not this function's business: the caller
    executes them when they arrive or trigger.
    """
    best: tuple[Working, Decimal] | None = None
    if down is None:
        if end == start:
            return None
        down = end < start
    for working in orders:
        order = working.order
        if working.is_market:
            continue
        if working.is_stop_waiting:
            stop = order.stop_price
            assert stop is not None
            if working.falls_trigger != down or not (min(start, end) <= stop <= max(start, end)):
                continue
            point = stop
        else:
            limit = order.price
            assert limit is not None
            wanted = Side.BUY if down else Side.SELL
            reached = limit <= start if down else limit >= start
            if order.side is not wanted or not reached or not limit_crosses(wanted, limit, end, mode):
                continue
            point = limit
        if best is None or (point > best[1] if down else point < best[1]) or (
            point == best[1] and working.seq < best[0].seq
        ):
            best = (working, point)
    return best


def make_fill(
    model: FillModel, working: Working, price: Decimal, is_maker: bool, at: datetime, trade_no: int
) -> Fill:
    order = working.order
    fee, currency = model.fee(order.side, price, order.amount, is_maker)
    return Fill(
        client_id=order.client_id,
        pair=order.pair,
        side=order.side,
        price=price,
        amount=order.amount,
        fee=fee,
        fee_currency=currency,
        at=at,
        trade_id=f"bt{trade_no}",
        is_maker=is_maker,
    )


def check_order(model: FillModel, order: Order, reference: Decimal) -> None:
    """Raise ``OrderRejected`` if the exchange would refuse the order. Market orders are
    checked for notional at ``reference`` (the price they will meet)."""
    price = order.price if order.type is not OrderType.MARKET and order.price is not None else reference
    if order.type is not OrderType.MARKET and order.price is None:
        raise OrderRejected("price", f"a {order.type} order needs a price")
    if order.type in _STOPS and order.stop_price is None:
        raise OrderRejected("stop_price", f"a {order.type} order needs a stop price")
    if order.type is OrderType.MARKET:
        # A market order's price is the market's: only amount and notional apply.
        rules = MarketRules(
            model.rules.pair,
            ZERO,
            model.rules.step_size,
            model.rules.min_amount,
            model.rules.max_amount,
            model.rules.min_notional,
            model.rules.max_notional,
        )
        rules.check(order.amount, price)
        return
    model.rules.check(order.amount, price)
    if order.stop_price is not None:
        model.rules.check(order.amount, order.stop_price)
