"""The simulated exchange a backtested bot trades on: it takes the bot's orders and
cancels, matches them against each pair's ``Book`` at the price the simulation walks,
keeps the account (balances, funds in use) in Decimal, and answers with the events an
exchange sends (``OrderFilled``, ``OrderCanceled``, ``OrderWasRejected``,
``BalanceReported``), queued for the bot.

It does not move the price or call the bot: ``kernel.Simulation`` (a ``Desk``) does,
and drains the queue after every step of the price.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sealbot.backtest.book import Book
from sealbot.backtest.fills import Working, check_order, make_fill, stop_touched
from sealbot.backtest.metrics import OrderRecord
from sealbot.domain import (
    BalanceReported,
    CancelOrder,
    Event,
    Order,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    OrderType,
    OrderWasRejected,
    Pair,
    PlaceOrder,
    Side,
)
from sealbot.domain.money import ZERO

React = Literal["at_fill", "segment_end"]


@dataclass(slots=True, kw_only=True)
class Desk:
    """The order desk of one bot over one or many pairs (one book per pair)."""

    books: dict[Pair, Book]
    react: React = "at_fill"
    records: dict[str, OrderRecord] = field(default_factory=dict)
    fills: list[Any] = field(default_factory=list)
    max_funds: Decimal = ZERO
    total_quote: Decimal = ZERO
    total_locked: Decimal = ZERO
    seq: int = 0
    trades: int = 0
    active: Book | None = None  # the book whose candle is being walked
    price: Decimal = ZERO
    now: datetime | None = None
    closing: bool = False
    walking: bool = False  # inside a path segment (reactions may wait for its end)
    holding: bool = False  # fills are held: the bot hears of them after its close decisions are carried out
    held: list[Event] = field(default_factory=list)
    queue: deque[Event] = field(default_factory=deque)  # events for the bot, in order
    wallet: dict[str, Decimal] | None = None  # holdings per asset, when balances are modelled
    reserved: dict[str, Decimal] = field(default_factory=dict)  # set aside by resting orders

    # -- orders -----------------------------------------------------------------------

    def _enter(self, book: Book, working: Working) -> None:
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
            working.reserved = _needs(book, order, limit)
            self.reserved[asset] = self.reserved.get(asset, ZERO) + working.reserved
        self._note_funds()
        self.records[order.client_id.text].status = OrderStatus.OPEN

    def _execute(self, book: Book, working: Working, price: Decimal, *, is_maker: bool) -> None:
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
            self._queue_balances([pair.base, pair.quote], self.now)

    def _unlock(self, book: Book, working: Working) -> None:
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

    def _apply_cancel(self, book: Book, command: CancelOrder) -> None:
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

    def _affordable(self, book: Book, working: Working) -> bool:
        """Whether the account's free balance covers the order, as the exchange checks it:
        a buy needs its quote (at its limit, or the market price for a market order), a
        sell its base, each with the fee when the fee is charged in that asset."""
        order, pair = working.order, book.model.pair
        price = order.price if order.price is not None else book.model.market_price(order.side, self.price)
        asset = pair.quote if order.side is Side.BUY else pair.base
        return self._free(asset) >= _needs(book, order, price)

    def _queue_balances(self, assets: list[str], at: datetime) -> None:
        """``BalanceReported`` for ``assets`` (free balances), so %-of-balance sizing stays pure."""
        events = self.held if self.holding else self.queue
        for asset in assets:
            events.append(BalanceReported(asset, self._free(asset), at))

    def _note_funds(self) -> None:
        """Funds the bot needs now: quote in buy orders or spent and not yet back, plus, for
        sells of base it does not hold (a short), that base at the pair's current price."""
        funds = max(ZERO, self.total_locked - self.total_quote)
        for book in self.books.values():
            if book.locked_base > book.base:
                funds += (book.locked_base - book.base) * book.last_price
        if funds > self.max_funds:
            self.max_funds = funds


def _needs(book: Book, order: Order, price: Decimal) -> Decimal:
    """What an order takes from the asset it spends (quote for a buy at ``price``, base for
    a sell), with the fee when the exchange charges it in that same asset (``fee_currency``
    ``quote`` on a buy, ``base`` on a sell), at the higher of the maker and taker rates,
    since a resting order may still fill as either. Without the fee the order was accepted
    on its notional alone and its fill drove the balance below zero."""
    model = book.model
    spent = order.amount * price if order.side is Side.BUY else order.amount
    fee_asset = model.pair.quote if order.side is Side.BUY else model.pair.base
    (maker_fee, currency), (taker_fee, _) = (model.fee(order.side, price, order.amount, m) for m in (True, False))
    return spent + max(maker_fee, taker_fee) if currency == fee_asset else spent
