"""Editing a running trade's exits (``EditExits``) changes only the part that was edited."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

from bots_dca.dca_sim import T0, MiniExchange, Run, candles, drive
from bots_dca.test_smart_trade import cfg
from sealbot.bots import smart
from sealbot.domain import CancelOrder, CloseReason, PlaceOrder
from sealbot.domain.events import EditExits

TWO_TARGETS = [
    {"amount_percentage": "50", "profit_percentage": "2"},
    {"amount_percentage": "50", "profit_percentage": "10"},
]


def _run(c: smart.SmartTradeConfig, rows: list[tuple[str, str, str, str]], edit: EditExits) -> Run:
    ex = MiniExchange(fee=D(0), direction=c.direction)
    return drive(smart.step, smart.interest, c, smart.initial_state(c), candles(rows), ex, extra={3: [edit]})


def test_a_stop_loss_edit_after_the_first_target_does_not_sell_that_target_again() -> None:
    # tp1 (0.5 at 102) fills; then only the stop is edited. The ladder must stay as it
    # was: tp2 for the 0.5 left, no second tp1.
    c = cfg(entry_type="market", stop_loss_percentage="5", take_profit_steps=TWO_TARGETS)
    rows = [("100", "100", "100", "100"), ("100", "102.5", "100", "102.5"), ("102.5", "102.5", "101", "101"),
            ("101", "101", "101", "101")]
    r = _run(c, rows, EditExits(1, T0 + timedelta(minutes=3), stop_loss_pct=D("3")))
    after_edit = [cmd for event, cmd in r.log if event in ("EditExits", "OrderCanceled")]
    assert not any(isinstance(cmd, PlaceOrder | CancelOrder) for cmd in after_edit), after_edit
    pos = r.state.pos
    assert pos.targets_done == 1
    assert pos.watch.sl_price == D("97")  # the new stop: 3 % below the entry
    assert [(o.step, o.amount) for o in pos.orders] == [("tp2", D("0.5000"))]


def test_a_take_profit_edit_keeps_the_trailing_stop_where_it_trailed_to() -> None:
    # The stop trailed from 95 up to 114 (5 % under the 120 peak); editing the take
    # profit must not put it back at 95: a fall to 113.5 closes the trade.
    c = cfg(entry_type="market", stop_loss_percentage="5", tsl_enabled=True,
            take_profit_steps=[{"amount_percentage": "100", "profit_percentage": "50"}])
    rows = [("100", "100", "100", "100"), ("100", "120", "100", "120"), ("120", "120", "119", "119"),
            ("119", "119", "113.5", "113.5")]
    r = _run(c, rows, EditExits(1, T0 + timedelta(minutes=3), take_profit_pct=D("60")))
    pos = r.state.pos
    assert pos.deal.close_reason is CloseReason.STOP_LOSS
    assert pos.watch.sl_price == D("114")
