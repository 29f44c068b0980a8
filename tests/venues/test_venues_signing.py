"""Requests are signed by the signer; the ccxt object never holds a secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from decimal import Decimal
from urllib.parse import parse_qsl, unquote

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sealbot.domain import ClientOrderId, Order, OrderStatus, OrderType, Pair, Side
from sealbot.venues.ccxt_venue import CcxtVenue
from sealbot.venues.errors import VenueError
from sealbot.venues.signing import create_signed_exchange

from .conftest import FakeHandle, FakeHttp, FakeSigner, FakeSignRequest
from .test_venues_markets import BINANCE_ETHBTC, KUCOIN_SYMBOLS

ORDER = Order(ClientOrderId("B1", 7, "base"), Pair("ETH", "BTC"), Side.BUY, OrderType.LIMIT,
              Decimal("0.0100"), Decimal("0.05012"))
# GET /api/v1/order/client-order/{clientOid}, as KuCoin documents it
KUCOIN_ORDER = {"code": "200000", "data": {
    "id": "5bd6e9286d99522a52e458de", "symbol": "BTC-USDT", "opType": "DEAL", "type": "limit", "side": "buy",
    "price": "30000.1", "size": "0.001", "funds": "0", "dealFunds": "0", "dealSize": "0", "fee": "0",
    "feeCurrency": "USDT", "stp": "", "stop": "", "stopTriggered": False, "stopPrice": "0", "timeInForce": "GTC",
    "postOnly": False, "hidden": False, "iceberg": False, "visibleSize": "0", "cancelAfter": 0, "channel": "API",
    "clientOid": "sbB1-7-base", "remark": None, "tags": None, "isActive": True, "cancelExist": False,
    "createdAt": 1547026471000, "tradeType": "TRADE"}}
BINANCE_ORDER_ANSWER = {
    "symbol": "ETHBTC", "orderId": 28, "orderListId": -1, "clientOrderId": "sbB1-7-base",
    "transactTime": 1507725176595, "price": "0.05012000", "origQty": "0.01000000", "executedQty": "0.00000000",
    "cummulativeQuoteQty": "0.00000000", "status": "NEW", "timeInForce": "GTC", "type": "LIMIT", "side": "BUY",
    "workingTime": 1507725176595, "fills": [],
}


def _binance_venue(signer: FakeSigner, handle: FakeHandle, http: FakeHttp) -> CcxtVenue:
    venue = CcxtVenue("binance", signer=signer, handle=handle, request_type=FakeSignRequest,
                      urls={"api_base": "http://127.0.0.1:9"})
    venue.exchange.fetch = http
    return venue


def _attributes_text(obj: object) -> str:
    return " ".join(f"{k}={v!r}" for k, v in vars(obj).items())


async def test_binance_order_is_hmac_signed_by_the_signer(signer: FakeSigner) -> None:
    http = FakeHttp({"/exchangeInfo": {"symbols": [BINANCE_ETHBTC]}, "/api/v3/order": BINANCE_ORDER_ANSWER})
    venue = _binance_venue(signer, FakeHandle("acct-1"), http)
    try:
        await venue.load_markets()
        placed = await venue.create_order(ORDER)
        assert secret_free(venue, signer.secret)
    finally:
        await venue.close()
    assert placed.status is OrderStatus.OPEN and placed.exchange_id == "28"
    method, url, headers, body = http.calls[-1]
    assert (method, url) == ("POST", "http://127.0.0.1:9/api/v3/order")
    assert headers["X-MBX-APIKEY"] == "test-key-id"
    query, _, signature = body.rpartition("&signature=")
    expected = hmac.new(signer.secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    assert signature == expected
    fields = dict(parse_qsl(query))
    assert fields["newClientOrderId"] == "sbB1-7-base"
    assert (fields["quantity"], fields["price"], fields["type"]) == ("0.01", "0.05012", "LIMIT")
    assert signer.requests[-1] == FakeSignRequest("binance", "POST", "api/v3/order", signer.requests[-1].params)
    assert signer.requests[-1].params["newClientOrderId"] == "sbB1-7-base"


async def test_binance_ed25519_key_signs_through_the_signer(signer: FakeSigner) -> None:
    signer.ed25519 = Ed25519PrivateKey.generate()
    http = FakeHttp({"/exchangeInfo": {"symbols": [BINANCE_ETHBTC]}, "/api/v3/order": BINANCE_ORDER_ANSWER})
    venue = _binance_venue(signer, FakeHandle("acct-2", "ed25519"), http)
    try:
        await venue.load_markets()
        await venue.create_order(ORDER)
    finally:
        await venue.close()
    _, _, _, body = http.calls[-1]
    query, _, signature = body.rpartition("&signature=")
    signer.ed25519.public_key().verify(base64.b64decode(unquote(signature)), query.encode())


async def test_kucoin_signature_and_passphrase_come_from_the_signer(signer: FakeSigner) -> None:
    answer = {"code": "200000", "data": {"orderId": "5bd6e9286d99522a52e458de", "clientOid": "sbB1-7-base"}}
    http = FakeHttp({"/api/v2/symbols": KUCOIN_SYMBOLS, "/currencies": {"code": "200000", "data": []},
                     "/hf/accounts/opened": {"code": "200000", "data": False}, "/api/v1/orders": answer,
                     "/api/v1/order/client-order/sbB1-7-base": KUCOIN_ORDER})
    venue = CcxtVenue("kucoin", signer=signer, handle=FakeHandle("acct-3"), request_type=FakeSignRequest,
                      urls={"api_base": "http://127.0.0.1:9"})
    venue.exchange.fetch = http
    order = Order(ClientOrderId("B1", 7, "base"), Pair("BTC", "USDT"), Side.BUY, OrderType.LIMIT,
                  Decimal("0.001"), Decimal("30000.1"))
    try:
        await venue.load_markets()
        placed = await venue.create_order(order)
        assert secret_free(venue, signer.secret) and secret_free(venue, signer.passphrase)
    finally:
        await venue.close()
    # KuCoin answers with ids only, so the venue read the order back for its state
    assert placed.exchange_id == "5bd6e9286d99522a52e458de" and placed.status is OrderStatus.OPEN
    assert placed.client_id == order.client_id and http.calls[-1][1].endswith("/client-order/sbB1-7-base")
    method, url, headers, body = next(call for call in http.calls if call[0] == "POST")
    assert json.loads(body)["clientOid"] == "sbB1-7-base"
    endpoint = url.removeprefix("http://127.0.0.1:9")
    payload = headers["KC-API-TIMESTAMP"] + method + endpoint + body
    key = signer.secret.encode()
    assert headers["KC-API-SIGN"] == base64.b64encode(hmac.new(key, payload.encode(), hashlib.sha256).digest()).decode()
    assert headers["KC-API-PASSPHRASE"] == signer.sign_passphrase(FakeHandle("acct-3"))
    assert headers["KC-API-KEY"] == "test-key-id"


def secret_forms(secret: str) -> set[str]:
    """``secret`` raw, in hex and in base64 (padded or not): every form a leak could take."""
    raw = secret.encode()
    forms = {secret, raw.hex(), raw.hex().upper()}
    for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        forms |= {encoded, encoded.rstrip("=")}
    return forms


def leaks(text: str, secret: str) -> bool:
    return any(form in text for form in secret_forms(secret))


def secret_free(venue: CcxtVenue, secret: str) -> bool:
    """Neither the venue, nor its ccxt object's attributes (last request and response
    included), nor their reprs hold ``secret`` in any form."""
    texts = [repr(venue), repr(venue.exchange), _attributes_text(venue.exchange), _attributes_text(venue)]
    return not any(leaks(text, secret) for text in texts)


def test_credentials_in_the_config_are_refused(signer: FakeSigner) -> None:
    with pytest.raises(VenueError, match="signer"):
        create_signed_exchange("binance", signer, FakeHandle("a"), {"secret": "x"}, FakeSignRequest)


def test_exchanges_that_cannot_sign_through_the_signer_are_refused(signer: FakeSigner) -> None:
    with pytest.raises(VenueError, match="not supported"):
        create_signed_exchange("okx", signer, FakeHandle("a"), {}, FakeSignRequest)
    with pytest.raises(VenueError, match="Ed25519"):
        create_signed_exchange("kucoin", signer, FakeHandle("a", "ed25519"), {}, FakeSignRequest)


async def test_nothing_secret_reaches_the_logs(signer: FakeSigner, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    http = FakeHttp({"/exchangeInfo": {"symbols": [BINANCE_ETHBTC]}, "/api/v3/order": BINANCE_ORDER_ANSWER})
    venue = _binance_venue(signer, FakeHandle("acct-1"), http)
    venue.exchange.verbose = False
    try:
        await venue.load_markets()
        await venue.create_order(ORDER)
    finally:
        await venue.close()
    assert not leaks(caplog.text, signer.secret)
