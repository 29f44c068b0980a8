"""What one entry of a signal bot would be at a given price, per market."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sealbot.bots.signal.config import Config
from sealbot.domain import AmountType, OrderRejected


@dataclass(frozen=True, slots=True)
class EntryPreview:
    pair: str
    amount: Decimal | None  # base; None for a %-of-balance entry (depends on the balance)
    notional: Decimal | None
    fee_quote: Decimal | None  # taker fee of the entry, in quote
    problem: str | None  # why the market would refuse it, if it would


def preview(config: Config, price: Decimal) -> list[EntryPreview]:
    """Entry size on each market at ``price`` with the configured amount."""
    out = []
    for market in config.markets:
        rules = market.rules
        if config.amount_type is AmountType.PERCENT_OF_BALANCE:
            out.append(EntryPreview(market.pair, None, None, None, None))
            continue
        base = config.amount if config.amount_type is AmountType.BASE else config.amount / price
        if config.max_position is not None:
            base = min(base, config.max_position / price)
        amount = rules.amount(base)
        problem = None
        try:
            rules.check(amount, rules.price(price))
        except OrderRejected as exc:
            problem = str(exc)
        notional = amount * price
        out.append(EntryPreview(market.pair, amount, notional, notional * config.fees.taker, problem))
    return out
