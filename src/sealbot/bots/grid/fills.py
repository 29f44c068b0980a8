"""How a fill changes what a bot owns, with fees in the currency the exchange charged.

Binance charges a buy's fee in the base coin received and a sell's in the quote
received (unless paid in BNB). A fee in base shrinks the coins held; a fee in quote
shrinks the quote received or adds to the quote paid. A fee in a third currency
cannot be valued without its price, so it is left out of quote totals (documented).
"""

from __future__ import annotations

from decimal import Decimal

from msgspec import Struct

from sealbot.domain import Fill, Side
from sealbot.domain.money import ZERO


class FillEffect(Struct, frozen=True):
    base: Decimal  # base coins gained (buy, > 0) or given up (sell, < 0), fees in base included
    quote: Decimal  # quote gained (sell, > 0) or paid (buy, < 0), fees in quote included
    fee_quote: Decimal  # the fee valued in quote at the fill price (0 for a third currency)


def effect(fill: Fill) -> FillEffect:
    base_fee = fill.fee if fill.fee_currency == fill.pair.base else ZERO
    quote_fee = fill.fee if fill.fee_currency == fill.pair.quote else ZERO
    fee_quote = quote_fee + base_fee * fill.price
    notional = fill.price * fill.amount
    if fill.side is Side.BUY:
        return FillEffect(fill.amount - base_fee, -notional - quote_fee, fee_quote)
    return FillEffect(-fill.amount - base_fee, notional - quote_fee, fee_quote)
