"""The unmodified ccxt KuCoin client (sync and async) against simex."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import ccxt
import ccxt.async_support as accxt
import httpx
import pytest

from sealbot.simex import SimexServer

from .ccxt_simex import away_from_window_edge, point_at_simex

PASSPHRASE = "correct horse"
OPTIONS = {"fetchMarkets": {"types": ["spot"]}}


def _client(simex: SimexServer, key: dict[str, Any], password: str = PASSPHRASE, module: Any = ccxt,
            **options: Any) -> Any:
    exchange = module.kucoin({"apiKey": key["key"], "secret": key["secret"], "password": password,
                              "enableRateLimit": False, "options": {**OPTIONS, **options}})
    return point_at_simex(exchange, simex.base_url, sandbox=False)


@pytest.fixture
def account(simex: SimexServer) -> dict[str, Any]:
    return simex.admin.create_account("kc", {"USDT": "20000", "BTC": "1", "ETH": "5"})


@pytest.fixture
def kucoin(simex: SimexServer, account: dict[str, Any]) -> Any:
    exchange = _client(simex, simex.admin.create_key(account["id"], passphrase=PASSPHRASE))
    exchange.load_markets()
    return exchange


def test_markets_balances_and_market_data(kucoin: Any) -> None:
    market = kucoin.market("ETH/BTC")
    assert market["id"] == "ETH-BTC" and market["precision"]["price"] == 0.000001
    assert market["limits"]["amount"]["min"] == 0.01
    assert kucoin.fetch_balance()["USDT"]["free"] == 20000
    ticker = kucoin.fetch_ticker("BTC/USDT")
    assert ticker["bid"] < ticker["last"] < ticker["ask"]
    book = kucoin.fetch_order_book("XRP/ETH", 20)
    assert book["bids"][0][0] < book["asks"][0][0]
    assert kucoin.fetch_time() == pytest.approx(time.time() * 1000, abs=5000)
    candles = kucoin.fetch_ohlcv("BTC/USDT", "1m")
    assert candles and candles[-1][4] == ticker["last"]
    assert all(c[3] <= min(c[1], c[4]) <= max(c[1], c[4]) <= c[2] for c in candles)


def test_limit_market_post_only_and_cancel(simex: SimexServer, kucoin: Any, account: dict[str, Any]) -> None:
    price = kucoin.fetch_ticker("BTC/USDT")["last"]
    resting = kucoin.create_order("BTC/USDT", "limit", "buy", 0.01, round(price * 0.9, 2),
                                  {"clientOid": "sb7-1-1"})
    fetched = kucoin.fetch_order(resting["id"], "BTC/USDT")
    assert fetched["status"] == "open" and fetched["clientOrderId"] == "sb7-1-1"
    assert [o["id"] for o in kucoin.fetch_open_orders("BTC/USDT")] == [resting["id"]]
    maker = kucoin.create_order("BTC/USDT", "limit", "sell", 0.01, round(price * 1.1, 2), {"postOnly": True})
    assert kucoin.fetch_order(maker["id"], "BTC/USDT")["postOnly"] is True
    bought = kucoin.create_order("BTC/USDT", "market", "buy", 0.02)
    sold = kucoin.create_order("BTC/USDT", "market", "sell", 0.01)
    assert kucoin.fetch_order(bought["id"], "BTC/USDT")["status"] == "closed"
    trades = kucoin.fetch_my_trades("BTC/USDT")
    assert sorted(t["order"] for t in trades) == sorted([bought["id"], sold["id"]])
    assert {t["fee"]["currency"] for t in trades} == {"BTC", "USDT"}
    kucoin.cancel_order(resting["id"], "BTC/USDT")
    assert kucoin.fetch_order(resting["id"], "BTC/USDT")["status"] == "canceled"
    kucoin.cancel_all_orders("BTC/USDT")
    assert kucoin.fetch_open_orders("BTC/USDT") == []
    balances = simex.admin.account(account["id"])["balances"]
    assert balances["USDT"]["locked"] == "0" and balances["BTC"]["locked"] == "0"


def test_api_key_info_reports_permissions_and_whitelist(simex: SimexServer, account: dict[str, Any]) -> None:
    key = simex.admin.create_key(account["id"], passphrase=PASSPHRASE, permissions=["spot", "withdrawals"],
                                 ip_whitelist=["127.0.0.1"])
    info = _client(simex, key).private_get_user_api_key()["data"]
    assert info["permission"] == "General,Spot,Withdrawal" and info["ipWhitelist"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("amount", "factor", "error"),
    [(1, 0.9, ccxt.InsufficientFunds), (0.00001, 0.0001, ccxt.InvalidOrder)],
)
def test_order_refusals(kucoin: Any, amount: float, factor: float, error: type[Exception]) -> None:
    price = kucoin.fetch_ticker("BTC/USDT")["last"]
    with pytest.raises(error):
        kucoin.create_order("BTC/USDT", "limit", "buy", amount, round(price * factor, 2))


def test_unknown_orders(kucoin: Any) -> None:
    with pytest.raises(ccxt.OrderNotFound):
        kucoin.cancel_order("424242", "BTC/USDT")
    with pytest.raises(ccxt.OrderNotFound):
        kucoin.fetch_order("424242", "BTC/USDT")


def test_authentication_failures(simex: SimexServer, account: dict[str, Any]) -> None:
    key = simex.admin.create_key(account["id"], passphrase=PASSPHRASE)
    with pytest.raises(ccxt.AuthenticationError, match="400004"):
        _client(simex, key, password="wrong").fetch_balance()
    with pytest.raises(ccxt.AuthenticationError, match="400004"):  # the passphrase is HMAC'd with the secret
        _client(simex, {**key, "secret": "forged"}).fetch_balance()
    with pytest.raises(ccxt.AuthenticationError, match="400003"):
        _client(simex, {**key, "key": "nobody"}).fetch_balance()
    fenced = simex.admin.create_key(account["id"], passphrase=PASSPHRASE, ip_whitelist=["10.9.9.9"])
    with pytest.raises(ccxt.AuthenticationError, match="400006"):
        _client(simex, fenced).fetch_balance()
    with pytest.raises(ccxt.InvalidNonce):
        _client(simex, key, timeDifference=60_000).fetch_balance()
    read_only = _client(simex, simex.admin.create_key(account["id"], passphrase=PASSPHRASE,
                                                      permissions=["reading"]))
    read_only.load_markets()
    with pytest.raises(ccxt.AuthenticationError, match="require more permission"):
        read_only.create_order("BTC/USDT", "market", "buy", 0.001)


def test_signature_is_over_timestamp_method_path_and_body(simex: SimexServer, account: dict[str, Any]) -> None:
    key = simex.admin.create_key(account["id"], passphrase=PASSPHRASE)
    body = '{"clientOid":"raw-1","side":"buy","symbol":"BTC-USDT","type":"market","funds":"50"}'
    stamp = str(int(time.time() * 1000))

    def b64(payload: str) -> str:
        return base64.b64encode(hmac.new(key["secret"].encode(), payload.encode(), hashlib.sha256).digest()).decode()

    headers = {"KC-API-KEY": key["key"], "KC-API-TIMESTAMP": stamp, "KC-API-KEY-VERSION": "2",
               "KC-API-PASSPHRASE": b64(PASSPHRASE), "KC-API-SIGN": b64(stamp + "POST" + "/api/v1/orders" + body),
               "Content-Type": "application/json"}
    response = httpx.post(f"{simex.base_url}/api/v1/orders", content=body, headers=headers)
    assert response.json()["code"] == "200000", response.text
    replay = httpx.post(f"{simex.base_url}/api/v1/orders", content=body.replace("50", "60"), headers=headers)
    assert replay.status_code == 401 and replay.json()["code"] == "400005"


def test_rate_limit_fault_is_rate_limit_exceeded(simex: SimexServer, kucoin: Any) -> None:
    simex.admin.add_fault("rate_limit", path_prefix="/api/v1/accounts", times=1)
    with pytest.raises(ccxt.RateLimitExceeded):
        kucoin.fetch_balance()
    assert kucoin.fetch_balance()["BTC"]["total"] == 1


async def test_async_kucoin_places_and_cancels(simex: SimexServer, account: dict[str, Any]) -> None:
    exchange = _client(simex, simex.admin.create_key(account["id"], passphrase=PASSPHRASE), module=accxt)
    try:
        await exchange.load_markets()
        price = (await exchange.fetch_ticker("ETH/BTC"))["last"]
        order = await exchange.create_order("ETH/BTC", "limit", "sell", 0.5, round(price * 1.2, 6))
        assert (await exchange.fetch_order(order["id"], "ETH/BTC"))["status"] == "open"
        await exchange.cancel_order(order["id"], "ETH/BTC")
        assert (await exchange.fetch_order(order["id"], "ETH/BTC"))["status"] == "canceled"
    finally:
        await exchange.close()


def test_weight_pool_answers_429000_with_gateway_headers() -> None:
    with SimexServer(kucoin_limit=40) as server:
        acct = server.admin.create_account("pool", {"USDT": "10"})
        client = _client(server, server.admin.create_key(acct["id"], passphrase=PASSPHRASE))
        client.load_markets()
        away_from_window_edge(30)
        server.admin.set_ratelimit(reset=True)
        client.fetch_balance()  # weight 5
        assert client.last_response_headers["gw-ratelimit-remaining"] == "35"
        with pytest.raises(ccxt.RateLimitExceeded):
            for _ in range(10):
                client.fetch_balance()
        server.admin.set_ratelimit(reset=True, kucoin_limit=4000)
        assert client.fetch_balance()["USDT"]["free"] == 10
