"""Hand-computed DCA deals driven through the mini exchange.

Unless a test says otherwise fees are zero, the first candle closes at 100 and the base
order (10 USDT at market) therefore buys 0.1 BTC at 100.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D
from typing import Any

from bots_dca.dca_factory import config
from bots_dca.dca_sim import PAIR, T0, MiniExchange, Run, candles, drive
from sealbot.bots import dca
from sealbot.domain import (
    AddFunds,
    AmountType,
    CancelDeal,
    CancelOrder,
    CloseAtMarket,
    CloseReason,
    Command,
    DealChanged,
    DealStatus,
    EditExits,
    Fill,
    IndicatorUpdated,
    Order,
    OrderCanceled,
    OrderFilled,
    OrderType,
    OrderWasRejected,
    Pair,
    PlaceOrder,
    RaiseAlert,
    Side,
    SignalAction,
    SignalReceived,
    StopBot,
)
from sealbot.domain.events import CandleClosed, Event


def run(cfg: dca.DcaConfig, rows: list[tuple[str, str, str, str]], fee: str = "0", **kw: Any) -> Run:
    exchange = MiniExchange(fee=D(fee), direction=cfg.strategy)
    return drive(dca.step, dca.interest, cfg, dca.initial_state(cfg), candles(rows), exchange, **kw)


def placed(r: Run, deal: int | None = 1) -> list[str]:
    """Client ids placed (for ``deal``; None: every deal). With "start immediately" the
    next deal opens on the candle where the previous one closed."""
    ids = [c.order.client_id for _, c in r.log if isinstance(c, PlaceOrder)]
    return [i.text for i in ids if deal is None or i.deal == deal]


def closed_deals(r: Run, deal: int | None = 1) -> list[Any]:
    done = [c.deal for _, c in r.log if isinstance(c, DealChanged) and c.deal.status is not DealStatus.OPEN]
    return [d for d in done if deal is None or d.no == deal]


FLAT = ("100", "100", "100", "100")


def test_take_profit_closes_the_deal_with_fees_booked_in_the_charged_currency() -> None:
    # BO buys 0.1 BTC at 100 paying 0.1 % in BTC: holds 0.0999. TP sells 0.0999 at 101 and
    # pays 0.1 % of 10.0899 in USDT. Cash: paid 10, got 10.0899 - 0.0100899 = 10.0798101.
    r = run(
        config(max_safety_orders=0, active_safety_orders_count=0), [FLAT, ("100", "101.5", "100", "101")], fee="0.001"
    )
    assert placed(r) == ["sbb1-1-bo", "sbb1-1-tp1"]
    (deal,) = closed_deals(r)
    assert deal.close_reason is CloseReason.TAKE_PROFIT
    assert deal.bought == deal.sold == D("0.0999")
    assert deal.realized_profit == D("0.0798101")


def test_a_take_profit_below_the_exchange_minimum_is_reported_not_silently_skipped() -> None:
    # 5.05 USDT at 100 buys 0.050 BTC (5 USDT: the minimum); the 0.1 % fee in BTC leaves
    # 0.04995, which the 0.001 step rounds to 0.049: 4.95 USDT at 101, below the minimum.
    # No take profit could go out and nothing said so: the deal stayed open, silent.
    market = {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.001", "min_notional": "5"}
    cfg = config(markets=[market], base_order_volume="5.05", max_safety_orders=0, active_safety_orders_count=0)
    r = run(cfg, [FLAT, FLAT], fee="0.001")
    assert placed(r) == ["sbb1-1-bo"]
    alerts = [c for _, c in r.log if isinstance(c, RaiseAlert) and c.code == "take_profit_too_small"]
    assert [a.message for a in alerts] == ["deal 1: 0.049 BTC is below the exchange minimum for a take profit "
                                           "order; the deal keeps it (add funds or close it by hand)"]


def test_safety_order_fill_moves_the_take_profit_to_the_new_average() -> None:
    # so1 buys 20 USDT at 99 = 0.20202020 BTC. Average = 29.9999998 / 0.3020202 = 99.33110...
    # so the take profit becomes 99.3311037 * 1.01 = 100.32441472 (rounded up to the tick).
    r = run(config(), [FLAT, ("100", "100", "98.9", "99"), ("99", "100.4", "99", "100.4")])
    # so1 rests next to tp1; when so1 fills, tp1 is canceled and, once the exchange confirms,
    # re-placed as tp1.1 (a new id: a step never reuses an id); so2 takes so1's place.
    assert placed(r) == ["sbb1-1-bo", "sbb1-1-tp1", "sbb1-1-so1", "sbb1-1-so2", "sbb1-1-tp1.1"]
    tp = next(c.order for _, c in r.log if isinstance(c, PlaceOrder) and c.order.client_id.step == "tp1.1")
    assert tp.price == D("100.32441472")
    assert tp.amount == D("0.30202020")
    (deal,) = closed_deals(r)
    assert deal.close_reason is CloseReason.TAKE_PROFIT


def test_stop_loss_closes_at_market_and_can_disable_the_bot() -> None:
    cfg = config(
        max_safety_orders=0,
        active_safety_orders_count=0,
        stop_loss_percentage="5",
        stop_loss_type="stop_loss_and_disable_bot",
    )
    r = run(cfg, [FLAT, ("100", "100", "94", "94.5"), FLAT, FLAT])
    (deal,) = closed_deals(r)
    assert deal.close_reason is CloseReason.STOP_LOSS
    # The market exit filled at the candle close, 94.5: loss = 0.1 * (94.5 - 100) = -0.55.
    assert deal.realized_profit == D("-0.55")
    assert any(isinstance(c, StopBot) for _, c in r.log)
    assert placed(r, None) == ["sbb1-1-bo", "sbb1-1-tp1", "sbb1-1-sl"]  # no second deal
    assert r.state.stopped


def test_stop_loss_timeout_waits_and_resets_when_price_recovers() -> None:
    cfg = config(
        max_safety_orders=0, active_safety_orders_count=0, stop_loss_percentage="5", stop_loss_timeout_in_seconds=120
    )
    below = ("95", "95", "94", "94")
    # Breach at bar1 (close 00:02), back above at bar2 (reset), breach again at bar3 (00:04),
    # still breached at bar4 (00:05, 60 s) and bar5 (00:06, 120 s): fires on bar5.
    r = run(cfg, [FLAT, below, ("96", "96", "96", "96"), below, below, below, below])
    (deal,) = closed_deals(r)
    assert deal.close_reason is CloseReason.STOP_LOSS
    assert deal.closed_at == T0 + timedelta(minutes=6)


def test_trailing_take_profit_follows_the_peak() -> None:
    # TP 2 % = 102 activates trailing; peak 103 at bar2; 103 * 0.995 = 102.485 is crossed
    # at bar3's close (102.4): market exit at 102.4, profit 0.1 * 2.4 = 0.24.
    cfg = config(
        max_safety_orders=0,
        active_safety_orders_count=0,
        take_profit="2",
        trailing_enabled=True,
        trailing_deviation="0.5",
    )
    r = run(
        cfg,
        [
            FLAT,
            ("100", "102.5", "100", "102.4"),
            ("102.4", "103", "102.4", "102.9"),
            ("102.9", "102.9", "102.4", "102.4"),
        ],
    )
    assert placed(r) == ["sbb1-1-bo", "sbb1-1-tpx"]  # trailing targets are not resting orders
    (deal,) = closed_deals(r)
    assert deal.close_reason is CloseReason.TAKE_PROFIT
    assert deal.realized_profit == D("0.24")


def test_breakeven_after_the_first_target() -> None:
    # Targets: half at +1 % (101), half at +3 %. After the first fills the stop moves from
    # 95 to the entry (100); a dip to 99.9 then closes the second half at 99.9.
    steps = [
        {"amount_percentage": "50", "profit_percentage": "1"},
        {"amount_percentage": "50", "profit_percentage": "3"},
    ]
    cfg = config(
        max_safety_orders=0,
        active_safety_orders_count=0,
        take_profit_steps=steps,
        stop_loss_percentage="5",
        sl_to_breakeven_enabled=True,
    )
    r = run(cfg, [FLAT, ("100.2", "101", "100.2", "100.5"), ("100.5", "100.5", "99.9", "99.9")])
    assert placed(r) == ["sbb1-1-bo", "sbb1-1-tp1", "sbb1-1-tp2", "sbb1-1-sl"]
    (deal,) = closed_deals(r)
    assert deal.close_reason is CloseReason.STOP_LOSS
    # 0.05 * (101 - 100) + 0.05 * (99.9 - 100) = 0.05 - 0.005
    assert deal.realized_profit == D("0.045")


def test_short_deal_sells_first_and_buys_back_lower() -> None:
    # Sell 0.1 BTC at 100; take profit buys back 0.1 at 99: profit 0.1 USDT.
    cfg = config(strategy="short", max_safety_orders=0, active_safety_orders_count=0)
    r = run(cfg, [FLAT, ("100", "100", "98.9", "99")])
    sides = [c.order.side.value for _, c in r.log if isinstance(c, PlaceOrder) and c.order.client_id.deal == 1]
    assert sides == ["sell", "buy"]
    (deal,) = closed_deals(r)
    assert (deal.sold, deal.bought, deal.realized_profit) == (D("0.1"), D("0.1"), D("0.1"))


def test_short_stop_loss_is_above() -> None:
    cfg = config(strategy="short", max_safety_orders=0, active_safety_orders_count=0, stop_loss_percentage="2")
    r = run(cfg, [FLAT, ("100", "101.9", "100", "101.9"), ("101.9", "102.1", "101.9", "102")])
    (deal,) = closed_deals(r)
    assert deal.close_reason is CloseReason.STOP_LOSS
    assert deal.closed_at == T0 + timedelta(minutes=3)


def test_cooldown_delays_the_next_deal() -> None:
    # Deal 1 closes at bar1 (00:02); cooldown 180 s: deal 2 may open from 00:05 (bar4).
    cfg = config(max_safety_orders=0, active_safety_orders_count=0, cooldown=180)
    r = run(cfg, [FLAT, ("100", "101", "100", "100"), FLAT, FLAT, FLAT, FLAT])
    assert placed(r, None) == ["sbb1-1-bo", "sbb1-1-tp1", "sbb1-2-bo", "sbb1-2-tp1"]
    opened = next(c.deal.opened_at for _, c in r.log if isinstance(c, DealChanged) and c.deal.no == 2)
    assert opened == T0 + timedelta(minutes=5)


def test_max_active_deals_caps_concurrent_deals() -> None:
    cfg = config(max_safety_orders=0, active_safety_orders_count=0, max_active_deals=2)
    r = run(cfg, [FLAT] * 5)
    assert [p for p in placed(r, None) if p.endswith("-bo")] == ["sbb1-1-bo", "sbb1-2-bo"]
    assert len(r.state.deals) == 2


def test_min_and_max_price_gate_new_deals() -> None:
    cfg = config(max_safety_orders=0, active_safety_orders_count=0, min_price="90", max_price="95")
    r = run(cfg, [FLAT, ("96", "96", "94", "94")])
    assert placed(r) == ["sbb1-1-bo", "sbb1-1-tp1"]
    assert r.state.deals[0].pos.deal.opened_at == T0 + timedelta(minutes=2)


def test_signal_start_and_close() -> None:
    cfg = config(max_safety_orders=0, active_safety_orders_count=0, start_condition="signal")
    start = SignalReceived("s1", SignalAction.START_DEAL, T0 + timedelta(minutes=1), pair=PAIR)
    stop = SignalReceived("s2", SignalAction.CLOSE_AT_MARKET, T0 + timedelta(minutes=3), pair=PAIR)
    r = run(cfg, [FLAT, FLAT, FLAT, FLAT], extra={1: [start], 3: [stop]})
    assert placed(r, None) == ["sbb1-1-bo", "sbb1-1-tp1", "sbb1-1-close"]
    (deal,) = closed_deals(r)
    assert deal.close_reason is CloseReason.SIGNAL
    assert not r.state.deals  # no new deal without a new signal


def test_rsi_start_condition() -> None:
    cfg = config(
        max_safety_orders=0,
        active_safety_orders_count=0,
        start_condition="rsi",
        rsi={"timeframe": "1h", "period": 14, "value": "30"},
    )

    def rsi(minute: int, value: str) -> Event:
        return IndicatorUpdated(PAIR, "1h", "rsi", 14, D(value), T0 + timedelta(minutes=minute))

    r = run(cfg, [FLAT, FLAT, FLAT], extra={0: [rsi(0, "45")], 1: [rsi(1, "25")]})
    assert placed(r) == ["sbb1-1-bo", "sbb1-1-tp1"]
    assert r.state.deals[0].pos.deal.opened_at == T0 + timedelta(minutes=2)


def test_manual_operations() -> None:
    cfg = config(max_safety_orders=0, active_safety_orders_count=0)
    at = T0 + timedelta(minutes=1)
    add = AddFunds(1, D("20"), AmountType.QUOTE, at, price=D("90"))
    edit = EditExits(1, at, take_profit_pct=D("5"))
    r = run(cfg, [FLAT, FLAT, FLAT], extra={1: [add, edit], 2: [CloseAtMarket(1, at)]})
    ids = placed(r)
    assert ids == ["sbb1-1-bo", "sbb1-1-tp1", "sbb1-1-add1", "sbb1-1-tp1.1", "sbb1-1-close"]
    add_order = next(c.order for _, c in r.log if isinstance(c, PlaceOrder) and c.order.client_id.step == "add1")
    assert (add_order.price, add_order.amount) == (D(90), D("0.22222222"))
    tp = next(c.order for _, c in r.log if isinstance(c, PlaceOrder) and c.order.client_id.step == "tp1.1")
    assert tp.price == D(105)
    (deal,) = closed_deals(r)
    assert deal.close_reason is CloseReason.MANUAL


def test_cancel_deal_keeps_the_coins_and_forgets_the_deal() -> None:
    cfg = config(max_safety_orders=0, active_safety_orders_count=0, start_condition="signal")
    start = SignalReceived("s1", SignalAction.START_DEAL, T0, pair=PAIR)
    r = run(cfg, [FLAT, FLAT], extra={0: [start], 1: [CancelDeal(1, T0)]})
    (deal,) = closed_deals(r)
    assert deal.status is DealStatus.CANCELED and deal.bought == D("0.1")
    assert not r.state.deals and not r.exchange.open


def test_profit_in_base_keeps_the_profit_in_coins() -> None:
    # TP at 101 sells only what recovers the 10 USDT: 10 / 101 = 0.09900990 (floored),
    # so 0.1 - 0.0990099 = 0.0009901 BTC stays as profit.
    cfg = config(max_safety_orders=0, active_safety_orders_count=0, profit_currency="base")
    r = run(cfg, [FLAT, ("100", "101", "100", "101")])
    (deal,) = closed_deals(r)
    assert deal.close_reason is CloseReason.TAKE_PROFIT
    assert deal.bought - deal.sold == D("0.0009901")


def test_multi_pair_runs_one_deal_per_pair() -> None:
    eth = {"pair": "ETH/USDT", "tick_size": "0.01", "step_size": "0.0001"}
    cfg = config(
        max_safety_orders=0,
        active_safety_orders_count=0,
        max_active_deals=5,
        markets=[{"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.0001"}, eth],
    )
    r = run(cfg, [FLAT, FLAT, FLAT])
    assert [d.pos.deal.pair for d in r.state.deals] == [PAIR]
    assert dca.interest(cfg, r.state).every_candle
    assert Pair.parse("ETH/USDT") in cfg.rules


def test_state_survives_a_json_round_trip_mid_deal() -> None:
    import json

    r = run(config(), [FLAT, ("100", "100", "98.9", "99")])
    data = json.loads(json.dumps(dca.dump_state(r.state)))
    assert dca.load_state(data) == r.state
    assert isinstance(data["deals"][0]["pos"]["deal"]["spent"], str)


def test_a_rejected_base_order_cancels_the_deal_and_stops_the_bot() -> None:
    cfg = config(max_safety_orders=0, active_safety_orders_count=0)
    state, commands = dca.step(cfg, dca.initial_state(cfg), CandleClosed(candles([FLAT])[0]))
    bo = next(c.order for c in commands if isinstance(c, PlaceOrder))
    state, commands = dca.step(cfg, state, OrderWasRejected(bo.client_id, "insufficient balance", T0))
    assert any(isinstance(c, StopBot) for c in commands)
    assert any(isinstance(c, RaiseAlert) and "insufficient balance" in c.message for c in commands)
    (deal,) = [c.deal for c in commands if isinstance(c, DealChanged)]
    assert deal.status is DealStatus.CANCELED and deal.close_reason is CloseReason.CANCELED
    assert state.stopped and not state.deals
    state, commands = dca.step(cfg, state, CandleClosed(candles([FLAT, FLAT])[1]))
    assert commands == []


def test_a_start_signal_without_a_free_slot_is_dropped_not_queued() -> None:
    cfg = config(max_safety_orders=0, active_safety_orders_count=0, start_condition="signal")
    first = SignalReceived("s1", SignalAction.START_DEAL, T0, pair=PAIR)
    second = SignalReceived("s2", SignalAction.START_DEAL, T0 + timedelta(minutes=1), pair=PAIR)
    # deal 1 opens at bar 0, the second signal arrives while it runs, deal 1 closes at bar 2
    r = run(cfg, [FLAT, FLAT, ("100", "101", "100", "100"), FLAT, FLAT], extra={0: [first], 1: [second]})
    assert placed(r, None) == ["sbb1-1-bo", "sbb1-1-tp1"]
    assert any(isinstance(c, RaiseAlert) and c.code == "start_signal_ignored" for _, c in r.log)


def _deal_closing_at_market(cfg: Any) -> tuple[Any, PlaceOrder]:
    """Deal 1 bought in full, then closed by hand: its take profit is cancelled and the
    market exit is asked for (the command returned)."""
    state, commands, bo = _base_filled(cfg)
    tp = next(c.order for c in commands if isinstance(c, PlaceOrder))
    state, commands = dca.step(cfg, state, CloseAtMarket(deal=1, at=T0))
    assert [c.client_id for c in commands if isinstance(c, CancelOrder)] == [tp.client_id]
    state, commands = dca.step(cfg, state, OrderCanceled(tp.client_id, T0))
    (close,) = [c for c in commands if isinstance(c, PlaceOrder)]
    assert close.order.type is OrderType.MARKET and close.order.amount == bo.amount
    return state, close


def test_a_market_exit_that_never_reached_the_exchange_is_placed_again() -> None:
    """A crash or an outage lost the exit before the exchange saw it (the engine gave up
    sending it): the deal still holds its base, so the exit goes out again, not to the user."""
    cfg = config(max_safety_orders=0, active_safety_orders_count=0)
    state, close = _deal_closing_at_market(cfg)
    state, commands = dca.step(cfg, state, OrderWasRejected(close.order.client_id, "never reached the exchange",
                                                            T0, unsent=True))
    (again,) = [c for c in commands if isinstance(c, PlaceOrder)]
    assert again.order.client_id.step == "close2" and again.order.amount == close.order.amount
    assert [c.code for c in commands if isinstance(c, RaiseAlert)] == ["order_rejected"]  # a warning, no more
    # refused by the exchange itself: retrying would repeat the cause; the user is asked
    state, commands = dca.step(cfg, state, OrderWasRejected(again.order.client_id, "insufficient balance", T0))
    assert not [c for c in commands if isinstance(c, PlaceOrder)]
    assert [c.code for c in commands if isinstance(c, RaiseAlert)] == ["order_rejected", "close_failed"]
    assert state.deals[0].pos.deal.status is DealStatus.OPEN


def test_a_market_exit_lost_again_and_again_goes_to_the_user() -> None:
    cfg = config(max_safety_orders=0, active_safety_orders_count=0)
    state, close = _deal_closing_at_market(cfg)
    steps = []
    for _ in range(10):
        steps.append(close.order.client_id.step)
        state, commands = dca.step(cfg, state, OrderWasRejected(close.order.client_id, "never reached the exchange",
                                                                T0, unsent=True))
        placed = [c for c in commands if isinstance(c, PlaceOrder)]
        if not placed:
            break
        (close,) = placed
    assert steps == ["close", "close2", "close3", "close4", "close5"]
    assert [c.code for c in commands if isinstance(c, RaiseAlert)] == ["order_rejected", "close_failed"]


def test_stop_loss_and_disable_bot_stops_the_bot_only_after_the_exit_sold() -> None:
    # The engine refuses every order of a stopped bot: a StopBot sent with the stop's
    # cancels (before the market exit, which waits for them) left the coins unsold.
    cfg = config(
        max_safety_orders=0,
        active_safety_orders_count=0,
        stop_loss_percentage="5",
        stop_loss_type="stop_loss_and_disable_bot",
    )
    r = run(cfg, [FLAT, ("100", "100", "94", "94.5"), FLAT, FLAT])
    commands = [c for _, c in r.log]
    sl = next(i for i, c in enumerate(commands) if isinstance(c, PlaceOrder) and c.order.client_id.step == "sl")
    stops = [i for i, c in enumerate(commands) if isinstance(c, StopBot)]
    assert len(stops) == 1 and stops[0] > sl
    assert r.log[stops[0]][0] == "OrderFilled"  # sent when the exit's fill closed the deal


def _base_filled(cfg: dca.DcaConfig) -> tuple[dca.DcaState, list[Command], Order]:
    """A deal opened on a flat candle and its base order filled at 100: the state, the
    commands that fill asked for (its take profit, its first safety orders), the base order."""
    state, commands = dca.step(cfg, dca.initial_state(cfg), CandleClosed(candles([FLAT])[0]))
    bo = next(c.order for c in commands if isinstance(c, PlaceOrder))
    fill = Fill(bo.client_id, PAIR, Side.BUY, D(100), bo.amount, D(0), "BTC", T0, "t1")
    state, commands = dca.step(cfg, state, OrderFilled(fill, D(0)))
    return state, commands, bo


def test_a_take_profit_cancelled_outside_the_bot_is_placed_again_on_the_next_price() -> None:
    # A kill switch (or a stop) cancels the deal's take profit; the deal stays open. Once
    # the bot runs again, its next price puts the take profit back, at the same price.
    # Before, the deal went on without any take profit.
    cfg = config(max_safety_orders=0, active_safety_orders_count=0)
    state, commands, _ = _base_filled(cfg)
    tp = next(c.order for c in commands if isinstance(c, PlaceOrder))
    state, commands = dca.step(cfg, state, OrderCanceled(tp.client_id, T0))
    assert not [c for c in commands if isinstance(c, PlaceOrder)]  # not while the bot may be stopped
    assert dca.interest(cfg, state).every_candle  # the next candle must reach it
    state, commands = dca.step(cfg, state, CandleClosed(candles([FLAT, FLAT])[1]))
    (again,) = [c.order for c in commands if isinstance(c, PlaceOrder)]
    assert again.client_id.step == "tp1.1"
    assert (again.side, again.amount, again.price) == (tp.side, tp.amount, tp.price)
    state, commands = dca.step(cfg, state, CandleClosed(candles([FLAT, FLAT, FLAT])[2]))
    assert not [c for c in commands if isinstance(c, PlaceOrder)]  # once
    # refused by the exchange (not cancelled): not sent again and again
    state, commands = dca.step(cfg, state, OrderWasRejected(again.client_id, "insufficient balance", T0))
    state, commands = dca.step(cfg, state, CandleClosed(candles([FLAT, FLAT, FLAT, FLAT])[3]))
    assert not [c for c in commands if isinstance(c, PlaceOrder)]


def test_safety_orders_cancelled_outside_the_bot_keep_their_place_and_come_back() -> None:
    # A kill switch cancels so1 and the take profit. The engine refuses a stopped bot's
    # orders, so placing so2 in so1's stead burnt through every safety order (each one
    # refused in turn) and the resumed deal had none. Now nothing is sent on the cancels,
    # and the next price places so1 again (fresh id, same price and amount).
    cfg = config(max_safety_orders=3, active_safety_orders_count=1)
    state, commands, _ = _base_filled(cfg)
    orders = {c.order.client_id.step: c.order for c in commands if isinstance(c, PlaceOrder)}
    assert set(orders) == {"tp1", "so1"}
    for step in ("so1", "tp1"):
        state, commands = dca.step(cfg, state, OrderCanceled(orders[step].client_id, T0))
        assert not [c for c in commands if isinstance(c, PlaceOrder)], step
    assert state.deals[0].so_placed == 1
    state, commands = dca.step(cfg, state, CandleClosed(candles([FLAT, FLAT])[1]))
    again = {c.order.client_id.step: c.order for c in commands if isinstance(c, PlaceOrder)}
    assert set(again) == {"so1.1", "tp1.1"}
    assert (again["so1.1"].price, again["so1.1"].amount) == (orders["so1"].price, orders["so1"].amount)
    state, commands = dca.step(cfg, state, CandleClosed(candles([FLAT, FLAT, FLAT])[2]))
    assert not [c for c in commands if isinstance(c, PlaceOrder)]
    assert dca.load_state(dca.dump_state(state)) == state


def test_a_ladder_placed_again_for_another_reason_is_not_placed_a_second_time() -> None:
    # The take profit is cancelled outside the bot, then a manual edit places the whole
    # ladder again: the next price must not cancel and place it once more.
    cfg = config(max_safety_orders=0, active_safety_orders_count=0)
    state, commands, _ = _base_filled(cfg)
    tp = next(c.order for c in commands if isinstance(c, PlaceOrder))
    state, commands = dca.step(cfg, state, OrderCanceled(tp.client_id, T0))
    state, commands = dca.step(cfg, state, EditExits(1, T0, take_profit_pct=D("2")))
    assert [c.order.client_id.step for c in commands if isinstance(c, PlaceOrder)] == ["tp1.1"]
    state, commands = dca.step(cfg, state, CandleClosed(candles([FLAT, FLAT])[1]))
    assert not [c for c in commands if isinstance(c, PlaceOrder | CancelOrder)]


def test_a_part_filled_safety_order_cancelled_outside_the_bot_re_prices_the_ladder_on_the_next_price() -> None:
    # A kill switch cancels a safety order that had filled in part. The ladder, re-priced
    # for the new average, used to be sent at once, while the bot was stopped: refused,
    # and the deal had no take profit once started again.
    cfg = config(max_safety_orders=2, active_safety_orders_count=1)
    state, commands, bo = _base_filled(cfg)
    orders = {c.order.client_id.step: c.order for c in commands if isinstance(c, PlaceOrder)}
    so = orders["so1"]
    assert so.price is not None
    part = Fill(so.client_id, PAIR, Side.BUY, so.price, D("0.1"), D(0), "BTC", T0, "t2")
    state, commands = dca.step(cfg, state, OrderFilled(part, so.amount - D("0.1")))
    state, commands = dca.step(cfg, state, OrderCanceled(so.client_id, T0))
    assert not [c for c in commands if isinstance(c, PlaceOrder)]  # not so2 either, while perhaps stopped
    state, commands = dca.step(cfg, state, OrderCanceled(orders["tp1"].client_id, T0))  # the kill's, too
    assert not [c for c in commands if isinstance(c, PlaceOrder)]
    state, commands = dca.step(cfg, state, CandleClosed(candles([FLAT, FLAT])[1]))
    (tp,) = [c.order for c in commands if isinstance(c, PlaceOrder) and c.order.client_id.step.startswith("tp")]
    assert tp.amount == bo.amount + D("0.1")  # the whole position, at the new average's target
    assert [c.order.client_id.step for c in commands if isinstance(c, PlaceOrder)
            and c.order.client_id.step.startswith("so")] == ["so2"]  # the next safety order, now
