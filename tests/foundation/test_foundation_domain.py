"""Domain value types: pairs, client order ids, deals."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealbot.domain import ClientOrderId, Deal, Direction, Pair
from sealbot.domain.candles import timeframe_seconds
from sealbot.domain.orders import MAX_CLIENT_ID_LENGTH


@pytest.mark.parametrize("text", ["BTC/USDT", "btc-usdt", "BTC_USDT", " BTC/USDT "])
def test_pair_parses_the_usual_spellings(text: str) -> None:
    assert Pair.parse(text) == Pair("BTC", "USDT")


def test_three_commas_pairs_are_quote_first() -> None:
    assert Pair.parse_quote_base("USDT_BTC") == Pair("BTC", "USDT")


@pytest.mark.parametrize("text", ["BTCUSDT", "BTC/", "/USDT", "BTC/US DT", ""])
def test_bad_pairs_say_why(text: str) -> None:
    with pytest.raises(ValueError, match="pair"):
        Pair.parse(text)


@given(
    bot=st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=12),
    deal=st.integers(0, 10**9 - 1),
    step=st.from_regex(r"[a-z0-9]{1,6}(\.[0-9]{1,5})?", fullmatch=True),
)
def test_client_order_ids_round_trip_and_fit_every_exchange(bot: str, deal: int, step: str) -> None:
    cid = ClientOrderId(bot, deal, step)
    assert ClientOrderId.parse(cid.text) == cid
    assert len(cid.text) <= MAX_CLIENT_ID_LENGTH
    assert ClientOrderId(bot, deal, step).text == cid.text  # derived, never random


@pytest.mark.parametrize("text", ["x-1-bo", "sb-1-bo", "sbA-x-bo", "web_abc123", "sb1-1-"])
def test_foreign_ids_are_not_ours(text: str) -> None:
    with pytest.raises(ValueError):
        ClientOrderId.parse(text)


def test_deal_profit_is_net_of_fees() -> None:
    deal = Deal("1", 1, Pair("BTC", "USDT"), Direction.LONG, datetime(2026, 1, 1, tzinfo=UTC),
                bought=Decimal("0.002"), spent=Decimal("60"), sold=Decimal("0.002"), received=Decimal("62"),
                fees_quote=Decimal("0.122"))
    assert deal.realized_profit == Decimal("1.878")
    assert deal.average_entry == Decimal("30000")
    assert deal.position == 0


@pytest.mark.parametrize(("tf", "seconds"), [("1m", 60), ("5m", 300), ("4h", 14400), ("1d", 86400), ("1w", 604800)])
def test_timeframes(tf: str, seconds: int) -> None:
    assert timeframe_seconds(tf) == seconds


@pytest.mark.parametrize("tf", ["0m", "5x", "m", ""])
def test_bad_timeframes(tf: str) -> None:
    with pytest.raises(ValueError, match="timeframe"):
        timeframe_seconds(tf)
