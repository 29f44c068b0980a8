"""The fill model, order by order: touch vs through, gaps, slippage, stops, fees, rules."""

from __future__ import annotations

from decimal import Decimal as D

import pandas as pd
import pytest

from sealbot.backtest.fills import FeeCurrency, FillModel, Working, limit_crosses, next_on_segment
from sealbot.backtest.simulate import run
from sealbot.domain import (
    ClientOrderId,
    FeeSchedule,
    MarketRules,
    Order,
    OrderCanceled,
    OrderFilled,
    OrderStatus,
    OrderType,
    OrderWasRejected,
    Side,
)

from . import scripted
from .scripted import PAIR, Script, Spec

RULES = MarketRules(PAIR, D("0.01"), D("0.001"), min_notional=D("10"))
FEES = FeeSchedule(maker=D("0.001"), taker=D("0.002"))
BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET


def frame(*bars: tuple[float, float, float, float]) -> pd.DataFrame:
    """1m candles (open, high, low, close) from 2024-01-01 00:00 UTC."""
    times = pd.date_range("2024-01-01", periods=len(bars), freq="1min", tz="UTC")
    return pd.DataFrame({"open_time": times, "open": [b[0] for b in bars], "high": [b[1] for b in bars],
                         "low": [b[2] for b in bars], "close": [b[3] for b in bars], "volume": 1.0})


def backtest(script: Script, *bars: tuple[float, float, float, float], **options):  # type: ignore[no-untyped-def]
    options.setdefault("fees", FEES)
    options.setdefault("rules", RULES)
    return run(scripted, script, {PAIR: frame(*bars)}, **options)


def fills_of(result):  # type: ignore[no-untyped-def]
    return [(f.client_id.step, f.side, f.price, f.is_maker, f.at.strftime("%H:%M:%S")) for f in result.fills]


def test_backtest_limit_buy_needs_a_trade_through_its_price_by_default() -> None:
    script = Script(at_close={0: (Spec("b", BUY, LIMIT, D("1"), D("100")),)})
    bars = ((104, 105, 103, 104), (105, 106, 100, 104), (104, 104, 99.99, 100))
    through = backtest(script, *bars)
    # Candle 1 only touches 100: no fill. Candle 2 (red: open, high, low, close) trades
    # below it on its second segment (high -> low), at 00:02:40.
    assert fills_of(through) == [("b", BUY, D("100"), True, "00:02:40")]
    touch = backtest(script, *bars, limit_fill="touch")
    # Candle 1 is red too (close 104 < open 105): open -> high -> low touches 100 on the
    # second segment.
    assert fills_of(touch) == [("b", BUY, D("100"), True, "00:01:40")]


def test_backtest_resting_order_crossed_by_a_gap_fills_at_its_limit() -> None:
    script = Script(at_close={0: (Spec("b", BUY, LIMIT, D("1"), D("100")),)})
    # Candle 2 opens at 95 after candle 1 closed at 104: on a 24/7 market the price walked
    # down through 100, where the resting buy filled, as maker, at the open time.
    result = backtest(script, (104, 105, 103, 104), (105, 106, 101, 104), (95, 96, 94, 95))
    assert fills_of(result) == [("b", BUY, D("100"), True, "00:02:00")]


def test_backtest_order_decided_on_a_close_meets_the_next_open() -> None:
    script = Script(at_close={1: (Spec("b", BUY, LIMIT, D("1"), D("100")), Spec("m", SELL, MARKET, D("0.5")))})
    # The bot decides on candle 1's close (104); its orders arrive at candle 2's open, 95.
    # The buy limit at 100 crosses on arrival and takes at 95 (taker); the market sell gets 95.
    result = backtest(script, (104, 105, 103, 104), (105, 106, 101, 104), (95, 96, 94, 95))
    assert fills_of(result) == [("b", BUY, D("95"), False, "00:02:00"), ("m", SELL, D("95"), False, "00:02:00")]


def test_backtest_market_order_pays_slippage_rounded_against_it() -> None:
    script = Script(at_close={0: (Spec("m", BUY, MARKET, D("1")), Spec("s", SELL, MARKET, D("1")))})
    result = backtest(script, (100, 101, 99, 100), (100.5, 101, 99, 100), slippage=D("0.001"))
    # 100.5 * 1.001 = 100.6005 -> up to the tick 100.61; 100.5 * 0.999 = 100.3995 -> down 100.39.
    assert [f.price for f in result.fills] == [D("100.61"), D("100.39")]


