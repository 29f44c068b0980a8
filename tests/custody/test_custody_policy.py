"""The signing policy reads the payload itself: withdrawals, transfers, off-list pairs."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealbot.custody.errors import SigningRefused
from sealbot.custody.policy import check, compact_symbol

ALLOWED = frozenset({"BTCUSDT", "ETHUSDT"})


@pytest.mark.parametrize("path", [
    "sapi/v1/capital/withdraw/apply", "/SAPI/V1/CAPITAL/WITHDRAW/APPLY", "sapi/v1/asset/transfer",
    "api/v1/withdrawals", "api/v2/accounts/inner-transfer", "api/v3/accounts/universal-transfer",
    "some/new/Withdraw-endpoint", "api/v5/asset/transfer",
])
def test_withdrawal_and_transfer_paths_are_refused(path: str) -> None:
    with pytest.raises(SigningRefused) as caught:
        check("POST", path, {}, b"coin=BTC&amount=1&timestamp=1", ALLOWED)
    assert caught.value.policy_rule == "withdrawal"


def test_a_withdrawal_disguised_as_an_order_is_refused_from_the_payload() -> None:
    # the caller lies about the path; the bytes to sign carry a destination address
    with pytest.raises(SigningRefused, match="names a destination"):
        check("POST", "api/v3/order", {"symbol": "BTCUSDT"},
              b"coin=BTC&address=bc1qattacker&amount=1&timestamp=1", ALLOWED)
    body = json.dumps({"currency": "USDT", "type": "transfer", "to": "x"}).encode()
    with pytest.raises(SigningRefused):
        check("POST", "api/v1/orders", {}, b"1700000000000POST/api/v1/orders" + body, ALLOWED)


def test_orders_on_allowed_pairs_pass() -> None:
    check("POST", "api/v3/order", {"symbol": "BTCUSDT"}, b"symbol=BTCUSDT&side=BUY&timestamp=1", ALLOWED)
    kucoin = b'1700000000000POST/api/v1/orders{"clientOid":"sb1-2-3","symbol":"ETH-USDT","side":"buy"}'
    check("POST", "api/v1/orders", {"symbol": "ETH-USDT"}, kucoin, ALLOWED)
    check("GET", "api/v3/account", {}, b"timestamp=1", ALLOWED)


def test_the_payload_symbol_wins_over_what_the_caller_declares() -> None:
    with pytest.raises(SigningRefused) as caught:
        check("POST", "api/v3/order", {"symbol": "BTCUSDT"}, b"symbol=PUMPBTC&side=BUY&timestamp=1", ALLOWED)
    assert caught.value.policy_rule == "allow-list" and "PUMPBTC" in caught.value.reason
    body = b'1700POST/api/v1/orders{"symbol":"PUMP-USDT","side":"buy"}'
    with pytest.raises(SigningRefused, match="PUMPUSDT"):
        check("POST", "api/v1/orders", {"symbol": "BTC-USDT"}, body, ALLOWED)


def test_batch_orders_are_checked_item_by_item() -> None:
    body = json.dumps([{"symbol": "BTCUSDT"}, {"symbol": "SHIBUSDT"}])
    with pytest.raises(SigningRefused, match="SHIBUSDT"):
        check("POST", "api/v3/batchOrders", {}, f"batchOrders={body}&timestamp=1".encode(), ALLOWED)


def test_an_order_without_a_symbol_is_refused_but_cancels_pass() -> None:
    with pytest.raises(SigningRefused, match="names no symbol"):
        check("POST", "api/v3/order", {}, b"side=BUY&timestamp=1", ALLOWED)
    check("DELETE", "api/v3/order", {"symbol": "PUMPBTC"}, b"symbol=PUMPBTC&orderId=1&timestamp=1", ALLOWED)


def test_no_allow_list_means_any_pair_and_empty_means_none() -> None:
    check("POST", "api/v3/order", {}, b"symbol=PUMPBTC&timestamp=1", None)
    with pytest.raises(SigningRefused):
        check("POST", "api/v3/order", {}, b"symbol=BTCUSDT&timestamp=1", frozenset())


@given(st.sampled_from(["BTC/USDT", "btc-usdt", "BTC_USDT", "BTCUSDT", "btc:usdt"]))
def test_symbol_forms_compact_alike(symbol: str) -> None:
    assert compact_symbol(symbol) == "BTCUSDT"


def test_a_caller_lying_about_the_method_cannot_skip_the_allow_list() -> None:
    # Binance does not sign the HTTP method: the payload's ``side`` gives the order away
    with pytest.raises(SigningRefused, match="PUMPBTC"):
        check("GET", "api/v3/account", {}, b"symbol=PUMPBTC&side=BUY&type=MARKET&quantity=1000&timestamp=1", ALLOWED)


def test_a_transfer_disguised_as_a_read_is_refused() -> None:
    # the body of Binance's sapi/v1/asset/transfer, presented as an account read
    with pytest.raises(SigningRefused, match="moves an amount"):
        check("GET", "api/v3/account", {}, b"type=MAIN_UMFUTURE&asset=USDT&amount=100&timestamp=1", ALLOWED)
    with pytest.raises(SigningRefused, match="destination"):
        check("POST", "api/v3/order", {}, b"toEmail=x%40evil.test&asset=USDT&timestamp=1", ALLOWED)


def test_reads_and_cancels_may_name_any_pair() -> None:
    check("GET", "api/v3/openOrders", {}, b"symbol=PUMPBTC&timestamp=1", ALLOWED)
    check("GET", "api/v3/myTrades", {"symbol": "PUMPBTC"}, b"symbol=PUMPBTC&timestamp=1", ALLOWED)
    check("DELETE", "api/v1/orders/abc", {}, b"1700DELETE/api/v1/orders/abc", ALLOWED)


_METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "get", ""])


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz/-_", max_size=20),
       st.sampled_from(["withdraw", "WITHDRAW", "Transfer", "transfer", "withDraw"]),
       st.text(alphabet="abcdefghijklmnopqrstuvwxyz/-_", max_size=20), _METHODS)
def test_any_path_naming_a_withdrawal_or_transfer_is_refused(head: str, word: str, tail: str, method: str) -> None:
    with pytest.raises(SigningRefused) as caught:
        check(method, f"{head}{word}{tail}", {}, b"timestamp=1", None)
    assert caught.value.policy_rule == "withdrawal"


@given(st.from_regex(r"[A-Z]{2,6}", fullmatch=True), st.from_regex(r"[A-Z]{3,5}", fullmatch=True),
       st.sampled_from(["BUY", "SELL", "buy"]), _METHODS, st.sampled_from(["api/v3/order", "api/v3/account", ""]))
def test_an_order_on_a_pair_outside_the_list_is_refused_whatever_the_caller_claims(
        base: str, quote: str, side: str, method: str, path: str) -> None:
    symbol = f"{base}{quote}"
    payload = f"symbol={symbol}&side={side}&type=LIMIT&quantity=1&price=1&timestamp=1".encode()
    if symbol in ALLOWED:
        check(method, path, {}, payload, ALLOWED)
    else:
        with pytest.raises(SigningRefused) as caught:
            check(method, path, {"symbol": "BTCUSDT"}, payload, ALLOWED)
        assert caught.value.policy_rule == "allow-list"
