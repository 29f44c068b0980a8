"""The unmodified sync ccxt Binance client trading against simex."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt
import pytest

from sealbot.simex import SimexServer

from .ccxt_simex import away_from_window_edge, point_at_simex


def _client(simex: SimexServer, key: dict[str, Any], sandbox: bool = True, **options: Any) -> Any:
    exchange = ccxt.binance({"apiKey": key["key"], "secret": key["secret"], "enableRateLimit": False,
                             "options": options})
    return point_at_simex(exchange, simex.base_url, sandbox)


@pytest.fixture
def account(simex: SimexServer) -> dict[str, Any]:
    return simex.admin.create_account("trader", {"USDT": "100000", "BTC": "2", "ETH": "10"})


@pytest.fixture
def binance(simex: SimexServer, account: dict[str, Any]) -> Any:
    key = simex.admin.create_key(account["id"])
    exchange = _client(simex, key)
    exchange.load_markets()
    return exchange


def _balances(simex: SimexServer, account_id: int) -> dict[str, dict[str, Decimal]]:
    raw = simex.admin.account(account_id)["balances"]
    return {a: {k: Decimal(v) for k, v in b.items()} for a, b in raw.items()}


def test_markets_carry_the_exchange_filters(binance: Any) -> None:
    market = binance.market("BTC/USDT")
    assert market["id"] == "BTCUSDT" and market["spot"] and market["active"]
    assert market["precision"]["price"] == 0.01 and market["precision"]["amount"] == 0.00001
    assert market["limits"]["cost"]["min"] == 5.0
    assert set(binance.symbols) == {"BTC/USDT", "ETH/BTC", "XRP/ETH"}


def test_load_markets_without_sandbox_reads_margin_pairs_and_currencies(simex: SimexServer,
                                                                       account: dict[str, Any]) -> None:
    key = simex.admin.create_key(account["id"])
    exchange = _client(simex, key, sandbox=False, fetchMarkets={"types": ["spot"]})
    markets = exchange.load_markets()
    assert "ETH/BTC" in markets
    assert {"BTC", "USDT", "ETH", "XRP"} <= set(exchange.currencies)  # from /sapi/v1/capital/config/getall


def test_balance_shows_free_and_locked(simex: SimexServer, binance: Any, account: dict[str, Any]) -> None:
    balance = binance.fetch_balance()
    assert balance["USDT"]["free"] == 100000 and balance["BTC"]["total"] == 2
    price = Decimal(str(binance.fetch_ticker("BTC/USDT")["last"]))
    limit = (price * Decimal("0.9")).quantize(Decimal("0.01"))
    binance.create_order("BTC/USDT", "limit", "buy", 0.1, float(limit))
    after = _balances(simex, account["id"])
    assert after["USDT"]["locked"] == limit * Decimal("0.1")
    assert after["USDT"]["free"] + after["USDT"]["locked"] == Decimal(100000)


def test_limit_order_rests_is_fetched_and_cancelled(simex: SimexServer, binance: Any,
                                                    account: dict[str, Any]) -> None:
    price = binance.fetch_ticker("BTC/USDT")["last"]
    order = binance.create_order("BTC/USDT", "limit", "buy", 0.01, round(price * 0.95, 2),
                                 {"clientOrderId": "sb1-1-1"})
    assert order["status"] == "open" and order["clientOrderId"] == "sb1-1-1"
    fetched = binance.fetch_order(order["id"], "BTC/USDT")
    assert fetched["status"] == "open" and fetched["remaining"] == 0.01
    by_client = binance.fetch_order(None, "BTC/USDT", {"origClientOrderId": "sb1-1-1"})
    assert by_client["id"] == order["id"]
    assert [o["id"] for o in binance.fetch_open_orders("BTC/USDT")] == [order["id"]]
    cancelled = binance.cancel_order(order["id"], "BTC/USDT")
    assert cancelled["status"] == "canceled"
    assert _balances(simex, account["id"])["USDT"] == {"free": Decimal(100000), "locked": Decimal(0)}
    assert binance.fetch_open_orders("BTC/USDT") == []
    assert [o["status"] for o in binance.fetch_orders("BTC/USDT")] == ["canceled"]


def test_market_orders_fill_across_the_spread_and_show_in_my_trades(simex: SimexServer, binance: Any,
                                                                      account: dict[str, Any]) -> None:
    book = binance.fetch_order_book("BTC/USDT")
    ask, bid = Decimal(str(book["asks"][0][0])), Decimal(str(book["bids"][0][0]))
    assert ask - bid == Decimal("0.02")
    buy = binance.create_order("BTC/USDT", "market", "buy", 0.01)
    assert buy["status"] == "closed" and Decimal(str(buy["average"])) == ask
    assert buy["fee"] == {"currency": "BTC", "cost": 0.00001}
    sell = binance.create_order("BTC/USDT", "market", "sell", 0.005)
    assert sell["status"] == "closed" and Decimal(str(sell["average"])) == bid
    by_cost = binance.create_market_buy_order_with_cost("BTC/USDT", 100)
    expected_qty = (Decimal(100) / ask).quantize(Decimal("0.00001"), rounding="ROUND_DOWN")
    assert Decimal(str(by_cost["filled"])) == expected_qty
    trades = binance.fetch_my_trades("BTC/USDT")
    assert [(t["side"], t["order"]) for t in trades] == [("buy", buy["id"]), ("sell", sell["id"]),
                                                         ("buy", by_cost["id"])]
    assert trades[1]["fee"]["currency"] == "USDT" and trades[0]["takerOrMaker"] == "taker"
    bal = _balances(simex, account["id"])
    base = Decimal(2) + Decimal("0.01") - Decimal("0.00001") - Decimal("0.005") + expected_qty \
        - (expected_qty * Decimal("0.001")).quantize(Decimal("0.00000001"), rounding="ROUND_UP")
    assert bal["BTC"]["free"] == base


def test_post_only_rests_and_refuses_to_take(binance: Any) -> None:
    price = binance.fetch_ticker("BTC/USDT")["last"]
    maker = binance.create_order("BTC/USDT", "limit", "sell", 0.01, round(price * 1.05, 2), {"postOnly": True})
    assert maker["info"]["type"] == "LIMIT_MAKER" and maker["status"] == "open"
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        binance.create_order("BTC/USDT", "limit", "buy", 0.01, round(price * 1.05, 2), {"postOnly": True})


def test_stop_loss_and_take_profit_limits_rest_untriggered(binance: Any) -> None:
    price = binance.fetch_ticker("BTC/USDT")["last"]
    stop = binance.create_order("BTC/USDT", "limit", "sell", 0.01, round(price * 0.89, 2),
                                {"stopLossPrice": round(price * 0.9, 2)})
    take = binance.create_order("BTC/USDT", "limit", "sell", 0.01, round(price * 1.1, 2),
                                {"takeProfitPrice": round(price * 1.1, 2)})
    assert stop["info"]["type"] == "STOP_LOSS_LIMIT" and take["info"]["type"] == "TAKE_PROFIT_LIMIT"
    fetched = binance.fetch_order(stop["id"], "BTC/USDT")
    assert fetched["status"] == "open" and fetched["triggerPrice"] == round(price * 0.9, 2)
    assert binance.cancel_order(take["id"], "BTC/USDT")["status"] == "canceled"
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        binance.create_order("BTC/USDT", "limit", "sell", 0.01, round(price * 1.1, 2),
                             {"stopLossPrice": round(price * 1.1, 2)})


def test_time_in_force_ioc_and_fok(binance: Any) -> None:
    price = binance.fetch_ticker("BTC/USDT")["last"]
    missed = binance.create_order("BTC/USDT", "limit", "buy", 0.01, round(price * 0.9, 2), {"timeInForce": "IOC"})
    assert missed["status"] == "expired" and missed["filled"] == 0
    missed_fok = binance.create_order("BTC/USDT", "limit", "buy", 0.01, round(price * 0.9, 2),
                                      {"timeInForce": "FOK"})
    assert missed_fok["status"] == "expired"
    taken = binance.create_order("BTC/USDT", "limit", "buy", 0.01, round(price * 1.01, 2), {"timeInForce": "FOK"})
    assert taken["status"] == "closed" and taken["filled"] == 0.01


def test_duplicate_client_order_id_is_refused_while_the_first_is_open(binance: Any) -> None:
    price = binance.fetch_ticker("BTC/USDT")["last"]
    first = binance.create_order("BTC/USDT", "limit", "buy", 0.01, round(price * 0.9, 2), {"clientOrderId": "dup"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        binance.create_order("BTC/USDT", "limit", "buy", 0.01, round(price * 0.9, 2), {"clientOrderId": "dup"})
    binance.cancel_order(first["id"], "BTC/USDT")
    again = binance.create_order("BTC/USDT", "limit", "buy", 0.01, round(price * 0.9, 2), {"clientOrderId": "dup"})
    assert again["id"] != first["id"]


def test_cancel_all_open_orders(binance: Any) -> None:
    price = binance.fetch_ticker("BTC/USDT")["last"]
    for i in range(3):
        binance.create_order("BTC/USDT", "limit", "buy", 0.01, round(price * (0.9 - i / 100), 2))
    cancelled = binance.cancel_all_orders("BTC/USDT")
    assert len(cancelled) == 3 and binance.fetch_open_orders("BTC/USDT") == []


def test_public_market_data(binance: Any) -> None:
    assert binance.fetch_time() > 0
    ticker = binance.fetch_ticker("ETH/BTC")
    assert ticker["bid"] < ticker["last"] < ticker["ask"]
    assert set(binance.fetch_tickers()) == {"BTC/USDT", "ETH/BTC", "XRP/ETH"}
    candles = binance.fetch_ohlcv("BTC/USDT", "1m", limit=5)
    assert candles and all(c[3] <= min(c[1], c[4]) and c[2] >= max(c[1], c[4]) for c in candles)
    prices = binance.public_get_ticker_price()
    assert {p["symbol"] for p in prices} == {"BTCUSDT", "ETHBTC", "XRPETH"}
    assert binance.public_get_ticker_bookticker({"symbol": "XRPETH"})["symbol"] == "XRPETH"
    assert binance.public_get_ping() == {}
    assert binance.fetch_status()["status"] == "ok"
    average = binance.public_get_avgprice({"symbol": "BTCUSDT"})
    assert average["mins"] == 5 and float(average["price"]) > 0


@pytest.mark.parametrize(
    ("amount", "price_factor", "params", "error"),
    [
        (10, 0.9, {}, ccxt.InsufficientFunds),         # -2010 insufficient balance
        (10000, 0.9, {}, ccxt.InvalidOrder),           # -1013 LOT_SIZE (above maxQty)
        (0.0001, 0.9, {}, ccxt.BadRequest),            # -1013 NOTIONAL (ccxt: BadRequest off binance.com)
    ],
)
def test_order_refusals_raise_ccxt_classes(binance: Any, amount: float, price_factor: float,
                                           params: dict[str, Any], error: type[Exception]) -> None:
    price = binance.fetch_ticker("BTC/USDT")["last"]
    with pytest.raises(error):
        binance.create_order("BTC/USDT", "limit", "buy", amount, round(price * price_factor, 2), params)


def test_unknown_orders_raise_order_not_found(binance: Any) -> None:
    with pytest.raises(ccxt.OrderNotFound):  # -2011
        binance.cancel_order("999999", "BTC/USDT")
    with pytest.raises(ccxt.OrderNotFound):  # -2013
        binance.fetch_order("999999", "BTC/USDT")
    filled = binance.create_order("BTC/USDT", "market", "buy", 0.001)
    with pytest.raises(ccxt.OrderNotFound):  # a filled order cannot be cancelled
        binance.cancel_order(filled["id"], "BTC/USDT")


def test_authentication_errors(simex: SimexServer, account: dict[str, Any]) -> None:
    key = simex.admin.create_key(account["id"])
    wrong_secret = _client(simex, {"key": key["key"], "secret": "not-the-secret"})
    with pytest.raises(ccxt.AuthenticationError):  # -1022
        wrong_secret.fetch_balance()
    unknown = _client(simex, {"key": "nope", "secret": "x"})
    with pytest.raises(ccxt.AuthenticationError):  # -2015
        unknown.fetch_balance()
    fenced = simex.admin.create_key(account["id"], ip_whitelist=["10.1.2.3"])
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        _client(simex, fenced).fetch_balance()
    read_only = simex.admin.create_key(account["id"], permissions=["reading"])
    client = _client(simex, read_only)
    client.load_markets()
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        client.create_order("BTC/USDT", "market", "buy", 0.001)


def test_stale_timestamp_is_an_invalid_nonce(simex: SimexServer, account: dict[str, Any]) -> None:
    client = _client(simex, simex.admin.create_key(account["id"]), timeDifference=120_000)
    with pytest.raises(ccxt.InvalidNonce, match="-1021"):
        client.fetch_balance()


def test_ed25519_key_signs_requests(simex: SimexServer, account: dict[str, Any]) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
    key = simex.admin.create_key(account["id"], public_key_pem=public_pem)
    assert key["secret"] is None and key["kind"] == "ed25519"
    client = _client(simex, {"key": key["key"], "secret": private_pem})
    client.load_markets()
    assert client.fetch_balance()["USDT"]["total"] == 100000
    order = client.create_order("BTC/USDT", "market", "buy", 0.001)
    assert order["status"] == "closed"
    other = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()).decode()
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        _client(simex, {"key": key["key"], "secret": other}).fetch_balance()


def test_api_restrictions_report_the_key(simex: SimexServer, account: dict[str, Any]) -> None:
    key = simex.admin.create_key(account["id"], permissions=["spot", "withdrawals", "universal_transfer"],
                                 ip_whitelist=["127.0.0.1"])
    client = _client(simex, key, sandbox=False)
    info = client.sapi_get_account_apirestrictions()
    assert info["ipRestrict"] is True and info["enableWithdrawals"] is True
    assert info["permitsUniversalTransfer"] is True and info["enableInternalTransfer"] is False
    assert info["enableSpotAndMarginTrading"] is True and info["enableReading"] is True


def test_used_weight_header(binance: Any) -> None:
    away_from_window_edge(60, margin_s=3)
    binance.fetch_ticker("BTC/USDT")
    first = int(binance.last_response_headers["X-MBX-USED-WEIGHT-1M"])
    binance.fetch_balance()  # weight 20
    assert int(binance.last_response_headers["X-MBX-USED-WEIGHT-1M"]) >= first + 20
