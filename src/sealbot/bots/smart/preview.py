"""What a smart trade will do at a given price: entry, each target, the stop, the funds."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sealbot.bots.common.exits import shifted
from sealbot.bots.common.markets import base_for_quote, limit_price
from sealbot.bots.common.serde import JsonValue, dump_dataclass
from sealbot.bots.smart.config import EntryType, SmartTradeConfig
from sealbot.domain.errors import InvalidConfig
from sealbot.domain.money import HUNDRED, ZERO


@dataclass(frozen=True, slots=True)
class TargetRow:
    target: int
    price: Decimal
    amount_base: Decimal
    profit_quote: Decimal  # before fees


@dataclass(frozen=True, slots=True)
class SmartPreview:
    entry_price: Decimal
    amount_base: Decimal
    funds_quote: Decimal
    targets: tuple[TargetRow, ...]
    stop_price: Decimal | None
    loss_at_stop_quote: Decimal | None

    def to_dict(self) -> dict[str, JsonValue]:
        return dump_dataclass(self)


def preview(cfg: SmartTradeConfig, price: Decimal) -> SmartPreview:
    """``price`` is the current price (used when the entry has no price of its own)."""
    if price <= 0:
        raise InvalidConfig("price", "must be positive")
    rules = cfg.market.rules
    side = cfg.direction.entry_side
    raw_entry = cfg.entry_price if cfg.entry_type is not EntryType.MARKET and cfg.entry_price else price
    entry = limit_price(rules, raw_entry, side)
    amount = rules.amount(cfg.amount) if cfg.amount is not None else base_for_quote(rules, cfg.volume or ZERO, entry)
    sign = 1 if side.value == "buy" else -1
    rows: list[TargetRow] = []
    left = amount
    for i, t in enumerate(cfg.take_profit_steps, start=1):
        target = t.price if t.price is not None else shifted(cfg.direction, entry, t.profit_percentage or ZERO)
        target = limit_price(rules, target, side.opposite)
        part = left if i == len(cfg.take_profit_steps) else rules.amount(amount * t.amount_percentage / HUNDRED)
        left -= part
        rows.append(TargetRow(i, target, part, sign * (target - entry) * part))
    stop: Decimal | None = cfg.stop_loss_price
    if stop is None and cfg.stop_loss_percentage:
        stop = shifted(cfg.direction, entry, -cfg.stop_loss_percentage)
    loss = sign * (stop - entry) * amount if stop is not None else None
    return SmartPreview(entry, amount, entry * amount, tuple(rows), stop, loss)
