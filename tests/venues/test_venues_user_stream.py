"""The user-data stream's subscription is signed by custody's real signer, on the real
policy, and simex accepts it: the ccxt.pro object holds no secret and none reaches the
logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from sealbot.engine.user_stream import user_stream_exchange
from sealbot.simex import SimexServer
from sealbot.simex.ws_api_binance import BinanceWsApi
from sealbot.venues.ccxt_venue import CcxtVenue
from sealbot.venues.paper import PaperVenue
from sealbot.venues.signing import SECRET_MARKER

from .conftest import FakeSigner, RealCustody
from .test_venues_signing import leaks, secret_free


@pytest.fixture
def sx() -> Iterator[SimexServer]:
    with SimexServer(speed=0) as server:
        yield server


def _ws_api(sx: SimexServer) -> BinanceWsApi:
    assert sx.ws_api is not None
    return sx.ws_api


def _attributes_text(obj: object) -> str:
    return " ".join(f"{k}={v!r}" for k, v in vars(obj).items())


async def test_the_subscription_is_signed_by_the_signer_and_nothing_secret_leaks(
        sx: SimexServer, custody: RealCustody, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    account = sx.admin.create_account("alice", {"USDT": "1000"})
    key = sx.admin.create_key(account["id"])
    handle = custody.link(31, key["key"], key["secret"], allowed=frozenset({"BTCUSDT"}))
    signed: list[tuple[Any, bytes]] = []
    real_sign = custody.signer.sign

    def spy(h: Any, payload: bytes, request: Any, encoding: Any) -> str:
        signed.append((request, payload))
        return str(real_sign(h, payload, request, encoding))

    custody.signer.sign = spy
    venue = CcxtVenue("binance", signer=custody.signer, handle=handle, urls={"api_base": sx.base_url})
    pro = user_stream_exchange(venue)
    assert pro is not None
    try:
        assert pro.urls["api"]["ws"]["ws-api"]["spot"] == sx.base_url.replace("http", "ws") + "/ws-api/v3"
        await pro.authenticate({"type": "spot"})
        assert _ws_api(sx).subscriptions() == 1  # simex verified the signature with the key's secret
        assert pro.secret == SECRET_MARKER and pro.apiKey == key["key"]
        texts = [repr(pro), _attributes_text(pro), *(repr(c) for c in pro.clients.values())]
        assert not any(leaks(text, key["secret"]) for text in texts)
    finally:
        await pro.close()
        await venue.close()
    assert secret_free(venue, key["secret"])
    [(request, payload)] = [(r, p) for r, p in signed if r.method == "WS"]
    assert (request.exchange, request.path) == ("binance", "ws-api/v3")
    assert {part.split("=")[0] for part in payload.decode().split("&")} <= {"apiKey", "timestamp", "recvWindow"}
    assert not [r for r in custody.audit.records if r[1] == "signer.refused"]
    assert not leaks(caplog.text, key["secret"])


async def test_an_ed25519_account_has_no_stream_and_the_signer_would_refuse_one(custody: RealCustody) -> None:
    sealed, _pem = custody.generate_ed25519(32)
    handle = custody.attach(sealed, "k" * 64)
    venue = CcxtVenue("binance", signer=custody.signer, handle=handle, urls={"api_base": "http://127.0.0.1:9"})
    try:
        assert user_stream_exchange(venue) is None  # polling only
    finally:
        await venue.close()


async def test_venues_without_a_signer_or_stream_have_none(signer: FakeSigner) -> None:
    public = CcxtVenue("binance", urls={"api_base": "http://127.0.0.1:9"})
    public_kucoin = CcxtVenue("kucoin", urls={"api_base": "http://127.0.0.1:9"})
    paper = PaperVenue({}, data_venue=public)  # the paper account is not on the exchange, whatever its data venue
    try:
        assert user_stream_exchange(public) is None
        assert user_stream_exchange(public_kucoin) is None  # no signer: no private token
        assert user_stream_exchange(paper) is None
    finally:
        await public.close()
        await public_kucoin.close()


async def test_kucoins_private_token_is_signed_by_the_signer_and_nothing_else_is(
        sx: SimexServer, custody: RealCustody, caplog: pytest.LogCaptureFixture) -> None:
    """KuCoin's private channel: the stream object asks for a token (bullet-private, a REST
    request custody's real signer signs on the real policy, simex verifies), then signs
    nothing more: the websocket is opened with the token."""
    caplog.set_level(logging.DEBUG)
    account = sx.admin.create_account("alice", {"USDT": "1000"})
    key = sx.admin.create_key(account["id"], passphrase="kc-pass")
    handle = custody.link(33, key["key"], key["secret"], passphrase="kc-pass", allowed=frozenset({"BTCUSDT"}))
    signed: list[Any] = []
    real_sign = custody.signer.sign

    def spy(h: Any, payload: bytes, request: Any, encoding: Any) -> str:
        signed.append(request)
        return str(real_sign(h, payload, request, encoding))

    custody.signer.sign = spy
    venue = CcxtVenue("kucoin", signer=custody.signer, handle=handle, urls={"api_base": sx.base_url})
    pro = user_stream_exchange(venue)
    assert pro is not None
    try:
        pro.open()
        url = await pro.negotiate(True)
        assert url is not None and url.startswith(sx.base_url.replace("http", "ws") + "/endpoint?token=")
        assert pro.secret == SECRET_MARKER and pro.apiKey == key["key"]
        texts = [repr(pro), _attributes_text(pro)]
        assert not any(leaks(text, key["secret"]) or leaks(text, "kc-pass") for text in texts)
    finally:
        await pro.close()
        await venue.close()
    assert [(r.exchange, r.method, r.path) for r in signed] == [("kucoin", "POST", "bullet-private")]
    assert not [r for r in custody.audit.records if r[1] == "signer.refused"]
    assert not leaks(caplog.text, key["secret"])
