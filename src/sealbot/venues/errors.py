"""Errors a venue raises, each saying what the exchange did in words a user can act on.

ccxt's exception classes describe transport details; these describe outcomes
(the key lacks a permission, the order broke a filter, the exchange is down). Every
message is passed through redaction before it is stored: an exchange's error text
can echo a signed URL or a header, and nothing secret may ride along in an exception.
"""

from __future__ import annotations

from sealbot.custody.redaction import redact
from sealbot.domain.errors import NotFound, OrderRejected, SealbotError

_MAX_DETAIL = 300


def _detail(text: str) -> str:
    """The exchange's own words, redacted and cut short enough for a log line."""
    clean = redact(" ".join(text.split()))
    return clean if len(clean) <= _MAX_DETAIL else clean[: _MAX_DETAIL - 3] + "..."


class VenueError(SealbotError):
    """Something went wrong talking to an exchange; ``venue`` names it."""

    def __init__(self, venue: str, what: str, detail: str = "") -> None:
        self.venue, self.what, self.detail = venue, what, _detail(detail)
        message = f"{venue}: {what}"
        super().__init__(f"{message} ({self.detail})" if self.detail else message)


class InsufficientFunds(VenueError):
    """The account does not hold enough of the asset the order would spend."""


class AuthFailed(VenueError):
    """The exchange did not accept the key or its signature (wrong key, revoked, clock skew,
    IP not whitelisted: Binance reports those with the same code)."""


class RequestExpired(AuthFailed):
    """The exchange refused a signed request for its time: older than the receive window
    (Binance -1021, KuCoin 400002) or ahead of the exchange's clock. For an order signed
    with the time its attempt was journalled (``Venue.create_order(attempt_at=...)``) it
    proves that attempt was not carried out and never will be; for any other request it
    means the host's clock is off."""


class PermissionDenied(AuthFailed):
    """The key is valid but lacks the permission the request needs."""


class RateLimited(VenueError):
    """The exchange asked us to slow down (HTTP 429/418, Binance -1003)."""


class ExchangeUnavailable(VenueError):
    """The exchange could not be reached, timed out, or answered with a server error."""


class UnknownMarket(VenueError):
    """The pair is not listed (or not active) on this exchange."""


class UnknownOrder(NotFound):
    """The exchange has no order with this client id (never placed, or archived)."""

    def __init__(self, venue: str, client_id: str, detail: str = "") -> None:
        super().__init__(f"{venue} order", client_id)
        self.venue, self.detail = venue, _detail(detail)


class ExchangeRejectedOrder(OrderRejected):
    """The exchange refused an order (a filter such as LOT_SIZE, PRICE_FILTER, NOTIONAL, or
    a duplicate client id); ``field`` is ``order`` when the exchange did not say which."""

    def __init__(self, venue: str, field: str, reason: str) -> None:
        super().__init__(field, f"{venue} rejected the order: {_detail(reason)}")
        self.venue = venue
