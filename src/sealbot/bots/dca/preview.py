"""The DCA order table a user checks before starting a bot: every safety order's trigger
deviation, rounded price and size, the running volume and average price, the price the
take profit needs, and the most quote the bot can commit.

Prices and amounts go through the market's rounding exactly as the bot will place them;
fees are not included (as in the 3Commas preview).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sealbot.bots.common.markets import base_for_quote, limit_price
from sealbot.bots.common.serde import JsonValue, dump_dataclass
from sealbot.bots.dca.config import DcaConfig, TakeProfitType
from sealbot.bots.dca.exits import exit_settings
from sealbot.domain.errors import InvalidConfig
from sealbot.domain.market import Direction, Pair
from sealbot.domain.money import HUNDRED, ZERO


@dataclass(frozen=True, slots=True)
class PreviewRow:
    order: str  # "bo", "so1", ...
    deviation_pct: Decimal  # distance of the order from the base order price, %
    price: Decimal  # rounded limit price
    volume_quote: Decimal  # configured quote volume
    amount_base: Decimal  # rounded base amount placed
    cumulative_quote: Decimal  # quote of all orders up to this one (rounded amounts x prices)
    cumulative_base: Decimal
    average_price: Decimal
    take_profit_prices: tuple[Decimal, ...]  # one per target, rounded as the exit order
    take_profit_deviation_pct: Decimal  # distance of the (last) take profit from this order's price


@dataclass(frozen=True, slots=True)
class DcaPreview:
    pair: Pair
    strategy: Direction
    rows: tuple[PreviewRow, ...]
    max_funds_quote: Decimal  # configured volumes summed: what a deal can commit
    max_funds_base: Decimal  # base a deal can need (what a short sells)

    def to_dict(self) -> dict[str, JsonValue]:
        return dump_dataclass(self)


def preview(cfg: DcaConfig, price: Decimal, pair: str | None = None) -> DcaPreview:
    """Order table for a deal whose base order fills at ``price``."""
    if price <= 0:
        raise InvalidConfig("price", "must be positive")
    spec = cfg.markets[0] if pair is None else next((m for m in cfg.markets if m.pair == pair), None)
    if spec is None:
        raise InvalidConfig("pair", f"{pair} is not one of the bot's markets")
    rules = spec.rules
    direction = cfg.strategy
    entry_side = direction.entry_side
    exits = exit_settings(cfg)
    sign = 1 if direction is Direction.LONG else -1
    orders = [("bo", ZERO, cfg.base_order_volume)]
    orders += [(f"so{n}", dev, vol) for n, (dev, vol) in enumerate(cfg.safety_steps, start=1)]
    rows: list[PreviewRow] = []
    cum_quote = cum_base = ZERO
    for name, deviation, volume in orders:
        raw = price * (HUNDRED - sign * deviation) / HUNDRED
        order_price = limit_price(rules, raw, entry_side)
        amount = base_for_quote(rules, volume, order_price)
        cum_quote += amount * order_price
        cum_base += amount
        average = cum_quote / cum_base if cum_base else ZERO
        basis = cfg.base_order_volume if cfg.take_profit_type is TakeProfitType.BASE else cum_quote
        tps = tuple(
            limit_price(
                rules, (cum_quote + sign * basis * (t.profit_pct or ZERO) / HUNDRED) / cum_base, entry_side.opposite
            )
            if cum_base
            else ZERO
            for t in exits.targets
        )
        tp_dev = (tps[-1] - order_price) * HUNDRED / order_price if tps and order_price else ZERO
        rows.append(PreviewRow(name, deviation, order_price, volume, amount, cum_quote, cum_base, average, tps, tp_dev))
    return DcaPreview(rules.pair, direction, tuple(rows), cfg.max_funds, cum_base)
