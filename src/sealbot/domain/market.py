"""Markets: pairs, sides, order types and the exchange's trading rules for a pair."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from sealbot.domain.errors import OrderRejected
from sealbot.domain.money import ZERO, ceil_to_step, floor_to_step, round_to_step

_PAIR_FORMS = re.compile(r"^([A-Z0-9]{1,20})[/_\-:]([A-Z0-9]{1,20})$")


@dataclass(frozen=True, slots=True, order=True)
class Pair:
    """A spot market, ``BASE/QUOTE`` as ccxt writes it."""

    base: str
    quote: str

    def __post_init__(self) -> None:
        for part, name in ((self.base, "base"), (self.quote, "quote")):
            if not part or not part.isalnum() or part.upper() != part:
                raise ValueError(f"pair {name}: {part!r} is not an upper-case asset symbol")

    @classmethod
    def parse(cls, text: str) -> Pair:
        """Accept ``BTC/USDT``, ``BTC-USDT``, ``BTC_USDT`` (case-insensitive)."""
        match = _PAIR_FORMS.match(text.strip().upper())
        if not match:
            raise ValueError(f"pair: {text!r} is not of the form BASE/QUOTE")
        return cls(match.group(1), match.group(2))

    @classmethod
    def parse_quote_base(cls, text: str) -> Pair:
        """3Commas-style ``QUOTE_BASE`` (``USDT_BTC`` is BTC/USDT)."""
        quote, sep, base = text.strip().upper().partition("_")
        if not sep:
            raise ValueError(f"pair: {text!r} is not of the form QUOTE_BASE")
        return cls(base, quote)

    @property
    def symbol(self) -> str:
        return f"{self.base}/{self.quote}"

    @property
    def compact(self) -> str:
        """Binance's form, ``BTCUSDT``."""
        return f"{self.base}{self.quote}"

    def __str__(self) -> str:
        return self.symbol


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class Direction(StrEnum):
    """Which way a deal makes money: long buys first, short sells first."""

    LONG = "long"
    SHORT = "short"

    @property
    def entry_side(self) -> Side:
        return Side.BUY if self is Direction.LONG else Side.SELL

    @property
    def exit_side(self) -> Side:
        return self.entry_side.opposite


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"
    LIMIT_MAKER = "limit_maker"
    STOP_LOSS_LIMIT = "stop_loss_limit"
    TAKE_PROFIT_LIMIT = "take_profit_limit"


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


@dataclass(frozen=True, slots=True)
class MarketRules:
    """The exchange's precision and limits for one pair, taken from its market metadata.

    ``tick_size`` is the price increment, ``step_size`` the amount increment; zero
    means the exchange sets no such rule.
    """

    pair: Pair
    tick_size: Decimal
    step_size: Decimal
    min_amount: Decimal = ZERO
    max_amount: Decimal = ZERO
    min_notional: Decimal = ZERO
    max_notional: Decimal = ZERO

    def price(self, price: Decimal, side: Side | None = None) -> Decimal:
        """Round a limit price to the tick: a buy rounds down and a sell up, so rounding
        never makes an order pay more or receive less than the price it was asked for."""
        if side is Side.BUY:
            return floor_to_step(price, self.tick_size)
        if side is Side.SELL:
            return ceil_to_step(price, self.tick_size)
        return round_to_step(price, self.tick_size)

    def amount(self, amount: Decimal) -> Decimal:
        """Round an amount down to the step: never more than the funds behind it."""
        return floor_to_step(amount, self.step_size)

    def check(self, amount: Decimal, price: Decimal) -> None:
        """Raise ``OrderRejected`` naming the rule an (already rounded) order breaks."""
        if amount <= 0:
            raise OrderRejected("amount", "must be positive")
        if price <= 0:
            raise OrderRejected("price", "must be positive")
        if self.step_size and amount != floor_to_step(amount, self.step_size):
            raise OrderRejected("amount", f"{amount} is not a multiple of the step size {self.step_size}")
        if self.tick_size and price != round_to_step(price, self.tick_size):
            raise OrderRejected("price", f"{price} is not a multiple of the tick size {self.tick_size}")
        if self.min_amount and amount < self.min_amount:
            raise OrderRejected("amount", f"{amount} is below the minimum {self.min_amount}")
        if self.max_amount and amount > self.max_amount:
            raise OrderRejected("amount", f"{amount} is above the maximum {self.max_amount}")
        notional = amount * price
        if self.min_notional and notional < self.min_notional:
            raise OrderRejected("notional", f"{notional} is below the minimum {self.min_notional}")
        if self.max_notional and notional > self.max_notional:
            raise OrderRejected("notional", f"{notional} is above the maximum {self.max_notional}")


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Maker/taker fee rates as fractions (0.001 is 0.1 %)."""

    maker: Decimal = Decimal("0.001")
    taker: Decimal = Decimal("0.001")