def test_backtest_red_candle_goes_high_before_low_and_green_the_other_way() -> None:
    orders = (Spec("b", BUY, LIMIT, D("1"), D("100")), Spec("s", SELL, LIMIT, D("1"), D("111")))
    script = Script(at_close={0: orders})
    red = backtest(script, (105, 106, 104, 105), (105, 112, 95, 100))
    assert [(s, t) for s, _, _, _, t in fills_of(red)] == [("s", "00:01:20"), ("b", "00:01:40")]
    green = backtest(script, (105, 106, 104, 105), (105, 112, 95, 110))
    assert [(s, t) for s, _, _, _, t in fills_of(green)] == [("b", "00:01:20"), ("s", "00:01:40")]


def test_backtest_orders_placed_on_a_fill_can_fill_later_in_the_same_candle() -> None:
    script = Script(at_close={0: (Spec("b", BUY, LIMIT, D("1"), D("100")),)},
                    on_fill={"b": (Spec("tp", SELL, LIMIT, D("1"), D("103")),)})
    # Green candle 1: open 101 -> low 99 fills the buy; the take profit placed at that
    # moment fills on the way up to 104.
    result = backtest(script, (101, 102, 100.5, 101), (101, 104, 99, 102))
    assert fills_of(result) == [("b", BUY, D("100"), True, "00:01:20"), ("tp", SELL, D("103"), True, "00:01:40")]


def test_backtest_order_placed_on_a_fill_and_already_marketable_takes_at_that_price() -> None:
    script = Script(at_close={0: (Spec("b", BUY, LIMIT, D("1"), D("100")),)},
                    on_fill={"b": (Spec("m", SELL, MARKET, D("1")), Spec("x", SELL, LIMIT, D("1"), D("99")))})
    result = backtest(script, (101, 102, 100.5, 101), (101, 101.5, 98, 99))
    assert fills_of(result) == [("b", BUY, D("100"), True, "00:01:40"), ("m", SELL, D("100"), False, "00:01:40"),
                                ("x", SELL, D("100"), False, "00:01:40")]


def test_backtest_same_price_fills_in_placement_order() -> None:
    orders = (Spec("b2", BUY, LIMIT, D("1"), D("100")), Spec("b1", BUY, LIMIT, D("1"), D("100")),
              Spec("b0", BUY, LIMIT, D("1"), D("101")))
    result = backtest(Script(at_close={0: orders}), (105, 106, 104, 105), (105, 105, 99, 99))
    assert [f.client_id.step for f in result.fills] == ["b0", "b2", "b1"]


def test_backtest_stop_loss_limit_triggers_on_touch_then_acts_as_a_limit() -> None:
    stop = Spec("sl", SELL, OrderType.STOP_LOSS_LIMIT, D("1"), price=D("97"), stop_price=D("98"))
    high_limit = Spec("sl2", SELL, OrderType.STOP_LOSS_LIMIT, D("1"), price=D("99.5"), stop_price=D("98"))
    script = Script(at_close={0: (stop, high_limit)})
    # Red candle 1: 100 -> 100.5 -> 98 (touches both stops) -> 99. ``sl`` (limit 97) sells
    # at the trigger price 98 as taker; ``sl2`` becomes a sell limit at 99.5 that candle 2
    # trades through (green: 99 -> 98.5 -> 100) and fills as maker.
    result = backtest(script, (100, 101, 99.5, 100), (100, 100.5, 98, 99), (99, 100, 98.5, 100))
    assert fills_of(result) == [("sl", SELL, D("98"), False, "00:01:40"), ("sl2", SELL, D("99.5"), True, "00:02:40")]


def test_backtest_take_profit_limit_buy_triggers_when_price_falls_to_it() -> None:
    spec = Spec("tpb", BUY, OrderType.TAKE_PROFIT_LIMIT, D("1"), price=D("99"), stop_price=D("99"))
    result = backtest(Script(at_close={0: (spec,)}), (100, 101, 99.5, 100), (100, 100.2, 98.9, 99.5))
    assert fills_of(result) == [("tpb", BUY, D("99"), False, "00:01:40")]


