"""The grid bot's settings, named as 3Commas names them, and the checks that refuse a
grid which cannot work (each naming the field and the reason)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sealbot.bots.common import FeeSpec, MarketSpec
from sealbot.bots.common import parse_config as parse_model
from sealbot.bots.grid.check import check_config
from sealbot.bots.grid.fields import BOT_ID_PATTERN, Money
from sealbot.domain import InvalidConfig, MarketRules, Pair

MAX_LEVELS = 500


class GridType(StrEnum):
    ARITHMETIC = "arithmetic"  # equal price steps
    GEOMETRIC = "geometric"  # equal percentage steps


class OrderCurrency(StrEnum):
    """What ``quantity_per_grid`` counts: base coins per level, or quote per level."""

    BASE = "base"
    QUOTE = "quote"


class StopAction(StrEnum):
    STOP_BOT = "stop_bot"  # cancel the grid's orders, keep what it holds
    STOP_BOT_AND_SELL = "stop_bot_and_sell"  # cancel, then sell what it holds at market


class Config(BaseModel):
    """A spot grid on one pair between ``lower_price`` and ``upper_price``.

    ``grids_quantity`` is the number of price levels (lines), so the grid has
    ``grids_quantity - 1`` intervals; each interval buys at its lower line and sells at
    its upper line. Size each level with ``quantity_per_grid`` (in
    ``order_currency_type``) or spread a total ``investment`` (quote) evenly.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    bot_id: str = Field(pattern=BOT_ID_PATTERN)
    market: MarketSpec
    fees: FeeSpec = FeeSpec()
    lower_price: Money = Field(gt=0)
    upper_price: Money = Field(gt=0)
    grids_quantity: int = Field(ge=2, le=MAX_LEVELS)
    grid_type: GridType = GridType.ARITHMETIC
    quantity_per_grid: Money | None = Field(default=None, gt=0)
    order_currency_type: OrderCurrency = OrderCurrency.BASE
    investment: Money | None = Field(default=None, gt=0)
    trailing_up_enabled: bool = False
    trailing_down_enabled: bool = False
    trailing_down_stop_price: Money | None = Field(default=None, gt=0)
    upper_stop_loss_enabled: bool = False
    upper_stop_loss_price: Money | None = Field(default=None, gt=0)
    upper_stop_loss_action: StopAction = StopAction.STOP_BOT
    lower_stop_loss_enabled: bool = False
    lower_stop_loss_price: Money | None = Field(default=None, gt=0)
    lower_stop_loss_action: StopAction = StopAction.STOP_BOT

    @model_validator(mode="after")
    def _check(self) -> Config:
        check_config(self)
        return self

    @property
    def intervals(self) -> int:
        return self.grids_quantity - 1

    @property
    def max_fee(self) -> Decimal:
        return self.fees.worst

    @property
    def rules(self) -> MarketRules:
        return self.market.rules

    @property
    def pair(self) -> Pair:
        return self.market.rules.pair


def parse_config(data: Mapping[str, Any]) -> Config:
    """Build a Config from plain data; every failure is an ``InvalidConfig`` naming
    the field path and the reason (the web layer answers 422 with both)."""
    return parse_model(Config, data)


__all__ = ["Config", "GridType", "InvalidConfig", "OrderCurrency", "StopAction", "parse_config"]
