"""Exchange errors, classified by ccxt itself, become sealbot errors that say what happened."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest

from sealbot.domain import ClientOrderId, NotFound, Order, OrderRejected, OrderType, Pair, Side
from sealbot.venues.ccxt_venue import CcxtVenue
from sealbot.venues.errors import (
    AuthFailed,
    ExchangeRejectedOrder,
    ExchangeUnavailable,
    InsufficientFunds,
    PermissionDenied,
    RateLimited,
    UnknownOrder,
)

from .conftest import FakeHandle, FakeHttp, FakeSigner, FakeSignRequest, HttpError
from .test_venues_markets import BINANCE_ETHBTC

CID = ClientOrderId("B1", 3, "so1")
ORDER = Order(CID, Pair("ETH", "BTC"), Side.BUY, OrderType.LIMIT, Decimal("0.0100"), Decimal("0.05012"))


async def _venue(signer: FakeSigner, answer: object) -> CcxtVenue:
    venue = CcxtVenue("binance", signer=signer, handle=FakeHandle("a"), request_type=FakeSignRequest,
                      urls={"api_base": "http://127.0.0.1:9"})
    http = FakeHttp({"/exchangeInfo": {"symbols": [BINANCE_ETHBTC]}, "/api/v3/order": answer})
    http.exchange = venue.exchange
    venue.exchange.fetch = http
    await venue.load_markets()
    return venue


# Bodies and statuses as Binance's errors.md documents them.
CREATE_CASES = [
    (HttpError(400, {"code": -2010, "msg": "Account has insufficient balance for requested action."}),
     InsufficientFunds, "insufficient funds"),
    (HttpError(400, {"code": -1013, "msg": "Filter failure: NOTIONAL"}), ExchangeRejectedOrder, "notional"),
    (HttpError(400, {"code": -1013, "msg": "Filter failure: LOT_SIZE"}), ExchangeRejectedOrder, "amount"),
    (HttpError(400, {"code": -1013, "msg": "Filter failure: PRICE_FILTER"}), ExchangeRejectedOrder, "price"),
    (HttpError(401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}),
     AuthFailed, "refused the API key"),
    (HttpError(400, {"code": -1022, "msg": "Signature for this request is not valid."}), AuthFailed, "API key"),
    (HttpError(400, {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}),
     AuthFailed, "clock skew"),
    (HttpError(429, {"code": -1003, "msg": "Too much request weight used; current limit is 6000 request "
                                           "weight per 1 MINUTE."}), RateLimited, "slow down"),
    (HttpError(418, {"code": -1003, "msg": "Way too much request weight used; IP banned until 1.",}),
     RateLimited, "rate limited"),
    (HttpError(503, "Service Unavailable", "Service Unavailable"), ExchangeUnavailable, "unavailable"),
    (ccxt.RequestTimeout("binance GET timed out"), ExchangeUnavailable, "timed out"),
    (ccxt.PermissionDenied("binance no trade permission"), PermissionDenied, "lacks the permission"),
]


@pytest.mark.parametrize(("answer", "error", "words"), CREATE_CASES)
async def test_create_order_errors_are_named(signer: FakeSigner, answer: object, error: type, words: str) -> None:
    venue = await _venue(signer, answer)
    try:
        with pytest.raises(error) as caught:
            await venue.create_order(ORDER)
    finally:
        await venue.close()
    assert words in str(caught.value)
    assert "binance" in str(caught.value)


async def test_a_filter_rejection_is_an_order_rejection_naming_the_field(signer: FakeSigner) -> None:
    venue = await _venue(signer, HttpError(400, {"code": -1013, "msg": "Filter failure: NOTIONAL"}))
    try:
        with pytest.raises(OrderRejected) as caught:
            await venue.create_order(ORDER)
    finally:
        await venue.close()
    assert caught.value.field == "notional"


@pytest.mark.parametrize("body", [{"code": -2013, "msg": "Order does not exist."},
                                  {"code": -2011, "msg": "Unknown order sent."}])
async def test_unknown_orders_are_not_found(signer: FakeSigner, body: dict[str, object]) -> None:
    venue = await _venue(signer, HttpError(400, body))
    try:
        with pytest.raises(UnknownOrder) as caught:
            await venue.fetch_order(CID, Pair("ETH", "BTC"))
    finally:
        await venue.close()
    assert isinstance(caught.value, NotFound) and "sbB1-3-so1" in str(caught.value)


async def test_error_text_never_carries_the_request_signature(signer: FakeSigner) -> None:
    # ccxt puts the signed URL (with its signature) into the message of an HTTP error
    venue = await _venue(signer, HttpError(503, "Service Unavailable", "Service Unavailable"))
    try:
        with pytest.raises(ExchangeUnavailable) as caught:
            await venue.fetch_order(CID, Pair("ETH", "BTC"))
    finally:
        await venue.close()
    url = venue.exchange.fetch.calls[-1][1]
    signature = url.rpartition("signature=")[2]
    assert len(signature) == 64 and signature not in str(caught.value)
