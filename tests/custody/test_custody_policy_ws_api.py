"""The signing policy and Binance's WebSocket API: the user-data subscription is the one
request signed there, with an HMAC key only; nothing money-moving gets through either."""

from __future__ import annotations

import pytest

from sealbot.custody.errors import SigningRefused
from sealbot.custody.policy import check

ALLOWED = frozenset({"BTCUSDT"})
KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"


@pytest.mark.parametrize("payload", [
    f"apiKey={KEY}&timestamp=1700000000000",
    f"apiKey={KEY}&recvWindow=10000&timestamp=1700000000000",
])
def test_the_user_data_subscription_is_signed_with_an_hmac_key(payload: str) -> None:
    check("WS", "ws-api/v3", {}, payload.encode(), ALLOWED)
    check("WS", "ws-api/v3", {}, payload.encode(), frozenset())  # no pair involved: an empty list is no bar


@pytest.mark.parametrize("payload", [
    # order.place over the WebSocket API, even on an allowed pair: sealbot does not trade there
    f"apiKey={KEY}&price=1&quantity=1&side=BUY&symbol=BTCUSDT&timeInForce=GTC&timestamp=1&type=LIMIT",
    f"apiKey={KEY}&orderId=5&symbol=BTCUSDT&timestamp=1",  # order.cancel / order.status
    f"apiKey={KEY}&omitZeroBalances=true&timestamp=1",  # account.status
])
def test_every_other_websocket_api_request_is_refused(payload: str) -> None:
    with pytest.raises(SigningRefused) as refused:
        check("WS", "ws-api/v3", {}, payload.encode(), None)
    assert refused.value.policy_rule == "ws-api"


def test_a_caller_cannot_pass_a_websocket_api_order_off_as_a_rest_read() -> None:
    payload = f"apiKey={KEY}&quantity=1&side=BUY&symbol=BTCUSDT&timestamp=1&type=MARKET".encode()
    with pytest.raises(SigningRefused, match="user-data stream subscription"):
        check("GET", "api/v3/account", {}, payload, None)


def test_an_ed25519_key_does_not_sign_the_subscription_it_would_also_log_a_session_on() -> None:
    payload = f"apiKey={KEY}&timestamp=1700000000000".encode()
    with pytest.raises(SigningRefused, match=r"session\.logon") as refused:
        check("WS", "ws-api/v3", {}, payload, ALLOWED, "ed25519")
    assert refused.value.policy_rule == "ws-api"
    with pytest.raises(SigningRefused, match=r"session\.logon"):  # whatever the caller calls it
        check("GET", "api/v3/account", {}, payload, ALLOWED, "ed25519")
    check("GET", "api/v3/account", {}, b"timestamp=1700000000000", ALLOWED, "ed25519")  # REST reads still sign


@pytest.mark.parametrize("payload", [
    f"address=bc1qxy&amount=1&apiKey={KEY}&coin=BTC&timestamp=1",
    f"amount=1&apiKey={KEY}&asset=USDT&timestamp=1&type=MAIN_UMFUTURE",
    f"apiKey={KEY}&timestamp=1&transfer=1",
])
def test_money_moving_payloads_stay_refused_on_the_websocket_api(payload: str) -> None:
    with pytest.raises(SigningRefused) as refused:
        check("WS", "ws-api/v3", {}, payload.encode(), None)
    assert refused.value.policy_rule == "withdrawal"


# KuCoin's private websocket is opened with a token from a REST request: the signer signs
# POST /api/v1/bullet-private (KuCoin's prehash: timestamp + method + endpoint + body) and
# nothing over the websocket itself. The policy admits that request as the REST read it is;
# the ws-api rule is not widened for it.
KUCOIN_BULLET = b'1700000000000POST/api/v1/bullet-private{}'


def test_kucoins_bullet_private_request_is_signed() -> None:
    check("POST", "bullet-private", {}, KUCOIN_BULLET, ALLOWED)
    check("POST", "bullet-private", {}, KUCOIN_BULLET, frozenset())  # names no pair: an empty list is no bar
    check("POST", "bullet-private", {}, b"1700000000000POST/api/v1/bullet-private", ALLOWED)  # no body


@pytest.mark.parametrize("payload", [
    # an order dressed as the token request: its side makes it an order, and the pair is outside the list
    b'1700000000000POST/api/v1/bullet-private{"side":"buy","symbol":"PEPE-USDT","size":"1"}',
    b'1700000000000POST/api/v1/bullet-private{"side":"buy","size":"1"}',  # an order naming no symbol
])
def test_an_order_passed_off_as_the_token_request_is_judged_as_an_order(payload: bytes) -> None:
    with pytest.raises(SigningRefused) as refused:
        check("POST", "bullet-private", {}, payload, ALLOWED)
    assert refused.value.policy_rule == "allow-list"


@pytest.mark.parametrize("payload", [
    f'1700000000000POST/api/v1/bullet-private{{"apiKey":"{KEY}","timestamp":"1","side":"buy"}}'.encode(),
    f'1700000000000POST/api/v1/bullet-private{{"apiKey":"{KEY}","symbol":"BTC-USDT"}}'.encode(),
])
def test_the_ws_api_rule_admits_no_kucoin_payload_beyond_the_subscription_shape(payload: bytes) -> None:
    with pytest.raises(SigningRefused) as refused:
        check("POST", "bullet-private", {}, payload, None)
    assert refused.value.policy_rule == "ws-api"


@pytest.mark.parametrize("path, payload", [
    ("bullet-private", b'1700000000000POST/api/v1/bullet-private{"address":"bc1qxy","amount":"1"}'),
    ("api/v3/withdrawals", b'1700000000000POST/api/v3/withdrawals{"currency":"BTC","amount":"1"}'),
])
def test_money_moving_kucoin_payloads_stay_refused_whatever_they_are_called(path: str, payload: bytes) -> None:
    with pytest.raises(SigningRefused) as refused:
        check("POST", path, {}, payload, None)
    assert refused.value.policy_rule == "withdrawal"
