"""Settings that cannot work, refused before a grid ever places an order."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import TYPE_CHECKING

from sealbot.bots.grid.levels import level_amount, level_price, trailing_down_levels
from sealbot.domain import InvalidConfig, OrderRejected
from sealbot.domain.money import HUNDRED, ONE

if TYPE_CHECKING:
    from sealbot.bots.grid.config import Config


def check_config(cfg: Config) -> None:
    """Raise ``InvalidConfig(field, reason)`` for the first impossible setting."""
    _check_range(cfg)
    _check_stops(cfg)
    _check_sizing(cfg)
    _check_steps(cfg)
    _check_amounts(cfg)


def _check_range(cfg: Config) -> None:
    if cfg.lower_price >= cfg.upper_price:
        raise InvalidConfig("lower_price", f"must be below upper_price ({cfg.upper_price})")
    if cfg.trailing_down_enabled:
        if cfg.trailing_down_stop_price is None:
            raise InvalidConfig(
                "trailing_down_stop_price",
                "is required with trailing_down_enabled, or the funds it needs are unbounded",
            )
        if cfg.trailing_down_stop_price >= cfg.lower_price:
            raise InvalidConfig("trailing_down_stop_price", "must be below lower_price")
    if cfg.trailing_up_enabled and cfg.investment is None and cfg.order_currency_type == "base":
        raise InvalidConfig(
            "trailing_up_enabled",
            "needs quote sizing (order_currency_type quote or "
            "investment): a fixed base amount costs more at every higher line",
        )


def _check_stops(cfg: Config) -> None:
    if cfg.lower_stop_loss_enabled:
        if cfg.lower_stop_loss_price is None:
            raise InvalidConfig("lower_stop_loss_price", "is required when lower_stop_loss_enabled")
        floor = cfg.trailing_down_stop_price if cfg.trailing_down_enabled else cfg.lower_price
        if floor is not None and cfg.lower_stop_loss_price >= floor:
            raise InvalidConfig("lower_stop_loss_price", f"must be below the grid's lowest line ({floor})")
    if cfg.upper_stop_loss_enabled:
        if cfg.upper_stop_loss_price is None:
            raise InvalidConfig("upper_stop_loss_price", "is required when upper_stop_loss_enabled")
        if cfg.upper_stop_loss_price <= cfg.upper_price and not cfg.trailing_up_enabled:
            raise InvalidConfig("upper_stop_loss_price", f"must be above upper_price ({cfg.upper_price})")


def _check_sizing(cfg: Config) -> None:
    if (cfg.quantity_per_grid is None) == (cfg.investment is None):
        raise InvalidConfig("quantity_per_grid", "give exactly one of quantity_per_grid and investment")


def _check_steps(cfg: Config) -> None:
    lowest = -trailing_down_levels(cfg)
    prices = [level_price(cfg, i) for i in range(lowest, cfg.grids_quantity)]
    for below, above in itertools.pairwise(prices):
        if above <= below:
            raise InvalidConfig(
                "grids_quantity",
                f"lines {below} and {above} collapse at the tick size {cfg.market.tick_size}: use fewer levels",
            )
    step_pct = min((above - below) * HUNDRED / below for below, above in itertools.pairwise(prices))
    fee_pct = cfg.fees.maker * 2 * HUNDRED
    if step_pct <= fee_pct:
        raise InvalidConfig(
            "grids_quantity",
            f"the smallest grid step ({_pct(step_pct)}%) does not exceed twice "
            f"the maker fee ({_pct(fee_pct)}%), so every grid loses money: use fewer levels",
        )


def _check_amounts(cfg: Config) -> None:
    field = "investment" if cfg.investment is not None else "quantity_per_grid"
    for i in range(-trailing_down_levels(cfg), cfg.intervals):
        amount, price = level_amount(cfg, i), level_price(cfg, i)
        if amount <= 0:
            raise InvalidConfig(field, f"buys nothing at {price} after rounding to the step {cfg.market.step_size}")
        sell = cfg.rules.amount(amount * (ONE - cfg.max_fee))
        try:
            cfg.rules.check(amount, price)
            cfg.rules.check(sell, level_price(cfg, i + 1))
        except OrderRejected as exc:
            raise InvalidConfig(field, f"the order at {price} breaks the market's rules: {exc}") from None


def _pct(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.0001')).normalize():f}"
