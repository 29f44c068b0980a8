"""The three options that make the backtester fill like simex (docs/parity.md): a
synthetic spread (``spread_ticks``), fees rounded up to the exchange's precision
(``fee_decimals``) and reactions that reach the book at the end of the path segment
where the fill happened (``react="segment_end"``)."""

from __future__ import annotations

from decimal import ROUND_CEILING
from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sealbot.bots.dca as dca
from sealbot.backtest.fills import FillModel
from sealbot.backtest.simulate import run
from sealbot.domain import CandleClosed, FeeSchedule, OrderCanceled, OrderFilled, OrderStatus, OrderType

from .scripted import Script, Spec
from .test_backtest_fills import BUY, FEES, LIMIT, MARKET, RULES, SELL, backtest, fills_of
from .test_backtest_simulate import BTC, BTC_USDT, comparable, dca_config

EIGHT = D("0.00000001")


# -- spread_ticks ------------------------------------------------------------------------

def test_backtest_spread_market_orders_take_the_ask_or_bid_then_pay_slippage() -> None:
    script = Script(at_close={0: (Spec("m", BUY, MARKET, D("1")), Spec("s", SELL, MARKET, D("1")))})
    bars = ((100, 101, 99, 100), (100.5, 101, 99, 100))
    # Book at the next open 100.5 with two ticks each side: bid 100.48, ask 100.52.
    spread = backtest(script, *bars, spread_ticks=2)
    assert [(f.price, f.is_maker) for f in spread.fills] == [(D("100.52"), False), (D("100.48"), False)]
    # One tick plus 0.1 % slippage: 100.51 * 1.001 = 100.61051 -> up 100.62;
    # 100.49 * 0.999 = 100.38951 -> down 100.38.
    both = backtest(script, *bars, spread_ticks=1, slippage=D("0.001"))
    assert [f.price for f in both.fills] == [D("100.62"), D("100.38")]
    assert [f.price for f in backtest(script, *bars).fills] == [D("100.5"), D("100.5")]


def test_backtest_spread_limit_crosses_on_arrival_only_when_it_reaches_the_ask_or_bid() -> None:
    orders = (Spec("bat", BUY, LIMIT, D("1"), D("100.5")), Spec("bask", BUY, LIMIT, D("1"), D("100.51")),
              Spec("bfar", BUY, LIMIT, D("1"), D("101")), Spec("sat", SELL, LIMIT, D("1"), D("100.5")),
              Spec("sbid", SELL, LIMIT, D("1"), D("100.49")))
    script = Script(at_close={0: orders})
    bars = ((100, 101, 99, 100), (100.5, 100.5, 100.5, 100.5))  # the price stays at 100.5: nothing rests fills
    spread = backtest(script, *bars, spread_ticks=1)
    # A crossing limit takes at the book's ask/bid, a better price than its own limit.
    assert fills_of(spread) == [("bask", BUY, D("100.51"), False, "00:01:00"),
                                ("bfar", BUY, D("100.51"), False, "00:01:00"),
                                ("sbid", SELL, D("100.49"), False, "00:01:00")]
    status = {r.client_id: r.status for r in spread.orders}
    assert status["sbs-1-bat"] is status["sbs-1-sat"] is OrderStatus.OPEN
    # Without a spread 100.51 and 100.49 cross the price itself and take there.
    assert [(s, p) for s, _, p, _, _ in fills_of(backtest(script, *bars))] == [
        ("bask", D("100.5")), ("bfar", D("100.5")), ("sbid", D("100.5"))]


def test_backtest_spread_post_only_reaching_the_ask_is_rejected_and_below_it_rests() -> None:
    script = Script(at_close={0: (Spec("pm", BUY, OrderType.LIMIT_MAKER, D("1"), D("100.51")),
                                  Spec("ok", BUY, OrderType.LIMIT_MAKER, D("1"), D("100.5")))})
    result = backtest(script, (100, 101, 99, 100), (100.5, 100.5, 100.5, 100.5), spread_ticks=1)
    records = {r.client_id: r for r in result.orders}
    assert records["sbs-1-pm"].status is OrderStatus.REJECTED
    assert records["sbs-1-ok"].status is OrderStatus.OPEN