def test_backtest_fees_are_charged_in_the_currency_the_exchange_uses() -> None:
    script = Script(at_close={0: (Spec("b", BUY, MARKET, D("2")), Spec("s", SELL, LIMIT, D("1"), D("120")))})
    bars = ((100, 100, 100, 100), (100, 121, 99, 110))
    received = backtest(script, *bars)
    buy, sell = received.fills
    assert (buy.fee, buy.fee_currency) == (D("2") * D("0.002"), "BTC")  # taker, in the base received
    assert (sell.fee, sell.fee_currency) == (D("120") * D("0.001"), "USDT")  # maker, in the quote received
    quote = backtest(script, *bars, fee_currency=FeeCurrency.QUOTE)
    assert [(f.fee, f.fee_currency) for f in quote.fills] == [(D("0.400"), "USDT"), (D("0.120"), "USDT")]
    # The account: 2 BTC bought at 100 less 0.004 BTC fee, 1 sold at 120 less 0.12 USDT.
    outcome = received.outcomes[0]
    assert (outcome.base, outcome.quote) == (D("2") - D("0.004") - D("1"), D("-200") + D("120") - D("0.12"))
    assert received.metrics.pnl == outcome.quote + outcome.base * D("110")


def test_backtest_orders_breaking_market_rules_are_rejected_with_the_rule() -> None:
    script = Script(at_close={0: (Spec("tiny", BUY, LIMIT, D("0.05"), D("100")),  # 5 USDT < min notional 10
                                  Spec("odd", BUY, LIMIT, D("1.0005"), D("100")),  # not on the 0.001 step
                                  Spec("tick", BUY, LIMIT, D("1"), D("100.005")))})  # not on the 0.01 tick
    result = backtest(script, (100, 101, 99, 100), (100, 101, 90, 95))
    assert result.fills == []
    reasons = {r.client_id: r.reason for r in result.orders}
    assert all(r.status is OrderStatus.REJECTED for r in result.orders)
    assert reasons["sbs-1-tiny"].startswith("notional") and reasons["sbs-1-odd"].startswith("amount")
    assert reasons["sbs-1-tick"].startswith("price")
    seen = result.final_state.events
    assert sum(isinstance(e, OrderWasRejected) for e in seen) == 3


def test_backtest_post_only_that_would_take_is_rejected_and_duplicates_too() -> None:
    script = Script(at_close={0: (Spec("pm", BUY, OrderType.LIMIT_MAKER, D("1"), D("105")),
                                  Spec("ok", BUY, LIMIT, D("1"), D("90"))),
                              1: (Spec("ok", BUY, LIMIT, D("1"), D("91")),)})
    result = backtest(script, (100, 101, 99, 100), (100, 101, 99, 100), (100, 101, 99, 100))
    records = {r.client_id: r for r in result.orders}
    assert records["sbs-1-pm"].status is OrderStatus.REJECTED
    assert records["sbs-1-ok"].status is OrderStatus.OPEN and records["sbs-1-ok"].price == D("90")
    rejected = [e for e in result.final_state.events if isinstance(e, OrderWasRejected)]
    assert [e.reason for e in rejected] == ["post-only order would take liquidity", "duplicate client order id"]


def test_backtest_canceled_order_never_fills_and_the_bot_hears_of_it() -> None:
    script = Script(at_close={0: (Spec("b", BUY, LIMIT, D("1"), D("99")), Spec("x", BUY, LIMIT, D("1"), D("98")))},
                    cancel_on_fill={"b": ("x",)})
    result = backtest(script, (100, 101, 99.5, 100), (100, 100, 98.5, 99), (99, 99, 90, 95))
    assert [f.client_id.step for f in result.fills] == ["b"]
    canceled = [e for e in result.final_state.events if isinstance(e, OrderCanceled)]
    assert [e.client_id.step for e in canceled] == ["x"]
    fills = [e for e in result.final_state.events if isinstance(e, OrderFilled)]
    assert fills[0].remaining == 0  # no partial fills


