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
    text = f"sb{bot}-{deal}-{step}"
    if len(text) > MAX_CLIENT_ID_LENGTH:  # every part within its bound, the whole too long for Binance
        with pytest.raises(ValueError, match="more than the 36"):
            ClientOrderId(bot, deal, step)
        return
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


AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_take_profit_with_a_base_fee_remainder_is_not_a_loss() -> None:
    """Bought 0.0215 BTC at 46377 with the 0.1 % fee taken in BTC (0.0214785 arrive), sold
    the stepped-down 0.0214 at 46471.13 with the fee in USDT: the 0.0000785 BTC left in the
    account is valued at the exit price, not lost."""
    bought, fee_btc = Decimal("0.0214785"), Decimal("0.0000215")
    sold, exit_price = Decimal("0.0214"), Decimal("46471.13")
    deal = Deal("b", 1, Pair("BTC", "USDT"), Direction.LONG, AT, bought=bought, spent=bought * 46377,
                sold=sold, received=sold * exit_price,
                fees_quote=fee_btc * 46377 + sold * exit_price * Decimal("0.001"))
    cash = deal.received - deal.spent - deal.fees_quote
    assert cash < 0  # the cash alone looks like a loss
    assert deal.realized_profit == cash + (bought - sold) * exit_price
    assert deal.realized_profit > 0


def test_a_short_values_base_still_owed_at_its_buy_back_price() -> None:
    deal = Deal("b", 1, Pair("BTC", "USDT"), Direction.SHORT, AT, sold=Decimal("0.02"), received=Decimal("1000"),
                bought=Decimal("0.01998"), spent=Decimal("0.01998") * 49000, fees_quote=Decimal("1.98"))
    cash = deal.received - deal.spent - deal.fees_quote
    assert deal.realized_profit == cash - Decimal("0.00002") * 49000


@given(st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10), places=4),
       st.decimals(min_value=Decimal(1), max_value=Decimal(100_000), places=2),
       st.decimals(min_value=Decimal(1), max_value=Decimal(100_000), places=2))
def test_without_a_remainder_the_profit_is_the_cash(amount: Decimal, entry: Decimal, exit_price: Decimal) -> None:
    deal = Deal("b", 1, Pair("BTC", "USDT"), Direction.LONG, AT, bought=amount, spent=amount * entry,
                sold=amount, received=amount * exit_price)
    assert deal.realized_profit == amount * (exit_price - entry)
