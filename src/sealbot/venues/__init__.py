"""Exchange access behind one async interface (``Venue``): ``CcxtVenue`` for any ccxt
exchange, signing through the custody signer, and ``PaperVenue`` for simulated fills
on real prices; plus per-exchange API-key permission checks. See docs/venues.md."""

from sealbot.venues.base import (
    Balance,
    ForeignClientId,
    IpPolicy,
    PermissionReport,
    Ticker,
    Venue,
    Verdict,
    is_foreign,
    parse_client_id,
)
from sealbot.venues.ccxt_venue import CcxtVenue
from sealbot.venues.errors import (
    AuthFailed,
    ExchangeRejectedOrder,
    ExchangeUnavailable,
    InsufficientFunds,
    PermissionDenied,
    RateLimited,
    UnknownMarket,
    UnknownOrder,
    VenueError,
)
from sealbot.venues.paper import PaperVenue, ticker_price_source

__all__ = [
    "AuthFailed", "Balance", "CcxtVenue", "ExchangeRejectedOrder", "ExchangeUnavailable", "ForeignClientId",
    "InsufficientFunds", "IpPolicy", "PaperVenue", "PermissionDenied", "PermissionReport", "RateLimited",
    "Ticker", "UnknownMarket", "UnknownOrder", "Venue", "VenueError", "Verdict", "is_foreign",
    "parse_client_id", "ticker_price_source",
]