def test_backtest_limit_crosses_and_segment_order_units() -> None:
    assert limit_crosses(BUY, D("100"), D("99.99"), "through")
    assert not limit_crosses(BUY, D("100"), D("100"), "through")
    assert limit_crosses(BUY, D("100"), D("100"), "touch")
    assert limit_crosses(SELL, D("100"), D("100.01"), "through")

    def working(step: str, side: Side, price: str, seq: int) -> Working:
        order = Order(ClientOrderId("s", 1, step), PAIR, side, LIMIT, D("1"), D(price))
        return Working(order, seq)

    book = [working("a", BUY, "99", 2), working("b", BUY, "99.5", 3), working("c", SELL, "101", 1)]
    hit = next_on_segment(book, D("100"), D("98"), "through")
    assert hit is not None and (hit[0].order.client_id.step, hit[1]) == ("b", D("99.5"))
    hit = next_on_segment(book, D("100"), D("102"), "through")
    assert hit is not None and hit[0].order.client_id.step == "c"
    assert next_on_segment(book, D("100"), D("99.5"), "through") is None
    assert next_on_segment(book, D("100"), D("99.5"), "touch") is not None
    # Several orders at one point: after the first fills there, the walk goes on from
    # that point (start == end) in the segment's direction and meets the next.
    assert next_on_segment(book[:1], D("99"), D("99"), "touch", down=True) is not None


def test_backtest_fee_model_units() -> None:
    model = FillModel(RULES, FEES)
    assert model.fee(BUY, D("100"), D("2"), is_maker=True) == (D("0.002"), "BTC")
    assert model.fee(SELL, D("100"), D("2"), is_maker=False) == (D("0.400"), "USDT")
    base_model = FillModel(RULES, FEES, FeeCurrency.BASE)
    assert base_model.fee(SELL, D("100"), D("2"), is_maker=True) == (D("0.002"), "BTC")


@pytest.mark.parametrize("skip", [True, False])
def test_backtest_scripted_results_do_not_depend_on_skipping(skip: bool) -> None:
    script = Script(at_close={0: (Spec("b", BUY, LIMIT, D("1"), D("100")),)},
                    on_fill={"b": (Spec("tp", SELL, LIMIT, D("1"), D("103")),)})
    result = backtest(script, (101, 102, 100.5, 101), (101, 104, 99, 102), skip=skip)
    assert len(result.fills) == 2


def test_backtest_a_bot_that_answers_itself_forever_is_stopped_with_an_error() -> None:
    from types import SimpleNamespace

    from sealbot.backtest.simulate import BotLoopError
    from sealbot.bots.base import Interest
    from sealbot.domain import CandleClosed, PlaceOrder

    def step(config: object, n: int, event: object) -> tuple[int, list[object]]:
        if isinstance(event, CandleClosed | OrderFilled):  # every fill buys again, at once
            spec = Spec(f"m{n}", BUY, MARKET, D("1"))
            return n + 1, [PlaceOrder(spec.order())]
        return n, []

    bot = SimpleNamespace(initial_state=lambda c: 0, step=step, interest=lambda c, s: Interest.ALWAYS)
    with pytest.raises(BotLoopError, match="more than 10000 events"):
        run(bot, None, {PAIR: frame((100, 101, 99, 100), (100, 101, 99, 100))}, rules=RULES)


def test_backtest_stop_bot_ends_the_run_where_it_was_asked() -> None:
    from types import SimpleNamespace

    from sealbot.bots.base import Interest
    from sealbot.domain import CandleClosed, StopBot

    def step(config: object, n: int, event: object) -> tuple[int, list[object]]:
        if isinstance(event, CandleClosed):
            return n + 1, [StopBot("enough")] if n == 2 else []
        return n, []

    bot = SimpleNamespace(initial_state=lambda c: 0, step=step, interest=lambda c, s: Interest.ALWAYS)
    result = run(bot, None, {PAIR: frame(*[(100, 101, 99, 100)] * 6)}, rules=RULES)
    assert result.stopped == "enough" and result.final_state == 3
    assert result.metrics.candles_stepped == 3 and result.metrics.candles == 6


