"""Dialect-neutral reasons the exchange refuses something.

The core raises these; each dialect (binance.py, kucoin.py) renders them with its
own codes, messages and HTTP statuses.
"""

from __future__ import annotations

from enum import Enum


class Reason(Enum):
    UNKNOWN_SYMBOL = "unknown_symbol"
    BAD_PARAM = "bad_param"
    MISSING_PARAM = "missing_param"
    FILTER = "filter"  # detail: filter name (PRICE_FILTER, LOT_SIZE, NOTIONAL)
    INSUFFICIENT_BALANCE = "insufficient_balance"
    DUPLICATE_ORDER = "duplicate_order"
    WOULD_TAKE = "would_take"  # a post-only order would match immediately
    WOULD_TRIGGER = "would_trigger"  # a stop order's trigger is already reached
    UNKNOWN_ORDER = "unknown_order"
    REJECTED = "rejected"  # injected reject fault
    NOT_PERMITTED = "not_permitted"


class SimexError(Exception):
    """A refusal with a reason the dialects know how to render."""

    def __init__(self, reason: Reason, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.reason, self.message, self.detail = reason, message, detail
