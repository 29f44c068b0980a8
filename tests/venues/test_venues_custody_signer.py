"""The ccxt venue signs through custody's real LocalSigner (file KEK), offline."""

from __future__ import annotations

import base64
import hashlib
import hmac
from decimal import Decimal
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from sealbot.custody.errors import SigningRefused
from sealbot.domain import ClientOrderId, Order, OrderType, Pair, Side
from sealbot.venues.ccxt_venue import CcxtVenue

from .conftest import FakeHttp, RealCustody
from .test_venues_markets import BINANCE_ETHBTC
from .test_venues_signing import BINANCE_ORDER_ANSWER, secret_free

SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
ORDER = Order(ClientOrderId("B1", 7, "base"), Pair("ETH", "BTC"), Side.BUY, OrderType.LIMIT,
              Decimal("0.0100"), Decimal("0.05012"))


def _venue(custody: RealCustody, handle: object) -> tuple[CcxtVenue, FakeHttp]:
    venue = CcxtVenue("binance", signer=custody.signer, handle=handle, urls={"api_base": "http://127.0.0.1:9"})
    http = FakeHttp({"/exchangeInfo": {"symbols": [BINANCE_ETHBTC]}, "/api/v3/order": BINANCE_ORDER_ANSWER})
    venue.exchange.fetch = http
    return venue, http


async def test_local_signer_signs_a_binance_order(custody: RealCustody) -> None:
    handle = custody.link(11, API_KEY, SECRET, allowed=frozenset({"ETHBTC"}))
    venue, http = _venue(custody, handle)
    try:
        await venue.load_markets()
        await venue.create_order(ORDER)
        assert secret_free(venue, SECRET)
    finally:
        await venue.close()
    _, _, headers, body = http.calls[-1]
    query, _, signature = body.rpartition("&signature=")
    assert signature == hmac.new(SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    assert headers["X-MBX-APIKEY"] == API_KEY


async def test_the_signer_policy_refuses_a_pair_outside_the_allow_list(custody: RealCustody) -> None:
    handle = custody.link(12, API_KEY, SECRET, allowed=frozenset({"BTCUSDT"}))
    venue, http = _venue(custody, handle)
    try:
        await venue.load_markets()
        with pytest.raises(SigningRefused, match="allow-list"):
            await venue.create_order(ORDER)
    finally:
        await venue.close()
    assert all("/api/v3/order" not in url for _, url, _, _ in http.calls)  # nothing was sent
    assert any(action == "signer.refused" for _, action, _, _ in custody.audit.records)


async def test_a_custody_born_ed25519_key_signs_binance_requests(custody: RealCustody) -> None:
    sealed, pem = custody.generate_ed25519(13)
    handle = custody.attach(sealed, "ed25519-api-key-from-binance")
    venue, http = _venue(custody, handle)
    try:
        await venue.load_markets()
        await venue.create_order(ORDER)
    finally:
        await venue.close()
    _, _, headers, body = http.calls[-1]
    query, _, signature = body.rpartition("&signature=")
    public = load_pem_public_key(pem.encode())
    assert isinstance(public, Ed25519PublicKey)
    public.verify(base64.b64decode(unquote(signature)), query.encode())
    assert headers["X-MBX-APIKEY"] == "ed25519-api-key-from-binance"
