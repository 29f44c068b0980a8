"""The signal bot's settings: which markets it trades, how big an entry is, and limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sealbot.bots.common import FeeSpec, MarketSpec
from sealbot.bots.common import parse_config as parse_model
from sealbot.bots.common.fields import MAX_SIGNAL_AGE_SECONDS
from sealbot.bots.grid.fields import BOT_ID_PATTERN, Money
from sealbot.domain import AmountType, InvalidConfig, MarketRules, Pair
from sealbot.domain.money import HUNDRED


class Config(BaseModel):
    """Enter and exit positions when signals arrive (see docs/bots-signal.md).

    ``amount``/``amount_type`` size an entry: a fixed quote amount, a base quantity, or
    a percentage of the free quote balance (last ``BalanceReported``). A signal's own
    ``order {amount, currency_type}`` replaces them when ``use_signal_amount``.
    ``max_position`` caps one position's entry notional in quote.
    ``reverse_on_opposite_entry`` turns an entry against an open position into a
    reversal (close at market, then enter), as a TradingView strategy's alerts expect.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    bot_id: str = Field(pattern=BOT_ID_PATTERN)
    markets: tuple[MarketSpec, ...] = Field(min_length=1, max_length=200)
    fees: FeeSpec = FeeSpec()
    amount: Money = Field(gt=0)
    amount_type: AmountType = AmountType.QUOTE
    use_signal_amount: bool = True
    max_position: Money | None = Field(default=None, gt=0)
    max_open_positions: int | None = Field(default=None, ge=1)
    long_enabled: bool = True
    short_enabled: bool = False
    reverse_on_opposite_entry: bool = False
    max_signal_age_seconds: int | None = Field(default=300, ge=1, le=MAX_SIGNAL_AGE_SECONDS)

    @model_validator(mode="after")
    def _check(self) -> Config:
        if self.amount_type is AmountType.PERCENT_OF_BALANCE and self.amount > HUNDRED:
            raise InvalidConfig("amount", "a percentage of the balance must be at most 100")
        if self.max_position is not None and self.amount_type is AmountType.QUOTE and self.amount > self.max_position:
            raise InvalidConfig("max_position", f"is below the entry amount ({self.amount})")
        if not (self.long_enabled or self.short_enabled):
            raise InvalidConfig("long_enabled", "enable long or short entries, or the bot can never trade")
        seen: set[str] = set()
        for i, market in enumerate(self.markets):
            if market.pair in seen:
                raise InvalidConfig(f"markets.{i}.pair", "appears twice: one position per pair")
            seen.add(market.pair)
        return self

    @property
    def rules(self) -> dict[Pair, MarketRules]:
        """Every market's rules by pair (the backtester and engine read this)."""
        return {m.rules.pair: m.rules for m in self.markets}

    def rules_for(self, pair: Pair | None) -> MarketRules | None:
        """The rules of ``pair``, or of the only market when the signal named none."""
        if pair is None:
            return self.markets[0].rules if len(self.markets) == 1 else None
        for market in self.markets:
            if market.rules.pair == pair:
                return market.rules
        return None


def parse_config(data: Mapping[str, Any]) -> Config:
    """Build a Config or raise ``InvalidConfig`` naming the field and the reason."""
    return parse_model(Config, data)
