"""TradingView bodies: both 3Commas formats accepted unchanged; every bad body refused
naming the field and the reason; the secret never shows in errors or reprs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from sealbot.bots.signals import (
    ParsedSignal,
    SignalFormat,
    SignalRejected,
    StaleSignal,
    hash_secret,
    parse_signal,
    verify_secret,
)
from sealbot.domain import AmountType, Pair, SignalAction

SECRET = "eyJhbGciOiJIUzI1NiJ9.s3cr3tT0kenValue-0123456789abcdef"
NOW = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)

# As 3Commas generates it for a signal bot (TradingView fills the placeholders).
SIGNAL_BOT_BODY = b"""{
  "secret": "eyJhbGciOiJIUzI1NiJ9.s3cr3tT0kenValue-0123456789abcdef",
  "max_lag": "300",
  "timestamp": "2024-05-01T12:00:00Z",
  "trigger_price": "64123.45",
  "tv_exchange": "BINANCE",
  "tv_instrument": "BTCUSDT",
  "action": "enter_long",
  "bot_uuid": "8f0e3a6c-1111-2222-3333-444455556666",
  "order": {"amount": "150", "currency_type": "quote"}
}"""

# As 3Commas generates it for starting a DCA deal.
DCA_BODY = b"""{
  "message_type": "bot",
  "bot_id": 12345678,
  "email_token": "eyJhbGciOiJIUzI1NiJ9.s3cr3tT0kenValue-0123456789abcdef",
  "delay_seconds": 30,
  "pair": "USDT_ETH"
}"""


def body(**changes: Any) -> bytes:
    data = json.loads(SIGNAL_BOT_BODY)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return json.dumps(data).encode()


def test_the_signal_bot_body_is_accepted_as_is() -> None:
    parsed = parse_signal(SIGNAL_BOT_BODY, NOW)
    assert parsed.format is SignalFormat.SIGNAL_BOT
    assert parsed.route == "8f0e3a6c-1111-2222-3333-444455556666"
    assert (parsed.exchange, parsed.instrument) == ("BINANCE", "BTCUSDT")
    s = parsed.signal
    assert s.action is SignalAction.ENTER_LONG and s.pair == Pair("BTC", "USDT")
    assert (s.amount, s.amount_type, s.trigger_price) == (D("150"), AmountType.QUOTE, D("64123.45"))
    assert s.at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert verify_secret(SECRET, parsed.secret) and verify_secret(hash_secret(SECRET), parsed.secret)
    assert not verify_secret(SECRET + "x", parsed.secret)


def test_the_dca_start_body_is_accepted_as_is() -> None:
    parsed = parse_signal(DCA_BODY, NOW)
    assert parsed.format is SignalFormat.DCA_BOT and parsed.route == "12345678"
    assert parsed.signal.action is SignalAction.START_DEAL and parsed.signal.pair == Pair("ETH", "USDT")
    assert parsed.not_before == NOW + timedelta(seconds=30)
    assert verify_secret(SECRET, parsed.secret)


@pytest.mark.parametrize(("action", "extra", "expected", "amount"), [
    ("close_at_market_price", {}, SignalAction.CLOSE_AT_MARKET, None),
    ("add_funds_in_quote", {"volume": "25.5"}, SignalAction.ADD_FUNDS_IN_QUOTE, D("25.5")),
    ("add_funds_in_base", {"volume": 2}, SignalAction.ADD_FUNDS_IN_BASE, D("2")),
])
def test_dca_actions(action: str, extra: dict[str, Any], expected: SignalAction, amount: D | None) -> None:
    data = {**json.loads(DCA_BODY), "action": action, **extra}
    signal = parse_signal(json.dumps(data).encode(), NOW).signal
    assert (signal.action, signal.amount) == (expected, amount)


@pytest.mark.parametrize(("position", "previous", "action", "expected"), [
    ("long", "flat", "buy", SignalAction.ENTER_LONG),
    ("flat", "long", "sell", SignalAction.EXIT_LONG),
    ("short", "flat", "sell", SignalAction.ENTER_SHORT),
    ("flat", "short", "buy", SignalAction.EXIT_SHORT),
])
def test_strategy_buy_sell_is_read_with_market_position(position: str, previous: str, action: str,
                                                        expected: SignalAction) -> None:
    info = {"market_position": position, "prev_market_position": previous, "market_position_size": "1"}
    parsed = parse_signal(body(action=action, strategy_info=info,
                               order={"amount": "0.5", "currency_type": "base"}), NOW)
    assert parsed.signal.action is expected and parsed.signal.amount_type is AmountType.BASE


def test_the_signal_id_comes_from_the_body_not_the_arrival_time() -> None:
    first = parse_signal(SIGNAL_BOT_BODY, NOW).signal.signal_id
    assert parse_signal(SIGNAL_BOT_BODY, NOW + timedelta(seconds=20)).signal.signal_id == first
    assert parse_signal(body(timestamp="2024-05-01T12:00:01Z"), NOW).signal.signal_id != first
    assert parse_signal(body(action="exit_long"), NOW).signal.signal_id != first
    # the secret is not part of it
    assert parse_signal(body(secret="another-secret-value"), NOW).signal.signal_id == first
    # the DCA body has no timestamp: the receive second stands in for it
    dca = parse_signal(DCA_BODY, NOW).signal.signal_id
    assert parse_signal(DCA_BODY, NOW.replace(microsecond=500)).signal.signal_id == dca
    assert parse_signal(DCA_BODY, NOW + timedelta(seconds=1)).signal.signal_id != dca


def test_the_instrument_resolves_through_known_pairs_first() -> None:
    weird = Pair("ABCUSD", "T")
    parsed = parse_signal(body(tv_instrument="BINANCE:ABCUSDT"), NOW, known_pairs=(weird,))
    assert parsed.signal.pair == weird
    assert parse_signal(body(tv_instrument="ETHBTC"), NOW).signal.pair == Pair("ETH", "BTC")
    assert parse_signal(body(tv_instrument="BTCUSDT.P"), NOW).signal.pair == Pair("BTC", "USDT")


BAD = [
    (b"{not json", "body", "not valid JSON"),
    (b"[1, 2]", "body", "JSON object"),
    (b"\xff\xfe", "body", "UTF-8"),
    (body(secret=None), "secret", "required"),
    (body(bot_uuid=None), "bot_uuid", "required"),
    (body(action="moon"), "action", "must be one of"),
    (body(action=7), "action", "must be a string"),
    (body(trigger_price="{{close}}"), "trigger_price", "placeholder"),
    (body(trigger_price="abc"), "trigger_price", "not a number"),
    (body(trigger_price="-5"), "trigger_price", "positive"),
    (body(trigger_price=True), "trigger_price", "must be a number"),
    (body(max_lag="soon"), "max_lag", "not a number"),
    (body(max_lag="0"), "max_lag", "positive"),
    (body(timestamp="yesterday"), "timestamp", "ISO 8601"),
    (body(order="100"), "order", "object"),
    (body(order={"amount": "0", "currency_type": "quote"}), "order.amount", "positive"),
    (body(order={"amount": "5", "currency_type": "coins"}), "order.currency_type", "must be one of"),
    (body(action="buy"), "strategy_info", "required"),
    (b'{"message_type": "bot", "bot_id": 1, "pair": "USDT_BTC"}', "email_token", "required"),
    (b'{"message_type": "other", "email_token": "x", "bot_id": 1}', "message_type", "bot"),
    (b'{"message_type": "bot", "email_token": "xyzsecret", "bot_id": 1.5}', "bot_id", "whole number"),
    (b'{"message_type": "bot", "email_token": "xyzsecret", "bot_id": 1, "pair": "BTC"}', "pair", "QUOTE_BASE"),
    (b'{"message_type": "bot", "email_token": "xyzsecret", "bot_id": 1, "delay_seconds": -1}', "delay_seconds",
     "negative"),
    (b'{"message_type": "bot", "email_token": "xyzsecret", "bot_id": 1, "action": "add_funds_in_quote"}',
     "volume", "required"),
    (b'{"message_type": "bot", "email_token": "xyzsecret", "bot_id": 1, "action": "sell_all"}', "action",
     "must be one of"),
    (b'{"a": NaN}', "body", "not valid JSON"),
]


@pytest.mark.parametrize(("raw", "field", "reason"), BAD)
def test_bad_bodies_are_refused_naming_the_field(raw: bytes, field: str, reason: str) -> None:
    with pytest.raises(SignalRejected) as caught:
        parse_signal(raw, NOW)
    assert caught.value.field == field and reason in caught.value.reason
    assert SECRET not in str(caught.value) and "xyzsecret" not in str(caught.value)


def test_stale_and_future_signals_are_refused_with_the_reason() -> None:
    with pytest.raises(StaleSignal, match="400 s old, more than the 300 s allowed"):
        parse_signal(SIGNAL_BOT_BODY, NOW + timedelta(seconds=370))
    # the bot's own limit applies even when the body allows more
    with pytest.raises(StaleSignal, match="more than the 10 s allowed"):
        parse_signal(SIGNAL_BOT_BODY, NOW, max_age=timedelta(seconds=10))
    with pytest.raises(StaleSignal, match="future"):
        parse_signal(SIGNAL_BOT_BODY, NOW - timedelta(minutes=10))
    # an age limit without a timestamp cannot be checked: refused rather than trusted
    with pytest.raises(StaleSignal, match="required"):
        parse_signal(body(timestamp=None), NOW)
    assert parse_signal(body(timestamp=None, max_lag=None), NOW).signal.at == NOW
    epoch = int(datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp())
    assert parse_signal(body(timestamp=str(epoch)), NOW).signal.at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_oversize_bodies_are_refused_before_parsing() -> None:
    with pytest.raises(SignalRejected) as caught:
        parse_signal(b"{" + b" " * 20000 + b"}", NOW)
    assert caught.value.field == "body" and "more than the 16384" in caught.value.reason
    with pytest.raises(SignalRejected):
        parse_signal(SIGNAL_BOT_BODY, NOW, max_body=100)


def test_the_secret_never_shows_in_repr_or_str() -> None:
    parsed: ParsedSignal = parse_signal(SIGNAL_BOT_BODY, NOW)
    for text in (repr(parsed), str(parsed), repr(parsed.secret), f"{parsed.secret}"):
        assert SECRET not in text and "s3cr3t" not in text
    assert "***" in repr(parsed.secret)
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(parsed.secret)


def test_a_wrong_type_secret_is_refused_without_echoing_it() -> None:
    with pytest.raises(SignalRejected) as caught:
        parse_signal(body(secret=["s3cr3t-in-a-list"]), NOW)
    assert caught.value.field == "secret" and "s3cr3t" not in str(caught.value)