def test_backtest_spread_resting_orders_still_fill_at_their_limit_when_traded_through() -> None:
    script = Script(at_close={0: (Spec("b", BUY, LIMIT, D("1"), D("99")), Spec("s", SELL, LIMIT, D("1"), D("102")))})
    result = backtest(script, (100, 101, 99.5, 100), (100, 103, 98, 101), spread_ticks=5)
    assert fills_of(result) == [("b", BUY, D("99"), True, "00:01:20"), ("s", SELL, D("102"), True, "00:01:40")]


def test_backtest_spread_book_units() -> None:
    model = FillModel(RULES, FEES, spread_ticks=3)
    assert model.taker_price(BUY, D("100")) == D("100.03")
    assert model.taker_price(SELL, D("100")) == D("99.97")
    assert model.taker_price(SELL, D("0.02")) == D("0.01")  # the bid stays a positive price, one tick
    assert model.crosses_on_arrival(BUY, D("100.03"), D("100"), "through")
    assert not model.crosses_on_arrival(BUY, D("100.02"), D("100"), "touch")
    assert model.crosses_on_arrival(SELL, D("99.97"), D("100"), "through")
    assert not model.crosses_on_arrival(SELL, D("99.98"), D("100"), "touch")
    flat = FillModel(RULES, FEES)
    assert flat.taker_price(SELL, D("100")) == D("100")
    assert flat.crosses_on_arrival(BUY, D("100"), D("100"), "touch")
    assert not flat.crosses_on_arrival(BUY, D("100"), D("100"), "through")


# -- fee_decimals --------------------------------------------------------------------------

def test_backtest_fees_rounded_up_to_the_exchange_precision() -> None:
    model = FillModel(RULES, FEES, fee_decimals=8)
    # 0.001234 BTC * 0.001 = 0.000001234 -> 0.00000124 (the exchange never charges less)
    assert model.fee(BUY, D("100"), D("0.001234"), is_maker=True) == (D("0.00000124"), "BTC")
    # already on the precision: unchanged
    assert model.fee(BUY, D("100"), D("0.00123"), is_maker=True) == (D("0.00000123"), "BTC")
    # 46123.45 * 0.00123 * 0.002 = 0.113463687 USDT -> 0.11346369
    assert model.fee(SELL, D("46123.45"), D("0.00123"), is_maker=False) == (D("0.11346369"), "USDT")
    assert FillModel(RULES, FEES, fee_decimals=2).fee(SELL, D("100"), D("1.001"), is_maker=True) == (
        D("0.11"), "USDT")
    assert FillModel(RULES, FEES).fee(BUY, D("100"), D("0.001234"), is_maker=True) == (D("0.000001234"), "BTC")


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    price=st.integers(1, 10**9).map(lambda n: D(n) * D("0.01")),
    amount=st.integers(1, 10**8).map(lambda n: D(n) * D("0.00001")),
    rate=st.sampled_from([D("0.001"), D("0.00075"), D("0.0002"), D("0.00018"), D(0)]),
    side=st.sampled_from([BUY, SELL]),
    decimals=st.integers(0, 10),
)
def test_backtest_rounded_fee_is_the_smallest_amount_at_that_precision_not_below_the_exact_fee(
    price: D, amount: D, rate: D, side: Any, decimals: int
) -> None:
    fees = FeeSchedule(maker=rate, taker=rate)
    exact, currency = FillModel(RULES, fees).fee(side, price, amount, is_maker=True)
    rounded, same_currency = FillModel(RULES, fees, fee_decimals=decimals).fee(side, price, amount, is_maker=False)
    unit = D(1).scaleb(-decimals)
    assert same_currency == currency
    assert rounded % unit == 0
    assert exact <= rounded < exact + unit
    # the same number from integer arithmetic: ceil(exact / unit) units
    assert rounded == (exact / unit).to_integral_value(rounding=ROUND_CEILING) * unit


