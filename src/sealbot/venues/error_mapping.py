"""ccxt exceptions -> sealbot venue errors that say what happened.

ccxt already classifies exchange answers (Binance -2010 with "Account has insufficient
balance" becomes ``InsufficientFunds``, -2013 ``OrderNotFound``, 429 ``DDoSProtection``
...). This module turns those classes into sealbot's outcome-named errors. One gap is
closed by hand: with a non-default URL (simex, a testnet) ccxt's Binance client does
not use its spot-specific code table, so a -1013 "Filter failure: NOTIONAL" arrives as
a plain ``BadRequest``; any error whose text names an exchange filter is treated as a
rejected order, with the field the filter is about.
"""

from __future__ import annotations

import ccxt

from sealbot.domain.errors import SealbotError
from sealbot.venues.errors import (
    AuthFailed,
    ExchangeRejectedOrder,
    ExchangeUnavailable,
    InsufficientFunds,
    PermissionDenied,
    RateLimited,
    RequestExpired,
    UnknownMarket,
    UnknownOrder,
    VenueError,
)

# Binance filter names (and KuCoin's wording) -> the order field they are about.
_FILTER_FIELDS = (
    ("PERCENT_PRICE", "price"),
    ("PRICE_FILTER", "price"),
    ("MARKET_LOT_SIZE", "amount"),
    ("LOT_SIZE", "amount"),
    ("MIN_NOTIONAL", "notional"),
    ("NOTIONAL", "notional"),
    ("MAX_NUM_ORDERS", "order"),
    ("priceIncrement", "price"),
    ("baseIncrement", "amount"),
    ("Order size below the minimum", "amount"),
)


def _filter_field(message: str) -> str | None:
    for marker, field in _FILTER_FIELDS:
        if marker in message:
            return field
    return None


def map_error(venue: str, exc: Exception, client_id: str | None = None) -> SealbotError:
    """The sealbot error for a ccxt exception raised while talking to ``venue``."""
    message = str(exc)
    if isinstance(exc, ccxt.InsufficientFunds):
        return InsufficientFunds(venue, "insufficient funds for the order", message)
    if isinstance(exc, ccxt.OrderNotFound):
        return UnknownOrder(venue, client_id or "?", message)
    if isinstance(exc, ccxt.DuplicateOrderId):
        return ExchangeRejectedOrder(venue, "client_id", "an order with this client id already exists")
    if isinstance(exc, ccxt.PermissionDenied):
        return PermissionDenied(venue, "the API key lacks the permission for this request", message)
    if isinstance(exc, ccxt.AuthenticationError):
        return AuthFailed(venue, "the exchange refused the API key (invalid or revoked key, bad "
                                 "signature, IP not whitelisted, or missing permission)", message)
    if isinstance(exc, ccxt.InvalidNonce):
        return RequestExpired(venue, "the exchange refused the request time (older than its receive window, "
                                     "or clock skew)", message)
    if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return RateLimited(venue, "rate limited by the exchange; slow down", message)
    if isinstance(exc, ccxt.NetworkError):
        return ExchangeUnavailable(venue, "the exchange is unavailable or timed out", message)
    field = _filter_field(message)
    if isinstance(exc, ccxt.InvalidOrder) or (field and isinstance(exc, ccxt.ExchangeError)):
        return ExchangeRejectedOrder(venue, field or "order", message)
    if isinstance(exc, ccxt.BadSymbol):
        return UnknownMarket(venue, "the pair is not listed on this exchange", message)
    return VenueError(venue, "the exchange returned an error", message)
