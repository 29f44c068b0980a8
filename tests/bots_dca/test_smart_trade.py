"""Smart trade: hand-computed trades, validation, and properties over random paths."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bots_dca.dca_sim import T0, MiniExchange, Run, candle, candles, drive
from sealbot.bots import smart
from sealbot.bots.common import parse_config
from sealbot.domain import Candle, CloseAtMarket, CloseReason, DealChanged, DealStatus, InvalidConfig, PlaceOrder

MARKET = {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.0001"}
FLAT = ("100", "100", "100", "100")


def cfg(**over: Any) -> smart.SmartTradeConfig:
    data: dict[str, Any] = {"bot_id": "st1", "market": MARKET, "amount": "1", "fees": {"maker": "0", "taker": "0"}}
    data.update(over)
    return parse_config(smart.SmartTradeConfig, data)


def run(c: smart.SmartTradeConfig, rows: list[tuple[str, str, str, str]], **kw: Any) -> Run:
    ex = MiniExchange(fee=D(0), direction=c.direction)
    return drive(smart.step, smart.interest, c, smart.initial_state(c), candles(rows), ex, **kw)


def final_deal(r: Run) -> Any:
    deals = [c.deal for _, c in r.log if isinstance(c, DealChanged) and c.deal.status is not DealStatus.OPEN]
    assert len(deals) == 1
    return deals[0]


def orders(r: Run) -> list[tuple[str, str, str | None]]:
    out = []
    for _, c in r.log:
        if isinstance(c, PlaceOrder):
            o = c.order
            out.append((o.client_id.step, o.side.value, str(o.price) if o.price is not None else None))
    return out


TWO_TARGETS = [
    {"amount_percentage": "50", "profit_percentage": "1"},
    {"amount_percentage": "50", "profit_percentage": "2"},
]


def test_limit_entry_and_two_targets() -> None:
    # Buy 1 BTC at 99; targets 99 * 1.01 = 99.99 and 99 * 1.02 = 100.98, half each:
    # profit = 0.5 * 0.99 + 0.5 * 1.98 = 1.485.
    c = cfg(entry_type="limit", entry_price="99", take_profit_steps=TWO_TARGETS)
    r = run(c, [FLAT, ("100", "100", "98.5", "99.5"), ("99.5", "101", "99.5", "101")])
    assert orders(r) == [("bo", "buy", "99.00"), ("tp1", "sell", "99.99"), ("tp2", "sell", "100.98")]
    deal = final_deal(r)
    assert deal.close_reason is CloseReason.TAKE_PROFIT
    assert deal.realized_profit == D("1.485")
    assert r.state.stage is smart.Stage.DONE


def test_conditional_entry_waits_for_the_breakout() -> None:
    c = cfg(
        entry_type="conditional",
        entry_price="102",
        entry_trigger="at_or_above",
        take_profit_steps=[{"amount_percentage": "100", "price": "110"}],
    )
    r = run(c, [FLAT, ("100", "101.9", "100", "101"), ("101", "102.5", "101", "102.2")])
    assert orders(r) == [("bo", "buy", None), ("tp1", "sell", "110.00")]
    assert r.state.pos.deal.average_entry == D("102.2")  # market order filled at that close
    assert smart.interest(c, r.state).above is None  # no trailing: the resting TP does the work


def test_trailing_buy_enters_on_the_rebound() -> None:
    # Activates at 98; the low follows down to 96; 1 % above 96 is 96.96, first crossed at
    # bar 4's close (97): market buy there.
    c = cfg(entry_type="trailing", entry_price="98", entry_trailing_deviation="1")
    rows = [
        FLAT,
        ("100", "100", "97.5", "97.6"),
        ("97.6", "97.7", "96", "96.5"),
        ("96.5", "96.9", "96.2", "96.8"),
        ("96.8", "97", "96.8", "97"),
    ]
    r = run(c, rows)
    assert orders(r) == [("bo", "buy", None)]
    assert r.state.pos.deal.opened_at == T0 + timedelta(minutes=5)
    assert r.state.pos.deal.average_entry == D(97)


def test_trailing_stop_loss_locks_in_gains() -> None:
    # Stop 2 % below, trailing: peak 110 lifts it to 107.8; the fall to 107.5 closes at 107.5.
    c = cfg(stop_loss_percentage="2", tsl_enabled=True)
    r = run(c, [FLAT, ("100", "110", "100", "109"), ("109", "109", "107.5", "107.5")])
    deal = final_deal(r)
    assert deal.close_reason is CloseReason.STOP_LOSS
    assert deal.realized_profit == D("7.5")


def test_trailing_take_profit_on_the_last_target() -> None:
    # First target: half at +1 % (101). Last target +3 % (103) trails by 1 %: the peak is
    # 105, so the remaining half leaves at market when price falls to 103.95 or below (104).
    steps = [
        {"amount_percentage": "50", "profit_percentage": "1"},
        {"amount_percentage": "50", "profit_percentage": "3"},
    ]
    c = cfg(take_profit_steps=steps, trailing_enabled=True, trailing_deviation="1")
    r = run(c, [FLAT, ("100", "105", "100", "104.9"), ("104.9", "104.9", "103.9", "104")])
    assert [o[0] for o in orders(r)] == ["bo", "tp1", "tpx"]
    deal = final_deal(r)
    assert deal.realized_profit == D("0.5") + D("0.5") * D(4)


def test_timeout_closes_the_trade() -> None:
    c = cfg(timeout_seconds=120)
    r = run(c, [FLAT, FLAT, FLAT, FLAT])
    deal = final_deal(r)
    assert deal.close_reason is CloseReason.TIMEOUT
    assert deal.closed_at == T0 + timedelta(minutes=3)  # entered at 00:01, +120 s


def test_short_with_a_stop_price() -> None:
    c = cfg(
        direction="short",
        entry_type="limit",
        entry_price="100",
        stop_loss_price="103",
        take_profit_steps=[{"amount_percentage": "100", "profit_percentage": "5"}],
    )
    r = run(c, [FLAT, ("100", "102", "99", "101"), ("101", "103.5", "101", "103.2")])
    assert orders(r)[:2] == [("bo", "sell", "100.00"), ("tp1", "buy", "95.00")]
    deal = final_deal(r)
    assert deal.close_reason is CloseReason.STOP_LOSS
    assert deal.realized_profit == D("-3.2")


def test_close_at_market_on_request() -> None:
    c = cfg(take_profit_steps=[{"amount_percentage": "100", "profit_percentage": "5"}])
    r = run(c, [FLAT, FLAT, ("100", "100", "100", "100.5")], extra={2: [CloseAtMarket(1, T0)]})
    deal = final_deal(r)
    assert deal.close_reason is CloseReason.MANUAL
    assert [o[0] for o in orders(r)] == ["bo", "tp1", "close"]


def test_market_entry_by_volume_uses_the_first_price() -> None:
    c = cfg(amount=None, volume="50")
    r = run(c, [("100", "100", "100", "100")])
    assert r.state.pos.deal.bought == D("0.5")


def test_preview() -> None:
    c = cfg(entry_type="limit", entry_price="99", take_profit_steps=TWO_TARGETS, stop_loss_percentage="5")
    p = smart.preview(c, D(100))
    assert (p.entry_price, p.amount_base, p.funds_quote) == (D(99), D(1), D(99))
    assert [(t.price, t.amount_base) for t in p.targets] == [(D("99.99"), D("0.5")), (D("100.98"), D("0.5"))]
    assert p.stop_price == D("94.05") and p.loss_at_stop_quote == D("-4.95")


@pytest.mark.parametrize(
    ("over", "path"),
    [
        ({"volume": "10"}, "amount"),
        ({"entry_type": "limit"}, "entry_price"),
        ({"entry_type": "conditional", "entry_price": "100"}, "entry_trigger"),
        ({"entry_type": "trailing", "entry_price": "100"}, "entry_trailing_deviation"),
        ({"take_profit_steps": [{"amount_percentage": "60", "profit_percentage": "1"}]}, "take_profit_steps"),
        ({"take_profit_steps": [{"amount_percentage": "100"}]}, "take_profit_steps.0.price"),
        (
            {
                "entry_type": "limit",
                "entry_price": "100",
                "take_profit_steps": [{"amount_percentage": "100", "price": "90"}],
            },
            "take_profit_steps.0.price",
        ),
        ({"entry_type": "limit", "entry_price": "100", "stop_loss_price": "101"}, "stop_loss_price"),
        ({"stop_loss_percentage": "2", "stop_loss_price": "90"}, "stop_loss_price"),
        ({"trailing_enabled": True}, "trailing_enabled"),
        ({"tsl_enabled": True}, "tsl_enabled"),
        (
            {
                "take_profit_steps": [
                    {"amount_percentage": "50", "profit_percentage": "2"},
                    {"amount_percentage": "50", "profit_percentage": "1"},
                ]
            },
            "take_profit_steps.1",
        ),
    ],
)
def test_invalid_smart_trades_name_the_field(over: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        cfg(**over)
    assert info.value.field == path


@st.composite
def smart_cases(draw: st.DrawFn) -> tuple[smart.SmartTradeConfig, list[Candle]]:
    direction = draw(st.sampled_from(["long", "short"]))
    entry = draw(st.sampled_from(["market", "limit", "conditional", "trailing"]))
    over: dict[str, Any] = {"direction": direction, "entry_type": entry, "fees": {"maker": "0.001", "taker": "0.001"}}
    if entry != "market":
        off = D(draw(st.sampled_from(["-2", "-1", "1", "2"])))
        over["entry_price"] = str(D(100) + off)
    if entry == "limit":
        over["entry_price"] = "99" if direction == "long" else "101"
    if entry == "conditional":
        over["entry_trigger"] = draw(st.sampled_from(["at_or_above", "at_or_below"]))
    if entry == "trailing":
        over["entry_trailing_deviation"] = "0.5"
    if draw(st.booleans()):
        over["take_profit_steps"] = TWO_TARGETS
        if draw(st.booleans()):
            over["trailing_enabled"], over["trailing_deviation"] = True, "0.5"
    if draw(st.booleans()):
        over["stop_loss_percentage"] = draw(st.sampled_from(["1", "3"]))
        over["tsl_enabled"] = draw(st.booleans())
        over["sl_to_breakeven_enabled"] = draw(st.booleans())
        over["stop_loss_timeout_in_seconds"] = draw(st.sampled_from([0, 120]))
    over["timeout_seconds"] = draw(st.sampled_from([0, 0, 600]))
    close, bars = D(100), []
    for i in range(draw(st.integers(5, 40))):
        o = close
        c = (o * (1 + D(draw(st.integers(-250, 250))) / 10000)).quantize(D("0.01"))
        h = (max(o, c) * (1 + D(draw(st.integers(0, 100))) / 10000)).quantize(D("0.01"))
        low = (min(o, c) * (1 - D(draw(st.integers(0, 100))) / 10000)).quantize(D("0.01"))
        bars.append(candle(i, o, h, low, c))
        close = c
    return cfg(**over), bars


def go(c: smart.SmartTradeConfig, bars: list[Candle], skip: bool = False) -> Run:
    ex = MiniExchange(fee=D("0.001"), direction=c.direction)
    return drive(smart.step, smart.interest, c, smart.initial_state(c), bars, ex, skip=skip)


@settings(
    max_examples=int(os.environ.get("SEALBOT_PROP_EXAMPLES", "80")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(case=smart_cases())
def test_smart_trade_properties(case: tuple[smart.SmartTradeConfig, list[Candle]]) -> None:
    c, bars = case
    full = go(c, bars)  # the exchange asserts a long never sells more than it holds
    assert go(c, bars, skip=True).states == full.states  # interest never hides a change
    assert go(c, bars).log == full.log  # replay: same commands
    state = full.state
    if state.pos is not None:
        live = {o.step for o in state.pos.orders}
        assert live == {cid.step for cid in full.exchange.open}
        if state.stage is smart.Stage.DONE and state.pos.deal.status is DealStatus.CLOSED:
            assert state.pos.deal.close_reason in (CloseReason.TAKE_PROFIT, CloseReason.STOP_LOSS, CloseReason.TIMEOUT)
    for s in full.states:
        assert smart.load_state(json.loads(json.dumps(smart.dump_state(s)))) == s
