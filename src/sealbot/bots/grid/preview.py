"""What a grid will do before it runs: its lines, each interval's order and profit net
of fees, and the most quote it can tie up.

Profit of one interval (buy ``q`` at ``B``, sell ``q`` at ``S``, maker fee ``f``
on both fills, valued in quote): ``q * (S - B) - f * q * (B + S)``; in percent of the
quote the buy costs: ``100 * profit / (q * B)``. When the exchange charges the buy's
fee in base, the coins sold are ``q * (1 - f)`` rounded down to the step and the
profit is lower by about ``f * q * (S - B)`` (a second-order term), plus the dust.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sealbot.bots.grid.config import Config
from sealbot.bots.grid.levels import level_amount, level_price, levels, quote_per_level, trailing_down_levels
from sealbot.domain.money import HUNDRED, ONE, ZERO


@dataclass(frozen=True, slots=True)
class IntervalPreview:
    index: int
    buy_price: Decimal
    sell_price: Decimal
    amount: Decimal  # base bought and sold per cycle
    profit_quote: Decimal  # per completed cycle, net of maker fees on both fills
    profit_pct: Decimal  # of the quote the buy costs
    funded_at_start: bool  # above the start price: bought by the opening market buy


@dataclass(frozen=True, slots=True)
class GridPreview:
    price: Decimal
    levels: list[Decimal]
    intervals: list[IntervalPreview]
    initial_buy_amount: Decimal  # base the opening market buy takes
    max_funds: Decimal  # quote the grid can tie up at once, fees and trailing down included
    trailing_down_levels: int


def preview(config: Config, price: Decimal) -> GridPreview:
    fee = config.fees.maker
    intervals = []
    for i in range(config.intervals):
        buy, sell, amount = level_price(config, i), level_price(config, i + 1), level_amount(config, i)
        profit = amount * (sell - buy) - fee * amount * (buy + sell)
        intervals.append(IntervalPreview(i, buy, sell, amount, profit, profit * HUNDRED / (amount * buy), buy > price))
    extra = trailing_down_levels(config)
    budget = quote_per_level(config)
    if budget is not None:
        max_funds = budget * (config.intervals + extra) * (ONE + config.max_fee)
    else:
        max_funds = sum(
            (level_amount(config, i) * level_price(config, i) for i in range(-extra, config.intervals)), ZERO
        ) * (ONE + config.max_fee)
    return GridPreview(
        price=price,
        levels=levels(config),
        intervals=intervals,
        initial_buy_amount=sum((iv.amount for iv in intervals if iv.funded_at_start), ZERO),
        max_funds=max_funds,
        trailing_down_levels=extra,
    )
