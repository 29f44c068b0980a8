"""The shared building blocks on their own: fee accounting, rounding, exits, interest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from sealbot.bots.base import Interest
from sealbot.bots.common.exits import ExitSettings, ExitWatch, Target, arm, target_price, watch_interest, watch_price
from sealbot.bots.common.markets import MarketSpec, base_for_quote, tradable
from sealbot.bots.common.paths import merge
from sealbot.bots.common.position import apply_fill, breakeven_price, exposure
from sealbot.bots.common.serde import dump_dataclass, load_dataclass
from sealbot.domain import ClientOrderId, CloseReason, Deal, Direction, Fill, Pair, Side

PAIR = Pair("BTC", "USDT")
T = datetime(2024, 1, 1, tzinfo=UTC)
CID = ClientOrderId("b", 1, "bo")


def fill(side: Side, price: str, amount: str, fee: str, currency: str) -> Fill:
    return Fill(CID, PAIR, side, D(price), D(amount), D(fee), currency, T, "t")


def test_a_base_fee_on_a_buy_reduces_what_the_deal_holds() -> None:
    deal = Deal("b", 1, PAIR, Direction.LONG, T)
    deal = apply_fill(deal, fill(Side.BUY, "100", "1", "0.001", "BTC"))
    assert (deal.bought, deal.spent, deal.fees_quote) == (D("0.999"), D("99.900"), D("0.100"))
    assert deal.average_entry == D(100)  # the fill price, not distorted by the fee
    deal = apply_fill(deal, fill(Side.SELL, "110", "0.999", "0.10989", "USDT"))
    assert exposure(deal) == 0
    # cash: paid 100, received 109.89 - 0.10989 = 109.78011
    assert deal.realized_profit == D("9.78011")


def test_a_fee_in_a_third_asset_moves_neither_base_nor_quote() -> None:
    deal = apply_fill(Deal("b", 1, PAIR, Direction.LONG, T), fill(Side.BUY, "100", "1", "0.0005", "BNB"))
    assert (deal.bought, deal.spent, deal.fees_quote) == (D(1), D(100), D(0))


def test_breakeven_includes_entry_fees() -> None:
    deal = apply_fill(Deal("b", 1, PAIR, Direction.LONG, T), fill(Side.BUY, "100", "1", "0.1", "USDT"))
    assert breakeven_price(deal) == D("100.1")
    short = apply_fill(Deal("b", 1, PAIR, Direction.SHORT, T), fill(Side.SELL, "100", "1", "0.1", "USDT"))
    assert breakeven_price(short) == D("99.9")


@given(
    quote=st.decimals(min_value=1, max_value=10**6, places=2),
    price=st.decimals(min_value="0.01", max_value=10**5, places=2),
)
def test_quote_to_base_never_exceeds_the_budget(quote: D, price: D) -> None:
    rules = MarketSpec(pair="BTC/USDT", tick_size=D("0.01"), step_size=D("0.0001")).rules
    amount = base_for_quote(rules, quote, price)
    assert amount * price <= quote
    assert amount % D("0.0001") == 0


def test_tradable_respects_minimums() -> None:
    rules = MarketSpec(pair="BTC/USDT", min_amount=D("0.001"), min_notional=D(5)).rules
    assert not tradable(rules, D("0.0009"), D(10000))
    assert not tradable(rules, D("0.001"), D(4000))
    assert tradable(rules, D("0.001"), D(5000))


def test_target_price_on_total_and_on_base_order_volume() -> None:
    deal = Deal("b", 1, PAIR, Direction.LONG, T, bought=D(2), spent=D(190))
    total = ExitSettings(targets=(Target(D(100), profit_pct=D(1)),))
    assert target_price(total, deal, total.targets[0]) == D("95.95")  # 95 * 1.01
    base = ExitSettings(targets=total.targets, profit_basis=D(10))
    assert target_price(base, deal, base.targets[0]) == D("95.05")  # (190 + 0.1) / 2


def test_stop_timeout_counts_from_the_first_breach_and_resets() -> None:
    settings = ExitSettings(stop_loss_pct=D(5), stop_loss_timeout=60)
    deal = Deal("b", 1, PAIR, Direction.LONG, T, bought=D(1), spent=D(100))
    w = arm(settings, deal, None, False)
    assert w.sl_price == D(95)
    w, fired = watch_price(settings, w, Direction.LONG, D(94), T)
    assert fired is None and w.breached_since == T
    assert watch_interest(settings, w, Direction.LONG).until == T + timedelta(seconds=60)
    w, fired = watch_price(settings, w, Direction.LONG, D("95.5"), T + timedelta(seconds=30))
    assert fired is None and w.breached_since is None
    w, _ = watch_price(settings, w, Direction.LONG, D(94), T + timedelta(seconds=40))
    _, fired = watch_price(settings, w, Direction.LONG, D(94), T + timedelta(seconds=100))
    assert fired is CloseReason.STOP_LOSS


def test_short_interest_wakes_on_the_first_level_reached() -> None:
    # Short, trailing take profit activates at 97, trailing stop peak at 99, stop at 103:
    # falling, 99 is reached first (below = 99); rising, 103 (above = 103).
    settings = ExitSettings(stop_loss_pct=D(3), trailing_stop=True, trailing_deviation=D(1))
    w = ExitWatch(sl_price=D(103), sl_peak=D(99), trail_price=D(97))
    assert watch_interest(settings, w, Direction.SHORT) == Interest(below=D(99), above=D(103))


def test_merge_takes_the_nearest_levels() -> None:
    merged = merge([Interest(below=D(90), above=D(110)), Interest(below=D(95), until=T), Interest(above=D(105))])
    assert merged == Interest(below=D(95), above=D(105), until=T)


def test_serde_round_trips_nested_state() -> None:
    deal = Deal("b", 7, PAIR, Direction.SHORT, T, sold=D("0.5"), received=D("50.25"))
    data = dump_dataclass(deal)
    assert data["sold"] == "0.5" and data["pair"] == "BTC/USDT" and data["direction"] == "short"
    assert load_dataclass(Deal, data) == deal
