"""Binance request signing, weights and rate limits checked on the wire (raw HTTP)."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlencode

import ccxt
import httpx
import pytest

from sealbot.simex import SimexServer

from .ccxt_simex import away_from_window_edge, point_at_simex


@pytest.fixture
def key(simex: SimexServer) -> dict[str, Any]:
    account = simex.admin.create_account("wire", {"USDT": "1000"})
    return simex.admin.create_key(account["id"])


def _sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _now() -> int:
    return int(time.time() * 1000)


def test_signature_covers_query_string_then_body(simex: SimexServer, key: dict[str, Any]) -> None:
    query = urlencode({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"})
    body = urlencode({"quantity": "0.001", "price": "30000.00", "timestamp": _now(), "recvWindow": 5000})
    signature = _sign(key["secret"], query + body)
    response = httpx.post(f"{simex.base_url}/api/v3/order?{query}", content=f"{body}&signature={signature}",
                          headers={"X-MBX-APIKEY": key["key"],
                                   "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "NEW" and response.json()["fills"] == []
    tampered = body.replace("0.001", "0.002")
    response = httpx.post(f"{simex.base_url}/api/v3/order?{query}", content=f"{tampered}&signature={signature}",
                          headers={"X-MBX-APIKEY": key["key"],
                                   "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert response.json() == {"code": -1022, "msg": "Signature for this request is not valid."}


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({}, 400, -1102),                                        # no timestamp
        ({"timestamp": "OFFSET-60000"}, 400, -1021),             # stale
        ({"timestamp": "OFFSET+5000"}, 400, -1021),              # from the future
        ({"timestamp": "NOW", "recvWindow": "70000"}, 400, -1131),
    ],
)
def test_timestamp_rules(simex: SimexServer, key: dict[str, Any], params: dict[str, str], status: int,
                         code: int) -> None:
    resolved = {}
    for name, value in params.items():
        if value == "NOW":
            value = str(_now())
        elif value.startswith("OFFSET"):
            value = str(_now() + int(value[len("OFFSET"):]))
        resolved[name] = value
    query = urlencode(resolved)
    response = httpx.get(f"{simex.base_url}/api/v3/account?{query}&signature={_sign(key['secret'], query)}",
                         headers={"X-MBX-APIKEY": key["key"]})
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_missing_and_unknown_keys(simex: SimexServer) -> None:
    query = urlencode({"timestamp": _now()})
    no_key = httpx.get(f"{simex.base_url}/api/v3/account?{query}&signature=00")
    assert (no_key.status_code, no_key.json()["code"]) == (401, -2014)
    unknown = httpx.get(f"{simex.base_url}/api/v3/account?{query}&signature=00", headers={"X-MBX-APIKEY": "x"})
    assert (unknown.status_code, unknown.json()["code"]) == (401, -2015)


def test_ip_whitelist_with_networks(simex: SimexServer) -> None:
    account = simex.admin.create_account("ip", {})
    inside = simex.admin.create_key(account["id"], ip_whitelist=["127.0.0.0/8"])
    outside = simex.admin.create_key(account["id"], ip_whitelist=["192.168.0.0/16", "10.0.0.1"])
    for k, expected in ((inside, 200), (outside, 401)):
        query = urlencode({"timestamp": _now()})
        response = httpx.get(f"{simex.base_url}/api/v3/account?{query}&signature={_sign(k['secret'], query)}",
                             headers={"X-MBX-APIKEY": k["key"]})
        assert response.status_code == expected


def test_bad_parameters(simex: SimexServer, key: dict[str, Any]) -> None:
    def order(**params: str) -> httpx.Response:
        query = urlencode({**params, "timestamp": _now()})
        return httpx.post(f"{simex.base_url}/api/v3/order?{query}&signature={_sign(key['secret'], query)}",
                          headers={"X-MBX-APIKEY": key["key"]})

    assert order(symbol="BTCUSDT", side="BUY", type="LIMIT", quantity="1").json()["code"] == -1102
    assert order(symbol="BTCUSDT", side="BUY", type="LIMIT", quantity="1x", price="1",
                 timeInForce="GTC").json()["code"] == -1100
    assert order(symbol="BTCUSDT", side="BUY", type="MARKET").json()["code"] == -1102
    assert order(symbol="BTCUSDT", side="UP", type="MARKET", quantity="1").json()["code"] == -1117
    assert order(symbol="NOPE", side="BUY", type="MARKET", quantity="1").json()["code"] == -1121
    assert order(symbol="BTCUSDT", side="BUY", type="LIMIT", quantity="0.001", price="30000",
                 timeInForce="GTD").json()["code"] == -1115
    test = httpx.post(f"{simex.base_url}/api/v3/order/test", headers={"X-MBX-APIKEY": key["key"]})
    assert test.json()["code"] == -1102
    query = urlencode({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001",
                       "timestamp": _now()})
    valid = httpx.post(f"{simex.base_url}/api/v3/order/test?{query}&signature={_sign(key['secret'], query)}",
                       headers={"X-MBX-APIKEY": key["key"]})
    assert valid.status_code == 200 and valid.json() == {}
    assert simex.exchange is not None
    assert simex.admin.orders(simex.exchange.keys[key["key"]].account_id) == []  # neither test nor bad orders


def test_public_endpoints_are_unsigned(simex: SimexServer) -> None:
    info = httpx.get(f"{simex.base_url}/api/v3/exchangeInfo", params={"symbol": "ETHBTC"}).json()
    filters = {f["filterType"]: f for f in info["symbols"][0]["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.00000100"
    assert filters["LOT_SIZE"]["stepSize"] == "0.01000000"
    assert filters["NOTIONAL"]["minNotional"] == "0.00010000"
    assert info["symbols"][0]["status"] == "TRADING"
    assert httpx.get(f"{simex.base_url}/api/v3/time").json()["serverTime"] == pytest.approx(_now(), abs=5000)
    depth = httpx.get(f"{simex.base_url}/api/v3/depth", params={"symbol": "XRPETH", "limit": 5}).json()
    assert len(depth["bids"]) == len(depth["asks"]) == 5
    assert httpx.get(f"{simex.base_url}/api/v3/nope").status_code == 404


def test_rate_limit_429_then_418_ban_as_ccxt_sees_it() -> None:
    with SimexServer(weight_limit=50, ban_after=2, ban_seconds=60) as server:
        away_from_window_edge(60)
        exchange = point_at_simex(ccxt.binance({"enableRateLimit": False}), server.base_url)
        exchange.load_markets()  # weight 20 (+ futures info)
        exchange.fetch_ticker("BTC/USDT")
        with pytest.raises(ccxt.DDoSProtection, match="429"):  # ccxt's binance maps 429 to DDoSProtection
            for _ in range(30):
                exchange.fetch_ticker("BTC/USDT")
        assert '"code":-1003' in exchange.last_http_response
        raw = httpx.get(f"{server.base_url}/api/v3/ping")
        assert raw.status_code in (429, 418) and int(raw.headers["Retry-After"]) > 0
        for _ in range(3):
            raw = httpx.get(f"{server.base_url}/api/v3/ping")
        assert raw.status_code == 418 and raw.json()["code"] == -1003 and "banned" in raw.json()["msg"]
        with pytest.raises(ccxt.DDoSProtection, match="418"):
            exchange.fetch_ticker("BTC/USDT")
        server.admin.set_ratelimit(reset=True)
        assert httpx.get(f"{server.base_url}/api/v3/ping").status_code == 200


def test_admin_api_needs_its_token(simex: SimexServer) -> None:
    response = httpx.get(f"{simex.base_url}/simex/admin/clock", headers={"Authorization": "Bearer wrong-token"})
    assert response.status_code == 401
    assert httpx.get(f"{simex.base_url}/simex/admin/clock").status_code == 401
    assert simex.admin.clock()["speed"] == 0
