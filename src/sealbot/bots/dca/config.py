"""The DCA bot's settings, named as in 3Commas' public API wherever the concept matches,
so exported bots import field for field. Impossible settings are refused with the field
path and the reason (``parse_config`` turns them into ``InvalidConfig``).

Units: percentages are percent (``1`` = 1 %), volumes are quote currency, times are
seconds. The market's rules and fees travel in the config (``markets``, ``fees``): the
service that creates the bot copies them from the exchange's market metadata.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sealbot.bots.common.executor import Market
from sealbot.bots.common.fields import MAX_SECONDS, Amount, Coefficient, Percent
from sealbot.bots.common.markets import FeeSpec, MarketSpec
from sealbot.bots.common.validation import FieldError
from sealbot.domain.candles import timeframe_seconds
from sealbot.domain.market import Direction, MarketRules, OrderType, Pair
from sealbot.domain.money import HUNDRED, MAX_AMOUNT, MAX_PERCENT, ZERO

BOT_ID_PATTERN = r"^[A-Za-z0-9]{1,12}$"


class TakeProfitType(StrEnum):
    BASE = "base"  # profit % of the base order volume
    TOTAL = "total"  # profit % of everything bought


class StopLossType(StrEnum):
    STOP_LOSS = "stop_loss"
    STOP_LOSS_AND_DISABLE_BOT = "stop_loss_and_disable_bot"


class StartCondition(StrEnum):
    IMMEDIATELY = "immediately"  # 3Commas "ASAP"
    SIGNAL = "signal"
    RSI = "rsi"


class ProfitCurrency(StrEnum):
    QUOTE = "quote"
    BASE = "base"


class TakeProfitStep(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    amount_percentage: Percent = Field(gt=0, le=100, description="share of the position, %")
    profit_percentage: Percent = Field(gt=0, description="profit at which this share is sold, %")


class CustomSafetyStep(BaseModel):
    """One hand-placed safety order: its deviation from the base order price and its volume."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    price_deviation: Percent = Field(gt=0, description="% from the base order price")
    volume: Amount = Field(gt=0, description="quote volume")


