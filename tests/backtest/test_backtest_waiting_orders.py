"""Orders that wait to reach the book (decided on a close, or placed on a fill with
``react="segment_end"``) enter one by one; when the fill of one makes the bot cancel
another that is still waiting, the cancel must find it: the order never reaches the book
and the bot hears it was canceled. (A bug once lost that cancel: the later order rested
anyway and the bot, waiting for the confirmation, never placed its replacement.)"""

from __future__ import annotations

from decimal import Decimal as D

from sealbot.domain import OrderCanceled, OrderStatus

from .scripted import Script, Spec
from .test_backtest_fills import BUY, LIMIT, MARKET, SELL, backtest


def canceled_steps(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.client_id.step for e in result.final_state.events if isinstance(e, OrderCanceled)]


def test_backtest_an_arrival_canceled_by_an_earlier_arrivals_fill_never_reaches_the_book() -> None:
    # Both decided on candle 0's close, both reach candle 1's open: the market buy fills
    # first, and on its fill the bot cancels the sell, which is still waiting behind it.
    script = Script(at_close={0: (Spec("m", BUY, MARKET, D("1")), Spec("x", SELL, LIMIT, D("1"), D("105")))},
                    cancel_on_fill={"m": ("x",)})
    result = backtest(script, (100, 101, 99, 100), (100, 106, 99.5, 105.5), (105.5, 107, 105, 106))
    assert [f.client_id.step for f in result.fills] == ["m"]  # 106 and 107 trade through 105: x is gone
    assert {r.client_id: r.status for r in result.orders}["sbs-1-x"] is OrderStatus.CANCELED
    assert canceled_steps(result) == ["x"]


def test_backtest_a_reaction_canceled_by_an_earlier_reactions_fill_never_reaches_the_book() -> None:
    # On the way from 101.5 down to 98 the buy at 100 fills; its reactions (a market buy
    # and a sell at 105) wait for the segment's end; the market buy enters first and on
    # its fill the bot cancels the sell still waiting.
    script = Script(at_close={0: (Spec("b", BUY, LIMIT, D("1"), D("100")),)},
                    on_fill={"b": (Spec("m", BUY, MARKET, D("1")), Spec("x", SELL, LIMIT, D("1"), D("105")))},
                    cancel_on_fill={"m": ("x",)})
    result = backtest(script, (101, 101.5, 100.5, 101), (101, 101.5, 98, 99), (99, 107, 99, 106),
                      react="segment_end")
    assert [f.client_id.step for f in result.fills] == ["b", "m"]
    assert {r.client_id: r.status for r in result.orders}["sbs-1-x"] is OrderStatus.CANCELED
    assert canceled_steps(result) == ["x"]
