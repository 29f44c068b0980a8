"""Smart trade settings: one position with a chosen entry, up to four take-profit targets
(trailing on the last), a stop loss (fixed, trailing, moved to breakeven, with timeout)
and a timeout for the whole trade. Percentages are percent; volumes quote; seconds."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sealbot.bots.common.fields import MAX_SECONDS, Amount, Percent
from sealbot.bots.common.markets import FeeSpec, MarketSpec
from sealbot.bots.common.validation import FieldError
from sealbot.bots.dca.config import BOT_ID_PATTERN
from sealbot.domain.market import Direction
from sealbot.domain.money import HUNDRED, ZERO


class EntryType(StrEnum):
    LIMIT = "limit"  # resting order at entry_price
    MARKET = "market"  # at once
    CONDITIONAL = "conditional"  # market order once price reaches entry_price (entry_trigger says from where)
    TRAILING = "trailing"  # from entry_price on, follow the price and enter on a rebound of entry_trailing_deviation %


class Trigger(StrEnum):
    AT_OR_ABOVE = "at_or_above"
    AT_OR_BELOW = "at_or_below"


class SmartTarget(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    amount_percentage: Percent = Field(gt=0, le=100)
    profit_percentage: Percent | None = Field(default=None, gt=0)
    price: Amount | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_way_to_say_where(self) -> SmartTarget:
        if (self.profit_percentage is None) == (self.price is None):
            raise FieldError("price", "give exactly one of price or profit_percentage")
        return self


class SmartTradeConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bot_id: str = Field(pattern=BOT_ID_PATTERN)
    deal_no: int = Field(default=1, ge=0, lt=10**9, description="deal number in the order ids")
    market: MarketSpec
    fees: FeeSpec = FeeSpec()
    direction: Direction = Direction.LONG
    amount: Amount | None = Field(default=None, gt=0, description="base quantity")
    volume: Amount | None = Field(default=None, gt=0, description="quote to spend (long) / sell for (short)")

    entry_type: EntryType = EntryType.MARKET
    entry_price: Amount | None = Field(default=None, gt=0)
    entry_trigger: Trigger | None = None
    entry_trailing_deviation: Percent = Field(default=ZERO, ge=0, lt=100)

    take_profit_steps: list[SmartTarget] = Field(default_factory=list, max_length=4)
    trailing_enabled: bool = False
    trailing_deviation: Percent = Field(default=ZERO, ge=0, lt=100)

    stop_loss_percentage: Percent = Field(default=ZERO, ge=0)
    stop_loss_price: Amount | None = Field(default=None, gt=0)
    stop_loss_timeout_in_seconds: int = Field(default=0, ge=0, le=MAX_SECONDS)
    tsl_enabled: bool = False
    sl_to_breakeven_enabled: bool = False
    timeout_seconds: int = Field(default=0, ge=0, le=MAX_SECONDS,
                                 description="close at market this long after entry; 0 = never")

    @model_validator(mode="after")
    def _settings_can_work(self) -> SmartTradeConfig:
        if (self.amount is None) == (self.volume is None):
            raise FieldError("amount", "give exactly one of amount (base) or volume (quote)")
        if self.entry_type is not EntryType.MARKET and self.entry_price is None:
            raise FieldError("entry_price", f"a {self.entry_type.value} entry needs a price")
        if self.entry_type is EntryType.CONDITIONAL and self.entry_trigger is None:
            raise FieldError("entry_trigger", "a conditional entry needs at_or_above or at_or_below")
        if self.entry_type is EntryType.TRAILING and self.entry_trailing_deviation <= 0:
            raise FieldError("entry_trailing_deviation", "a trailing entry needs a positive deviation")
        _check_targets(self)
        _check_stop(self)
        return self


def _profitable(direction: Direction, price: Decimal, entry: Decimal) -> bool:
    return price > entry if direction is Direction.LONG else price < entry


def _check_targets(cfg: SmartTradeConfig) -> None:
    steps = cfg.take_profit_steps
    if steps:
        total = sum((s.amount_percentage for s in steps), ZERO)
        if total != HUNDRED:
            raise FieldError("take_profit_steps", f"amount_percentage must sum to 100, not {total}")
    for i, step in enumerate(steps):
        if (
            step.price is not None
            and cfg.entry_price is not None
            and not _profitable(cfg.direction, step.price, cfg.entry_price)
        ):
            raise FieldError(f"take_profit_steps.{i}.price", "is not on the profitable side of entry_price")
        if i and _key(cfg, step) <= _key(cfg, steps[i - 1]):
            raise FieldError(f"take_profit_steps.{i}", "targets must move further into profit step by step")
        if (
            cfg.direction is Direction.SHORT
            and step.profit_percentage is not None
            and step.profit_percentage >= HUNDRED
        ):
            raise FieldError(f"take_profit_steps.{i}.profit_percentage", "a short cannot gain 100% or more")
    if cfg.trailing_enabled:
        if not steps:
            raise FieldError("trailing_enabled", "trailing needs a take-profit target")
        if cfg.trailing_deviation <= 0:
            raise FieldError("trailing_deviation", "must be positive when trailing_enabled")


def _key(cfg: SmartTradeConfig, step: SmartTarget) -> Decimal:
    """Orders targets from nearest to furthest (prices and percentages kept apart)."""
    if step.profit_percentage is not None:
        return step.profit_percentage
    assert step.price is not None
    return step.price if cfg.direction is Direction.LONG else -step.price


def _check_stop(cfg: SmartTradeConfig) -> None:
    if cfg.stop_loss_percentage and cfg.stop_loss_price is not None:
        raise FieldError("stop_loss_price", "give stop_loss_percentage or stop_loss_price, not both")
    if cfg.direction is Direction.LONG and cfg.stop_loss_percentage >= HUNDRED:
        raise FieldError("stop_loss_percentage", "a long cannot lose 100% or more")
    stop, entry = cfg.stop_loss_price, cfg.entry_price
    if stop is not None and entry is not None and (_profitable(cfg.direction, stop, entry) or stop == entry):
        raise FieldError("stop_loss_price", "is not on the losing side of entry_price")
    if cfg.tsl_enabled and not cfg.stop_loss_percentage:
        raise FieldError("tsl_enabled", "a trailing stop loss needs stop_loss_percentage")
    has_stop = cfg.stop_loss_percentage or cfg.stop_loss_price is not None or cfg.sl_to_breakeven_enabled
    if cfg.stop_loss_timeout_in_seconds and not has_stop:
        raise FieldError("stop_loss_timeout_in_seconds", "set without a stop loss")
