"""Fee-aware position accounting on a domain ``Deal``.

Fees are booked in the currency the exchange charged them. A fee in base changes how
much base actually moved (Binance takes a buy's fee out of the base received), so the
deal records the *net* base and the notional of that net base, and the fee converted
to quote at the fill price. That keeps three things true at once: ``bought - sold`` is
what the deal really holds, ``spent / bought`` is the fill price (a clean average entry),
and ``received - spent - fees_quote`` is the cash profit. A fee charged in a third asset
(e.g. BNB) moves neither base nor quote and is not converted (no price for it here).
"""

from __future__ import annotations

from decimal import Decimal

from msgspec.structs import replace

from sealbot.domain.deals import Deal
from sealbot.domain.market import Direction, Side
from sealbot.domain.money import ZERO
from sealbot.domain.orders import Fill


def apply_fill(deal: Deal, fill: Fill) -> Deal:
    """The deal after one (partial) execution."""
    base_fee = fill.fee if fill.fee_currency == deal.pair.base else ZERO
    quote_fee = fill.fee if fill.fee_currency == deal.pair.quote else ZERO
    fees = deal.fees_quote + base_fee * fill.price + quote_fee
    if fill.side is Side.BUY:
        qty = fill.amount - base_fee
        return replace(deal, bought=deal.bought + qty, spent=deal.spent + qty * fill.price, fees_quote=fees)
    qty = fill.amount + base_fee
    return replace(deal, sold=deal.sold + qty, received=deal.received + qty * fill.price, fees_quote=fees)


def exposure(deal: Deal) -> Decimal:
    """Base the deal must still exit: held base for a long, owed base for a short."""
    return deal.bought - deal.sold if deal.direction is Direction.LONG else deal.sold - deal.bought


def entered(deal: Deal) -> tuple[Decimal, Decimal]:
    """(base, quote) of the entry side: what a long bought / a short sold."""
    if deal.direction is Direction.LONG:
        return deal.bought, deal.spent
    return deal.sold, deal.received


def breakeven_price(deal: Deal) -> Decimal | None:
    """Exit price at which the deal makes zero after the entry fees paid so far."""
    base, quote = entered(deal)
    if base <= 0:
        return None
    if deal.direction is Direction.LONG:
        return (quote + deal.fees_quote) / base
    return (quote - deal.fees_quote) / base