def test_backtest_with_balances_orders_the_account_cannot_cover_are_rejected() -> None:
    from sealbot.domain import BalanceReported

    script = Script(at_close={0: (Spec("b1", BUY, LIMIT, D("1"), D("100")),  # reserves 100 of 150 USDT
                                  Spec("b2", BUY, LIMIT, D("1"), D("95")),  # 95 > the 50 left: rejected
                                  Spec("s1", SELL, LIMIT, D("1"), D("120")))},  # no BTC yet: rejected
                    on_fill={"b1": (Spec("s2", SELL, LIMIT, D("0.999"), D("102")),)})
    result = backtest(script, (101, 102, 100.5, 101), (101, 103, 99, 102), balances={"USDT": D("150")})
    status = {r.client_id: (r.status, r.reason) for r in result.orders}
    assert status["sbs-1-b2"] == (OrderStatus.REJECTED, "insufficient balance")
    assert status["sbs-1-s1"] == (OrderStatus.REJECTED, "insufficient balance")
    assert [f.client_id.step for f in result.fills] == ["b1", "s2"]
    # 150 - 100 paid; +1 BTC less the 0.001 BTC maker fee; sold 0.999 at 102 less 0.1 % in USDT.
    proceeds = D("0.999") * 102
    assert result.final_balances == {"BTC": D("0"), "USDT": D("50") + proceeds - proceeds * D("0.001")}
    reported = [(e.asset, e.free) for e in result.final_state.events if isinstance(e, BalanceReported)]
    assert reported == [("BTC", D(0)), ("USDT", D("150")),  # at the start
                        ("BTC", D("0.999")), ("USDT", D("50")),  # after b1 filled
                        ("BTC", D(0)), ("USDT", result.final_balances["USDT"])]  # after s2 filled


def test_backtest_without_balances_funds_are_unlimited() -> None:
    script = Script(at_close={0: (Spec("b", BUY, MARKET, D("1000")),)})
    result = backtest(script, (100, 100, 100, 100), (100, 100, 100, 100))
    assert len(result.fills) == 1 and result.final_balances is None


@pytest.mark.parametrize("fee_currency", [FeeCurrency.QUOTE, FeeCurrency.BASE])
def test_backtest_with_balances_a_fee_paid_in_the_spent_asset_must_be_covered_too(fee_currency: FeeCurrency) -> None:
    # A buy whose fee is charged in quote needs the notional plus the fee; a sell whose fee
    # is charged in base needs the amount plus the fee. Accepting them on the notional (or
    # amount) alone drove the account's balance below zero (-0.09 USDT on a DCA base order).
    if fee_currency is FeeCurrency.QUOTE:
        short = Spec("short", BUY, MARKET, D("1"))  # 100 + 0.2 taker fee > 100.1
        enough = Spec("enough", BUY, MARKET, D("0.5"))  # 50 + 0.1 fee
        balances = {"USDT": D("100.1")}
    else:
        short = Spec("short", SELL, MARKET, D("1"))  # 1 + 0.002 BTC fee > 1.001
        enough = Spec("enough", SELL, MARKET, D("0.5"))
        balances = {"BTC": D("1.001")}
    script = Script(at_close={0: (short, enough)})
    result = backtest(script, (100, 100, 100, 100), (100, 100, 100, 100), balances=balances,
                      fee_currency=fee_currency)
    status = {r.client_id: (r.status, r.reason) for r in result.orders}
    assert status["sbs-1-short"] == (OrderStatus.REJECTED, "insufficient balance")
    assert status["sbs-1-enough"][0] is OrderStatus.FILLED
    assert result.final_balances is not None and all(v >= 0 for v in result.final_balances.values())


def test_backtest_with_balances_a_resting_buy_sets_aside_its_quote_fee() -> None:
    # The resting buy's maker fee (0.1 USDT, in quote) is held with it, so a second order
    # cannot spend it and leave the account short when the first one fills.
    script = Script(at_close={0: (Spec("rest", BUY, LIMIT, D("1"), D("99")),  # holds 99 + 0.198 (taker rate)
                                  Spec("other", BUY, MARKET, D("0.1")))})  # 10 + 0.02 > the 9.902 left
    result = backtest(script, (100, 100, 100, 100), (100, 100, 98, 99), balances={"USDT": D("109.1")},
                      fee_currency=FeeCurrency.QUOTE)
    status = {r.client_id: (r.status, r.reason) for r in result.orders}
    assert status["sbs-1-other"] == (OrderStatus.REJECTED, "insufficient balance")
    assert status["sbs-1-rest"][0] is OrderStatus.FILLED
    assert result.final_balances is not None and all(v >= 0 for v in result.final_balances.values())