def test_backtest_rounded_fees_are_what_the_account_pays() -> None:
    script = Script(at_close={0: (Spec("b", BUY, MARKET, D("1.001")), Spec("s", SELL, LIMIT, D("0.5"), D("120.01")))})
    result = backtest(script, (100, 100, 100, 100), (100, 121, 99, 110), fee_decimals=8)
    buy, sell = result.fills
    assert (buy.fee, sell.fee) == (D("0.002002"), D("0.060005"))  # exact at 8 decimals already
    odd = backtest(Script(at_close={0: (Spec("b", BUY, MARKET, D("0.123")),)}), (100, 100, 100, 100),
                   (100, 121, 99, 110), fee_decimals=5)
    assert odd.fills[0].fee == D("0.00025")  # 0.123 * 0.002 = 0.000246 -> up to 0.00025
    assert odd.outcomes[0].base == D("0.123") - D("0.00025")


# -- react="segment_end" ---------------------------------------------------------------------

def canceled_steps(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.client_id.step for e in result.final_state.events if isinstance(e, OrderCanceled)]


REACTING = Script(at_close={0: (Spec("b", BUY, LIMIT, D("1"), D("100")),)},
                  on_fill={"b": (Spec("m", SELL, MARKET, D("1")), Spec("x", BUY, LIMIT, D("1"), D("99")))})
RED = ((101, 101.5, 100.5, 101), (101, 101.5, 98, 99))  # candle 1: 101 -> 101.5 -> 98 -> 99


def test_backtest_reactions_act_at_the_fill_by_default() -> None:
    # The buy fills at 100 on the way from 101.5 down to 98; its reactions act there: the
    # market sell gets 100, the buy at 99 rests and the same segment trades through it.
    assert fills_of(backtest(REACTING, *RED)) == [
        ("b", BUY, D("100"), True, "00:01:40"), ("m", SELL, D("100"), False, "00:01:40"),
        ("x", BUY, D("99"), True, "00:01:40")]


def test_backtest_reactions_at_segment_end_meet_the_book_where_the_segment_ends() -> None:
    # With react="segment_end" they reach the book at 98, the segment's end: the market
    # sell gets 98, the buy at 99 crosses on arrival and takes at 98 as taker.
    assert fills_of(backtest(REACTING, *RED, react="segment_end")) == [
        ("b", BUY, D("100"), True, "00:01:40"), ("m", SELL, D("98"), False, "00:01:40"),
        ("x", BUY, D("98"), False, "00:01:40")]
    # With simex's one-tick book they take at its bid 97.99 and ask 98.01.
    assert [(s, p) for s, _, p, _, _ in fills_of(backtest(REACTING, *RED, react="segment_end", spread_ticks=1))] == [
        ("b", D("100")), ("m", D("97.99")), ("x", D("98.01"))]


def test_backtest_a_reaction_canceled_before_its_segment_ends_never_reaches_the_book() -> None:
    script = Script(at_close={0: (Spec("b1", BUY, LIMIT, D("1"), D("100")), Spec("b2", BUY, LIMIT, D("1"), D("99")))},
                    on_fill={"b1": (Spec("x", BUY, LIMIT, D("1"), D("97.5")),)}, cancel_on_fill={"b2": ("x",)})
    # Candle 1 falls from 101.5 to 98 through both buys in one segment: x, placed when b1
    # filled, waits for the segment's end and is canceled when b2 fills first. Candle 2
    # trades down to 97, through 97.5, and fills nothing more.
    result = backtest(script, *RED, (99, 99, 97, 97.2), react="segment_end")
    assert [f.client_id.step for f in result.fills] == ["b1", "b2"]
    assert {r.client_id: r.status for r in result.orders}["sbs-1-x"] is OrderStatus.CANCELED
    assert canceled_steps(result) == ["x"]


