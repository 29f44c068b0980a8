"""A market's trading rules and fees as config, and the rounding every order goes through.

Bots receive the rules in their config (``MarketSpec``), copied from the exchange's
market metadata by the service that creates the bot, so ``step`` stays pure. Rounding
follows the exchange: amounts floor to the step, buy prices round down and sell prices
up (never worse than asked), and an order below the minimum amount or notional is not
sent at all.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sealbot.bots.common.fields import Amount
from sealbot.domain.market import FeeSchedule, MarketRules, Pair, Side
from sealbot.domain.money import ZERO


class MarketSpec(BaseModel):
    """One pair's precision and limits (from ccxt ``market['precision']`` / ``['limits']``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pair: str = Field(description="BASE/QUOTE, e.g. BTC/USDT")
    tick_size: Amount = Field(default=ZERO, ge=0, description="price increment; 0 = none")
    step_size: Amount = Field(default=ZERO, ge=0, description="amount increment; 0 = none")
    min_amount: Amount = Field(default=ZERO, ge=0)
    min_notional: Amount = Field(default=ZERO, ge=0)

    @field_validator("pair")
    @classmethod
    def _pair_is_valid(cls, value: str) -> str:
        return Pair.parse(value).symbol

    @cached_property
    def rules(self) -> MarketRules:
        return MarketRules(
            pair=Pair.parse(self.pair),
            tick_size=self.tick_size,
            step_size=self.step_size,
            min_amount=self.min_amount,
            min_notional=self.min_notional,
        )


class FeeSpec(BaseModel):
    """Fee rates as fractions (0.001 = 0.1 %). Binance-style: charged in the asset received
    (base on a buy, quote on a sell); the bot sizes exits so fees never leave it short."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    maker: Decimal = Field(default=Decimal("0.001"), ge=0, lt=1)
    taker: Decimal = Field(default=Decimal("0.001"), ge=0, lt=1)

    @cached_property
    def schedule(self) -> FeeSchedule:
        return FeeSchedule(maker=self.maker, taker=self.taker)

    @property
    def worst(self) -> Decimal:
        return max(self.maker, self.taker)


def limit_price(rules: MarketRules, price: Decimal, side: Side) -> Decimal:
    """Tick-rounded limit price that never pays more (buy) or receives less (sell)."""
    return rules.price(price, side)


def tradable(rules: MarketRules, amount: Decimal, price: Decimal) -> bool:
    """Whether an already rounded order clears the exchange's minimums."""
    if amount <= 0 or price <= 0:
        return False
    if rules.min_amount and amount < rules.min_amount:
        return False
    return not (rules.min_notional and amount * price < rules.min_notional)


def base_for_quote(rules: MarketRules, quote: Decimal, price: Decimal) -> Decimal:
    """How much base ``quote`` buys at ``price``, floored to the step (never over budget)."""
    if price <= 0:
        return ZERO
    return rules.amount(quote / price)