class RsiCondition(BaseModel):
    """Open a deal when RSI(period) on ``timeframe`` is below (long) / above (short) ``value``.
    The engine computes RSI with talipp and feeds ``IndicatorUpdated`` events."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeframe: str = "1h"
    period: int = Field(default=14, ge=2, le=500)
    value: Percent = Field(default=Decimal(30), gt=0, lt=100)

    @model_validator(mode="after")
    def _timeframe_is_valid(self) -> RsiCondition:
        try:
            timeframe_seconds(self.timeframe)
        except ValueError as exc:
            raise FieldError("timeframe", str(exc).split(": ", 1)[-1]) from None
        return self


class DcaConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bot_id: str = Field(pattern=BOT_ID_PATTERN, description="1-12 letters/digits, part of every order id")
    name: str = ""
    strategy: Direction = Direction.LONG
    markets: list[MarketSpec] = Field(min_length=1, description="one pair: single-pair bot; more: multi-pair")
    fees: FeeSpec = FeeSpec()

    base_order_volume: Amount = Field(gt=0)
    base_order_type: OrderType = OrderType.MARKET
    safety_order_volume: Amount = Field(default=ZERO, ge=0)
    safety_order_step_percentage: Percent = Field(default=Decimal(1), gt=0)
    max_safety_orders: int = Field(default=0, ge=0, le=200)
    active_safety_orders_count: int = Field(default=1, ge=0)
    martingale_volume_coefficient: Coefficient = Field(default=Decimal(1), gt=0)
    martingale_step_coefficient: Coefficient = Field(default=Decimal(1), gt=0)
    custom_safety_steps: list[CustomSafetyStep] = Field(default_factory=list)

    take_profit: Percent = Field(default=Decimal(1), gt=0)
    take_profit_type: TakeProfitType = TakeProfitType.TOTAL
    take_profit_steps: list[TakeProfitStep] = Field(default_factory=list, max_length=4)
    trailing_enabled: bool = False
    trailing_deviation: Percent = Field(default=ZERO, ge=0)

    stop_loss_percentage: Percent = Field(default=ZERO, ge=0)
    stop_loss_type: StopLossType = StopLossType.STOP_LOSS
    stop_loss_timeout_in_seconds: int = Field(default=0, ge=0, le=MAX_SECONDS)
    tsl_enabled: bool = False
    sl_to_breakeven_enabled: bool = False

    cooldown: int = Field(default=0, ge=0, le=MAX_SECONDS,
                          description="seconds after a deal closes before the next opens")
    min_price: Amount | None = Field(default=None, gt=0)
    max_price: Amount | None = Field(default=None, gt=0)
    max_active_deals: int = Field(default=1, ge=1, le=1000)
    start_condition: StartCondition = StartCondition.IMMEDIATELY
    rsi: RsiCondition | None = None
    profit_currency: ProfitCurrency = ProfitCurrency.QUOTE

    @model_validator(mode="after")
    def _settings_can_work(self) -> DcaConfig:
        _check_markets(self)
        _check_safety(self)
        _check_take_profit(self)
        _check_stop_loss(self)
        if self.min_price is not None and self.max_price is not None and self.min_price >= self.max_price:
            raise FieldError("min_price", f"must be below max_price ({self.max_price})")
        if self.start_condition is StartCondition.RSI and self.rsi is None:
            raise FieldError("rsi", "start_condition rsi needs an rsi condition")
        if self.base_order_type not in (OrderType.MARKET, OrderType.LIMIT):
            raise FieldError("base_order_type", "must be market or limit")
        # Built once here, where a bot is loaded, rather than on its first step: thousands
        # of bots started together take their first step on the same candle.
        _ = self.executor_markets, self.safety_steps
        return self

    @cached_property
    def rules(self) -> dict[Pair, MarketRules]:
        return {m.rules.pair: m.rules for m in self.markets}

    @cached_property
    def executor_markets(self) -> dict[Pair, Market]:
        """What the shared executor needs per pair, built once per config."""
        return {
            pair: Market(bot_id=self.bot_id, rules=rules, fee_rate=self.fees.worst)
            for pair, rules in self.rules.items()
        }

    @property
    def multi_pair(self) -> bool:
        return len(self.markets) > 1

    @property
    def safety_count(self) -> int:
        return len(self.custom_safety_steps) if self.custom_safety_steps else self.max_safety_orders

    @cached_property
    def safety_steps(self) -> tuple[tuple[Decimal, Decimal], ...]:
        """(deviation % from the base order price, quote volume) of each safety order.

        3Commas' formulas: the n-th deviation is step * (1 + s + ... + s^(n-1)) and the
        n-th volume is volume * v^(n-1), with s, v the step and volume coefficients."""
        if self.custom_safety_steps:
            return tuple((s.price_deviation, s.volume) for s in self.custom_safety_steps)
        steps: list[tuple[Decimal, Decimal]] = []
        deviation, gap, volume = ZERO, self.safety_order_step_percentage, self.safety_order_volume
        for _ in range(self.max_safety_orders):
            deviation += gap
            steps.append((deviation, volume))
            gap *= self.martingale_step_coefficient
            volume *= self.martingale_volume_coefficient
        return tuple(steps)

    @property
    def max_funds(self) -> Decimal:
        """Quote one deal can commit (base order plus every safety order)."""
        return self.base_order_volume + sum((v for _, v in self.safety_steps), ZERO)


def _check_markets(cfg: DcaConfig) -> None:
    seen: set[str] = set()
    for i, market in enumerate(cfg.markets):
        if market.pair in seen:
            raise FieldError(f"markets.{i}.pair", f"{market.pair} is listed twice")
        seen.add(market.pair)
        if market.min_notional and cfg.base_order_volume < market.min_notional:
            raise FieldError("base_order_volume", f"below the minimum order of {market.min_notional} on {market.pair}")


def _check_safety(cfg: DcaConfig) -> None:
    # The default (1) stays valid for a bot without safety orders (the documented default
    # max_safety_orders is 0): there is simply none to place.
    if cfg.active_safety_orders_count > max(cfg.safety_count, 1):
        raise FieldError("active_safety_orders_count", f"exceeds the number of safety orders ({cfg.safety_count})")
    if cfg.max_safety_orders and not cfg.custom_safety_steps and cfg.safety_order_volume <= 0:
        raise FieldError("safety_order_volume", "must be positive when safety orders are used")
    if cfg.custom_safety_steps and cfg.max_safety_orders not in (0, len(cfg.custom_safety_steps)):
        raise FieldError("max_safety_orders", "must equal the number of custom_safety_steps (or be 0)")
    previous = ZERO
    for i, step in enumerate(cfg.custom_safety_steps):
        if step.price_deviation <= previous:
            raise FieldError(f"custom_safety_steps.{i}.price_deviation", "deviations must increase step by step")
        previous = step.price_deviation
    if cfg.strategy is Direction.LONG and cfg.safety_steps and cfg.safety_steps[-1][0] >= HUNDRED:
        field = "custom_safety_steps" if cfg.custom_safety_steps else "safety_order_step_percentage"
        last = cfg.safety_steps[-1][0]
        raise FieldError(field, f"the last safety order would sit {last:.4f}% below the base price (>= 100%)")
    _check_safety_bounds(cfg)


def _check_safety_bounds(cfg: DcaConfig) -> None:
    """Martingale coefficients compound over up to 200 orders: each value is bounded, but
    what they make together must be too, or the deal's orders cannot be rounded to a step."""
    if cfg.custom_safety_steps:
        volume_field = deviation_field = "custom_safety_steps"
    else:
        big_volume = cfg.martingale_volume_coefficient > 1
        volume_field = "martingale_volume_coefficient" if big_volume else "safety_order_volume"
        deviation_field = (
            "martingale_step_coefficient" if cfg.martingale_step_coefficient > 1 else "safety_order_step_percentage"
        )
    if cfg.max_funds > MAX_AMOUNT:
        raise FieldError(volume_field, f"a deal would commit {_figure(cfg.max_funds)}, more than the maximum "
                         f"{MAX_AMOUNT:f}")
    if cfg.safety_steps and cfg.safety_steps[-1][0] > MAX_PERCENT:
        last = cfg.safety_steps[-1][0]
        raise FieldError(deviation_field, f"the last safety order would sit {_figure(last)}% from the base price, "
                         f"more than the maximum {MAX_PERCENT}%")