def test_backtest_exchange_model_options_are_checked_by_name() -> None:
    config = dca_config()
    candles = {BTC_USDT: BTC.iloc[:10]}
    with pytest.raises(ValueError, match=r"^spread_ticks: "):
        run(dca, config, candles, spread_ticks=-1)
    with pytest.raises(ValueError, match=r"^fee_decimals: "):
        run(dca, config, candles, fee_decimals=-2)
    with pytest.raises(ValueError, match=r"^react: "):
        run(dca, config, candles, react="later")  # type: ignore[arg-type]


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.integers(0, 8000),
    length=st.integers(200, 1500),
    take_profit=st.sampled_from([D("0.2"), D("0.5")]),
    so_step=st.sampled_from([D("0.15"), D("0.4")]),
    safety=st.integers(1, 5),
    spread_ticks=st.sampled_from([0, 1, 3]),
    fee_decimals=st.sampled_from([None, 8]),
    react=st.sampled_from(["at_fill", "segment_end"]),
    short=st.booleans(),
)
def test_backtest_skipping_gives_the_stepped_result_with_the_exchange_model(
    start: int, length: int, take_profit: D, so_step: D, safety: int, spread_ticks: int, fee_decimals: int | None,
    react: Any, short: bool,
) -> None:
    config = dca_config(max_safety_orders=safety, active_safety_orders_count=min(safety, 2),
                        safety_order_step_percentage=so_step, take_profit=take_profit, safety_order_volume=D("300"),
                        strategy="short" if short else "long")
    candles = {BTC_USDT: BTC.iloc[start:start + length].reset_index(drop=True)}
    options: dict[str, Any] = dict(spread_ticks=spread_ticks, fee_decimals=fee_decimals, react=react)
    skipped = run(dca, config, candles, **options)
    stepped = run(dca, config, candles, skip=False, **options)
    assert comparable(skipped) == comparable(stepped)
    if fee_decimals is not None:
        assert all(f.fee % EIGHT == 0 for f in skipped.fills)


# -- indicators as the engine computes them ----------------------------------------------------

@pytest.mark.parametrize("timeframe", ["1m", "5m"])
def test_backtest_rsi_events_are_the_engine_feeds_own(timeframe: str) -> None:
    """The RSI the backtester delivers is the one the engine's feed computes live from the
    same candles: same values (to the engine's 4 decimals), same times."""
    from sealbot.backtest.indicators import rsi_events
    from sealbot.domain import Candle, IndicatorUpdated
    from sealbot.engine.candles import FeedHub, IndicatorSpec

    frame = BTC.iloc[:900].reset_index(drop=True)
    hub, live = FeedHub("1m"), []
    hub.subscribe("binance", BTC_USDT, "bot", "1m",
                  lambda _i, e: live.append(e) if isinstance(e, IndicatorUpdated) else None,
                  (IndicatorSpec("rsi", 14, timeframe),))
    for row in frame.itertuples():
        prices = [D(repr(float(v))) for v in (row.open, row.high, row.low, row.close, row.volume)]
        hub.publish("binance", Candle(BTC_USDT, "1m", row.open_time.to_pydatetime(), *prices))
    backtested = rsi_events(frame, BTC_USDT, timeframe, 14)
    # the engine's last bucket of a coarser timeframe closes only when the next one starts
    assert backtested[:len(live)] == live and len(live) >= len(backtested) - 1 > 100


# -- react="segment_end" at a new open: as the engine meets it ---------------------------------

GAP_DOWN = ((101, 102, 100.5, 101), (101, 101.5, 100.5, 101), (99, 99.5, 98.5, 99))  # 101 -> 99 between 1 and 2


def heard_fills(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.fill.client_id.step for e in result.final_state.events if isinstance(e, OrderFilled)]


def test_backtest_segment_end_a_cancel_decided_on_a_close_reaches_the_market_after_the_gap() -> None:
    # The buy at 100 rests from candle 1; the bot cancels it on candle 1's close, and
    # candle 2 opens at 99: the gap trades through 100.
    script = Script(at_close={0: (Spec("b", BUY, LIMIT, D("1"), D("100")),)}, cancel_at_close={1: ("b",)})
    # By default the cancel acts at the close: the order is gone before the gap.
    default = backtest(script, *GAP_DOWN)
    assert default.fills == [] and canceled_steps(default) == ["b"]
    # Like the engine, which hears of the close only at the next open, when the exchange has
    # already traded the gap: the order filled at its limit, the late cancel changes nothing.
    engine_like = backtest(script, *GAP_DOWN, react="segment_end")
    assert fills_of(engine_like) == [("b", BUY, D("100"), True, "00:02:00")]
    assert canceled_steps(engine_like) == [] and heard_fills(engine_like) == ["b"]


