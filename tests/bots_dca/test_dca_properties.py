"""Property tests over random price paths, through the mini exchange (which itself
asserts that a long deal never sells more than it holds and never commits more than
max funds, and that no client order id is ever reused)."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from decimal import Decimal as D
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bots_dca.dca_factory import config
from bots_dca.dca_sim import T0, MiniExchange, Run, candle, drive
from sealbot.bots import dca
from sealbot.bots.common.executor import Phase
from sealbot.bots.common.position import exposure
from sealbot.domain import (
    AddFunds,
    AmountType,
    CancelDeal,
    Candle,
    ClientOrderId,
    CloseAtMarket,
    CloseReason,
    DealChanged,
    DealStatus,
    EditExits,
    PlaceOrder,
    SignalAction,
    SignalReceived,
)
from sealbot.domain.events import Event

MARKET = {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "1"}


@st.composite
def price_paths(draw: st.DrawFn, length: int = 60) -> list[Candle]:
    close = D(100)
    bars = []
    for i in range(length):
        move = D(draw(st.integers(-300, 300))) / 10000  # -3 % .. +3 %
        up = D(draw(st.integers(0, 150))) / 10000
        down = D(draw(st.integers(0, 150))) / 10000
        o = close
        c = (o * (1 + move)).quantize(D("0.01"))
        h = (max(o, c) * (1 + up)).quantize(D("0.01"))
        low = (min(o, c) * (1 - down)).quantize(D("0.01"))
        bars.append(candle(i, o, h, low, c))
        close = c
    return bars


@st.composite
def configs(draw: st.DrawFn) -> dca.DcaConfig:
    strategy = draw(st.sampled_from(["long", "short"]))
    tp = D(draw(st.sampled_from(["0.5", "1", "2"])))
    over: dict[str, Any] = {
        "markets": [MARKET],
        "strategy": strategy,
        "take_profit": tp,
        "max_safety_orders": draw(st.integers(0, 4)),
        "martingale_volume_coefficient": draw(st.sampled_from(["1", "1.5", "2"])),
        "safety_order_step_percentage": draw(st.sampled_from(["0.5", "1", "2"])),
        "max_active_deals": draw(st.integers(1, 3)),
        "cooldown": draw(st.sampled_from([0, 0, 120])),
        "fees": {"maker": "0.001", "taker": "0.001"},
        "take_profit_type": draw(st.sampled_from(["total", "base"])),
        "profit_currency": draw(st.sampled_from(["quote", "quote", "base"])),
    }
    over["active_safety_orders_count"] = draw(st.integers(0, over["max_safety_orders"]))
    if draw(st.booleans()):
        over["stop_loss_percentage"] = draw(st.sampled_from(["2", "4", "8"]))
        over["stop_loss_timeout_in_seconds"] = draw(st.sampled_from([0, 0, 120]))
        over["tsl_enabled"] = draw(st.booleans())
        over["sl_to_breakeven_enabled"] = draw(st.booleans())
    if draw(st.booleans()):
        over["trailing_enabled"] = True
        over["trailing_deviation"] = tp / 2
    elif draw(st.booleans()):
        over["take_profit_steps"] = [
            {"amount_percentage": "40", "profit_percentage": str(tp)},
            {"amount_percentage": "60", "profit_percentage": str(tp * 2)},
        ]
    return config(**over)


def go(cfg: dca.DcaConfig, bars: list[Candle], skip: bool = False) -> Run:
    exchange = MiniExchange(fee=D("0.001"), direction=cfg.strategy, max_funds=cfg.max_funds)
    return drive(dca.step, dca.interest, cfg, dca.initial_state(cfg), bars, exchange, skip=skip)


# SEALBOT_PROP_EXAMPLES raises the search effort for a local soak run.
PROPS = settings(
    max_examples=int(os.environ.get("SEALBOT_PROP_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPS
@given(cfg=configs(), bars=price_paths())
def test_deals_stay_consistent_and_close_by_a_known_reason(cfg: dca.DcaConfig, bars: list[Candle]) -> None:
    r = go(cfg, bars)  # the exchange asserts: no over-selling, no over-commitment, no reused id
    finished = {
        c.deal.no: c.deal for _, c in r.log if isinstance(c, DealChanged) and c.deal.status is DealStatus.CLOSED
    }
    for deal in finished.values():
        assert deal.close_reason in (CloseReason.TAKE_PROFIT, CloseReason.STOP_LOSS)
        if cfg.profit_currency.value == "quote" and deal.direction.value == "long":
            # a closed long holds no more than rounding dust
            assert exposure(deal) < D("0.00001")
    opened = {c.deal.no for _, c in r.log if isinstance(c, DealChanged)}
    still_open = {d.pos.no for d in r.state.deals}
    assert opened == set(finished) | still_open
    assert len(r.state.deals) <= cfg.max_active_deals
    live_ids = {ClientOrderId(cfg.bot_id, d.pos.no, o.step) for d in r.state.deals for o in d.pos.orders}
    assert live_ids == set(r.exchange.open)  # the bot's view of its orders is the exchange's
    for d in r.state.deals:
        assert d.pos.phase in (Phase.ENTERING, Phase.ACTIVE)
        assert exposure(d.pos.deal) >= 0
        assert d.so_placed <= cfg.safety_count


@PROPS
@given(cfg=configs(), bars=price_paths())
def test_skipping_candles_outside_interest_changes_nothing(cfg: dca.DcaConfig, bars: list[Candle]) -> None:
    full, skipped = go(cfg, bars), go(cfg, bars, skip=True)
    assert skipped.log == full.log
    assert skipped.states == full.states


@PROPS
@given(cfg=configs(), bars=price_paths(length=30))
def test_replaying_the_same_events_gives_the_same_commands(cfg: dca.DcaConfig, bars: list[Candle]) -> None:
    first, second = go(cfg, bars), go(cfg, bars)
    assert first.log == second.log
    for _, command in first.log:
        if isinstance(command, PlaceOrder):
            cid = command.order.client_id
            assert ClientOrderId.parse(cid.text) == cid
            assert cid.bot == cfg.bot_id


@PROPS
@given(cfg=configs(), bars=price_paths(length=40))
def test_state_round_trips_through_json_at_every_step(cfg: dca.DcaConfig, bars: list[Candle]) -> None:
    for state in go(cfg, bars).states:
        assert dca.load_state(json.loads(json.dumps(dca.dump_state(state)))) == state


@st.composite
def manual_events(draw: st.DrawFn, length: int = 60) -> dict[int, list[Event]]:
    """Random manual operations and signals at random bars, aimed at deals 1..4."""
    out: dict[int, list[Event]] = {}
    for _ in range(draw(st.integers(0, 6))):
        bar = draw(st.integers(0, length - 1))
        at = T0 + timedelta(minutes=bar)
        deal = draw(st.integers(1, 4))
        choices: list[Event] = [
            AddFunds(deal, D(15), AmountType.QUOTE, at, price=None),
            AddFunds(deal, D("0.1"), AmountType.BASE, at, price=D(95)),
            EditExits(deal, at, take_profit_pct=D(3)),
            EditExits(deal, at, stop_loss_pct=D(0)),
            CloseAtMarket(deal, at),
            CancelDeal(deal, at),
            SignalReceived("s", SignalAction.CLOSE_AT_MARKET, at),
            SignalReceived("s", SignalAction.ADD_FUNDS_IN_QUOTE, at, amount=D(12)),
            SignalReceived("s", SignalAction.START_DEAL, at),
        ]
        event = draw(st.sampled_from(choices))
        out.setdefault(bar, []).append(event)
    return out


@PROPS
@given(cfg=configs(), bars=price_paths(), extra=manual_events())
def test_manual_operations_keep_deals_consistent(
    cfg: dca.DcaConfig, bars: list[Candle], extra: dict[int, list[Event]]
) -> None:
    exchange = MiniExchange(fee=D("0.001"), direction=cfg.strategy, max_funds=cfg.max_funds)
    r = drive(dca.step, dca.interest, cfg, dca.initial_state(cfg), bars, exchange, extra=extra)
    ended = [c.deal for _, c in r.log if isinstance(c, DealChanged) and c.deal.status is not DealStatus.OPEN]
    reasons = {
        CloseReason.TAKE_PROFIT,
        CloseReason.STOP_LOSS,
        CloseReason.MANUAL,
        CloseReason.SIGNAL,
        CloseReason.CANCELED,
    }
    assert all(d.close_reason in reasons for d in ended)
    live_ids = {ClientOrderId(cfg.bot_id, d.pos.no, o.step) for d in r.state.deals for o in d.pos.orders}
    assert live_ids == set(r.exchange.open)
    skipped = drive(
        dca.step,
        dca.interest,
        cfg,
        dca.initial_state(cfg),
        bars,
        MiniExchange(fee=D("0.001"), direction=cfg.strategy, max_funds=cfg.max_funds),
        skip=True,
        extra=extra,
    )
    assert skipped.log == r.log