def _figure(value: Decimal) -> str:
    """A compounded figure for a message: exact while readable, else in exponent form."""
    return f"{value:f}" if value < MAX_AMOUNT * 1000 else f"{value:.4E}"


def _check_take_profit(cfg: DcaConfig) -> None:
    steps = cfg.take_profit_steps
    if steps:
        total = sum((s.amount_percentage for s in steps), ZERO)
        if total != HUNDRED:
            raise FieldError("take_profit_steps", f"amount_percentage must sum to 100, not {total}")
        for i in range(1, len(steps)):
            if steps[i].profit_percentage <= steps[i - 1].profit_percentage:
                raise FieldError(f"take_profit_steps.{i}.profit_percentage", "targets must increase step by step")
    if cfg.strategy is Direction.SHORT:
        top = max([cfg.take_profit, *(s.profit_percentage for s in steps)])
        if top >= HUNDRED and cfg.take_profit_type is TakeProfitType.TOTAL:
            raise FieldError("take_profit", "a short cannot gain 100% or more of its volume")
    if cfg.trailing_enabled:
        if cfg.trailing_deviation <= 0:
            raise FieldError("trailing_deviation", "must be positive when trailing_enabled")
        last = steps[-1].profit_percentage if steps else cfg.take_profit
        if cfg.trailing_deviation >= last:
            raise FieldError("trailing_deviation", f"must be below the take profit it trails ({last}%)")


def _check_stop_loss(cfg: DcaConfig) -> None:
    if cfg.strategy is Direction.LONG and cfg.stop_loss_percentage >= HUNDRED:
        raise FieldError("stop_loss_percentage", "a long cannot lose 100% or more")
    if cfg.tsl_enabled and not cfg.stop_loss_percentage:
        raise FieldError("tsl_enabled", "a trailing stop loss needs stop_loss_percentage")
    if cfg.stop_loss_timeout_in_seconds and not (cfg.stop_loss_percentage or cfg.sl_to_breakeven_enabled):
        raise FieldError("stop_loss_timeout_in_seconds", "set without a stop loss")
