"""Grid geometry: where the price lines are and how much each line buys.

Line ``i`` of a grid is a pure function of the settings, for any integer ``i``:
``0`` is ``lower_price``, ``grids_quantity - 1`` is ``upper_price``, and trailing
moves the grid to lines above or below that range (negative ``i`` below the lower
price). So the state only records which intervals are active, never prices.
Arithmetic lines are equally spaced in price, geometric ones in percent:

* arithmetic: ``L_i = lower + i * (upper - lower) / (n - 1)``
* geometric:  ``L_i = lower * (upper / lower) ** (i / (n - 1))``

each rounded to the market's tick. Decimal arithmetic runs in a local 28-digit
context so a caller's context can never change a price.
"""

from __future__ import annotations

from decimal import Context, Decimal, localcontext
from functools import lru_cache
from typing import TYPE_CHECKING

from sealbot.domain.money import ONE, round_to_step

if TYPE_CHECKING:
    from sealbot.bots.grid.config import Config

_CONTEXT = Context(prec=28)
MAX_TRAILING_DOWN_LEVELS = 2000


@lru_cache(maxsize=1 << 16)
def _line(geometric: bool, lower: Decimal, upper: Decimal, n: int, tick: Decimal, i: int) -> Decimal:
    with localcontext(_CONTEXT):
        raw = lower * (upper / lower) ** (Decimal(i) / (n - 1)) if geometric else lower + (upper - lower) * i / (n - 1)
        return round_to_step(raw, tick)


def level_price(cfg: Config, i: int) -> Decimal:
    """The price of line ``i`` (may be outside the configured range, for trailing)."""
    return _line(
        cfg.grid_type == "geometric", cfg.lower_price, cfg.upper_price, cfg.grids_quantity, cfg.market.tick_size, i
    )


def levels(cfg: Config) -> list[Decimal]:
    """The configured lines, lowest first."""
    return [level_price(cfg, i) for i in range(cfg.grids_quantity)]


def trailing_down_levels(cfg: Config) -> int:
    """How many lines trailing down may add below ``lower_price`` before it reaches
    ``trailing_down_stop_price`` (0 when trailing down is off)."""
    if not cfg.trailing_down_enabled or cfg.trailing_down_stop_price is None:
        return 0
    return _extra_lines(cfg.grid_type == "geometric", cfg.lower_price, cfg.upper_price, cfg.grids_quantity,
                        cfg.market.tick_size, cfg.trailing_down_stop_price)


@lru_cache(maxsize=1024)
def _extra_lines(geometric: bool, lower: Decimal, upper: Decimal, n: int, tick: Decimal, stop: Decimal) -> int:
    count, previous = 0, _line(geometric, lower, upper, n, tick, 0)
    while count < MAX_TRAILING_DOWN_LEVELS:
        price = _line(geometric, lower, upper, n, tick, -count - 1)
        if price < stop or price <= 0 or price >= previous:
            break
        count, previous = count + 1, price
    return count


def max_slots(cfg: Config) -> int:
    """The most intervals that can hold funds at once: the grid's own plus the lines
    trailing down may add (trailing up moves the grid; it does not grow it)."""
    return cfg.intervals + trailing_down_levels(cfg)


def quote_per_level(cfg: Config) -> Decimal | None:
    """Quote budget of one interval when sizing is in quote, else None.

    With ``investment`` the budget is the investment spread over every interval that
    can hold funds at once, fees included, so the bot never commits more than it."""
    if cfg.investment is not None:
        with localcontext(_CONTEXT):
            return cfg.investment / (max_slots(cfg) * (ONE + cfg.max_fee))
    if cfg.order_currency_type == "quote":
        return cfg.quantity_per_grid
    return None


def level_amount(cfg: Config, i: int) -> Decimal:
    """Base amount the interval starting at line ``i`` buys, rounded down to the step."""
    budget = quote_per_level(cfg)
    if budget is None:
        assert cfg.quantity_per_grid is not None
        return cfg.rules.amount(cfg.quantity_per_grid)
    with localcontext(_CONTEXT):
        return cfg.rules.amount(budget / level_price(cfg, i))