def test_backtest_segment_end_orders_decided_on_the_close_go_before_the_gap_fills_reactions() -> None:
    # r rests at 100; on candle 1's close the bot buys at market; the gap to candle 2
    # fills r, whose reaction is a market sell.
    script = Script(at_close={0: (Spec("r", BUY, LIMIT, D("1"), D("100")),), 1: (Spec("m", BUY, MARKET, D("1")),)},
                    on_fill={"r": (Spec("x", SELL, MARKET, D("1")),)})
    default = backtest(script, *GAP_DOWN)
    assert [f.client_id.step for f in default.fills] == ["r", "x", "m"]
    # The engine hears of the close at the open, after the gap filled r unseen; it sends
    # the market buy, then polls and hears of both fills in the order they happened; only
    # then does r's reaction go out.
    engine_like = backtest(script, *GAP_DOWN, react="segment_end", spread_ticks=1)
    assert [(s, p) for s, _, p, _, _ in fills_of(engine_like)] == [("r", D("100")), ("m", D("99.01")),
                                                                   ("x", D("98.99"))]
    assert heard_fills(engine_like) == ["r", "m", "x"]
    closes = [k for k, e in enumerate(engine_like.final_state.events) if isinstance(e, CandleClosed)]
    first_fill = next(k for k, e in enumerate(engine_like.final_state.events) if isinstance(e, OrderFilled))
    assert closes[1] < first_fill < closes[2]  # heard after candle 1's close, before candle 2's


# -- point_times ----------------------------------------------------------------------------------

def test_backtest_point_times_quarters_stamps_the_path_as_simex_holds_it() -> None:
    orders = (Spec("b", BUY, LIMIT, D("1"), D("100")), Spec("s", SELL, LIMIT, D("1"), D("111")))
    script = Script(at_close={0: orders}, on_fill={"s": (Spec("m", BUY, MARKET, D("1")),)})
    bars = ((105, 106, 104, 105), (105, 112, 95, 100), (99, 100, 98, 99.5))
    # red candle 1: open -> high (sell at 111) -> low (buy at 100) -> close; the market buy
    # placed on the sell's fill meets the path at the high's point
    thirds = backtest(script, *bars)
    assert [(st, t) for st, _, _, _, t in fills_of(thirds)] == [("s", "00:01:20"), ("m", "00:01:20"),
                                                                 ("b", "00:01:40")]
    quarters = backtest(script, *bars, point_times="quarters")
    assert [(st, t) for st, _, _, _, t in fills_of(quarters)] == [("s", "00:01:15"), ("m", "00:01:15"),
                                                                   ("b", "00:01:30")]
    # only the stamps differ: the same fills at the same prices
    assert [(f.client_id, f.price, f.is_maker) for f in thirds.fills] == [
        (f.client_id, f.price, f.is_maker) for f in quarters.fills]
    with pytest.raises(ValueError, match=r"^point_times: "):
        backtest(script, *bars, point_times="halves")


def test_backtest_point_times_quarters_puts_a_close_segment_fill_inside_its_candle() -> None:
    # red candle 1: 103 -> 103.5 -> 99 -> 102. The buy at 100 fills on the way down; the
    # sell at 101 placed then fills on the last segment, up to the close: with thirds that
    # fill is stamped 00:02:00 (the next open), with quarters 00:01:45, inside its candle
    script = Script(at_close={0: (Spec("b", BUY, LIMIT, D("1"), D("100")),)},
                    on_fill={"b": (Spec("s", SELL, LIMIT, D("1"), D("101")),)})
    bars = ((103, 104, 102.5, 103), (103, 103.5, 99, 102))
    assert [t for *_, t in fills_of(backtest(script, *bars))] == ["00:01:40", "00:02:00"]
    assert [t for *_, t in fills_of(backtest(script, *bars, point_times="quarters"))] == ["00:01:30", "00:01:45"]
