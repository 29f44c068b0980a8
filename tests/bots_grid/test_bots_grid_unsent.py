"""Grid orders that never reached the exchange (the engine gave up sending them) are
placed again at their line under the next cycle number, up to LEVEL_SEND_ATTEMPTS;
a refusal by the exchange still leaves the interval idle with an alert."""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

from sealbot.bots import grid
from sealbot.bots.grid.machine import LEVEL_SEND_ATTEMPTS
from sealbot.domain import (
    AlertLevel,
    CancelOrder,
    ClientOrderId,
    OrderWasRejected,
    PlaceOrder,
    PriceTicked,
    RaiseAlert,
    Side,
)

from .grid_exchange import T0, MiniExchange, candle, drive
from .test_bots_grid_scenarios import BTC, config, places

LOST = "never reached the exchange (too old to send now)"


def _started(**overrides: Any) -> tuple[grid.Config, grid.State]:
    cfg = config(**overrides)
    # 107: intervals 0 and 1 wait with limit buys at 100 and 105 (g0b1, g1b1)
    state, _ = grid.step(cfg, grid.initial_state(cfg), PriceTicked(BTC, D("107"), T0))
    return cfg, state


def _lost(cfg: grid.Config, state: grid.State, step: str, unsent: bool = True,
          reason: str = LOST) -> tuple[grid.State, list[Any]]:
    return grid.step(cfg, state, OrderWasRejected(ClientOrderId(cfg.bot_id, 1, step), reason, T0, unsent=unsent))


def alerts(commands: list[Any]) -> list[tuple[AlertLevel, str]]:
    return [(c.level, c.code) for c in commands if isinstance(c, RaiseAlert)]


def test_a_buy_never_sent_is_placed_again_at_its_line_with_a_fresh_id() -> None:
    cfg, state = _started()
    state, commands = _lost(cfg, state, "g1b1")
    assert places(commands) == [("sbg1-1-g1b2", "buy", "1.000", "105.00")]  # same line, same amount
    assert alerts(commands) == [(AlertLevel.INFO, "grid.order_resent")]
    slot = state.slots[1]
    assert (slot.side, slot.cycle, slot.lost) == (Side.BUY, 2, 1)
    # the re-sent buy is the interval's order now: its fill goes on with the cycle
    ex = MiniExchange(BTC)
    fills = ex.apply(commands, T0, D("107"))
    fills += ex.candle_fills(candle(BTC, 1, "107", "107", "104.5", "105.5"))
    state, commands = grid.step(cfg, state, fills[0])
    assert places(commands) == [("sbg1-1-g2s2", "sell", "1.000", "110.00")]
    assert state.slots[1].lost == 0  # a new order: its own count


def test_a_sell_never_sent_is_placed_again_and_its_cycle_completes() -> None:
    cfg = config()
    ex = MiniExchange(BTC)
    run = drive(grid.step, cfg, grid.initial_state(cfg), ex, [candle(BTC, 0, "107", "107.5", "106.5", "107")])
    state = run.state
    assert state.slots[3].side is Side.SELL and state.slots[3].cycle == 1  # g4s1 at 120
    del ex.open[ClientOrderId("g1", 1, "g4s1")]  # the engine lost it before it went out
    state, commands = _lost(cfg, state, "g4s1")
    assert places(commands) == [("sbg1-1-g4s2", "sell", "1.000", "120.00")]
    ex.apply(commands, T0, D("107"))
    run = drive(grid.step, cfg, state, ex, [candle(BTC, 1, "107", "121", "107", "117")])
    # both funded intervals sold (at 115 and at the re-sent 120) and buy again
    assert run.state.cycles == 2 and ex.base == 0
    assert run.state.slots[3].side is Side.BUY and run.state.slots[3].cycle == 3
    # each coin cost 107 + 0.1 % = 107.107; sold for 115 - 0.115 and 120 - 0.12
    assert run.state.profit == (D("114.885") - D("107.107")) + (D("119.88") - D("107.107"))


def test_after_the_cap_the_interval_is_left_idle_as_for_a_refusal() -> None:
    cfg, state = _started()
    sent = ["g1b1"]
    for _ in range(10):
        state, commands = _lost(cfg, state, sent[-1])
        placed = [c for c in commands if isinstance(c, PlaceOrder)]
        if not placed:
            break
        sent.append(placed[0].order.client_id.step)
    assert sent == ["g1b1", "g1b2", "g1b3", "g1b4", "g1b5"] and len(sent) == LEVEL_SEND_ATTEMPTS
    assert alerts(commands) == [(AlertLevel.WARNING, "grid.order_rejected")]
    assert f"{LEVEL_SEND_ATTEMPTS} sends" in next(c.message for c in commands if isinstance(c, RaiseAlert))
    slot = state.slots[1]
    assert slot.side is None and slot.held == 0  # idle, as today for a refused order
    assert state.slots[0].side is Side.BUY  # the other intervals are not affected


def test_a_refusal_by_the_exchange_still_leaves_the_interval_idle() -> None:
    cfg, state = _started()
    state, commands = _lost(cfg, state, "g1b1", unsent=False, reason="insufficient balance")
    assert places(commands) == []
    assert alerts(commands) == [(AlertLevel.WARNING, "grid.order_rejected")]
    assert state.slots[1].side is None and state.slots[1].cycle == 1


def test_an_order_being_cancelled_or_a_stopping_grid_is_not_resent() -> None:
    cfg = config(quantity_per_grid="100", order_currency_type="quote", trailing_up_enabled=True)
    state, _ = grid.step(cfg, grid.initial_state(cfg), PriceTicked(BTC, D("119"), T0))
    state, commands = grid.step(cfg, state, PriceTicked(BTC, D("125.5"), T0))  # trails up: cancels g0b1
    assert CancelOrder(ClientOrderId("g1", 1, "g0b1")) in commands
    state, commands = _lost(cfg, state, "g0b1")
    assert places(commands) == [] and 0 not in state.slots  # it was leaving the grid anyway
    cfg, state = _started(lower_stop_loss_enabled=True, lower_stop_loss_price="96",
                          lower_stop_loss_action="stop_bot_and_sell")
    state, _ = grid.step(cfg, state, PriceTicked(BTC, D("95"), T0))
    assert state.phase is grid.Phase.CLOSING
    state, commands = _lost(cfg, state, "g1b1")
    assert places(commands) == []


def test_a_stale_or_repeated_report_places_nothing() -> None:
    cfg, state = _started()
    state, _ = _lost(cfg, state, "g1b1")
    again, commands = _lost(cfg, state, "g1b1")  # the same report delivered twice
    assert places(commands) == [] and again.slots[1] == state.slots[1]


def test_the_send_count_survives_a_json_round_trip_and_old_states_load() -> None:
    cfg, state = _started()
    state, _ = _lost(cfg, state, "g1b1")
    state, _ = _lost(cfg, state, "g1b2")
    data = json.loads(json.dumps(grid.dump_state(state)))
    assert grid.load_state(data) == state and grid.load_state(data).slots[1].lost == 2
    for slot in data["slots"]:  # a state saved before the count existed
        del slot["lost"]
    old = grid.load_state(data)
    assert old.slots[1].lost == 0 and old.slots[1].cycle == 3
    _, commands = _lost(cfg, old, "g1b3")
    assert places(commands) == [("sbg1-1-g1b4", "buy", "1.000", "105.00")]


def _closing(ex: MiniExchange) -> tuple[grid.Config, grid.State, PlaceOrder]:
    """A grid that hit its stop with stop_bot_and_sell: its cancels are confirmed and
    the market sell of what it holds is just out."""
    cfg = config(lower_stop_loss_enabled=True, lower_stop_loss_price="96",
                 lower_stop_loss_action="stop_bot_and_sell")
    run = drive(grid.step, cfg, grid.initial_state(cfg), ex, [candle(BTC, 0, "107", "107.5", "106.5", "107")])
    state, commands = grid.step(cfg, run.state, PriceTicked(BTC, D("95"), T0))
    sell: PlaceOrder | None = None
    for event in ex.apply(commands, T0, D("95")):  # the cancels, confirmed
        state, commands = grid.step(cfg, state, event)
        sell = next((c for c in commands if isinstance(c, PlaceOrder)), sell)
    assert sell is not None and sell.order.client_id.step == "close"
    return cfg, state, sell


def test_the_closing_sell_never_sent_is_placed_again_and_the_grid_stops() -> None:
    ex = MiniExchange(BTC)
    cfg, state, sell = _closing(ex)
    assert sell.order.amount == D("2.000") and ex.base == D("2")
    state, commands = _lost(cfg, state, "close")
    assert places(commands) == [("sbg1-1-close2", "sell", "2.000", None)]
    assert alerts(commands) == [(AlertLevel.INFO, "grid.order_resent")]
    (fill,) = ex.apply(commands, T0, D("95"))
    state, commands = grid.step(cfg, state, fill)
    assert state.phase is grid.Phase.STOPPED and ex.base == 0
    assert state.deal is not None and state.deal.sold == D("2")


def test_the_closing_sell_lost_again_and_again_or_refused_is_left_to_the_user() -> None:
    ex = MiniExchange(BTC)
    cfg, state, sell = _closing(ex)
    sent = [sell.order.client_id.step]
    for _ in range(10):
        state, commands = _lost(cfg, state, sent[-1])
        placed = [c for c in commands if isinstance(c, PlaceOrder)]
        if not placed:
            break
        sent.append(placed[0].order.client_id.step)
    assert sent == ["close", "close2", "close3", "close4", "close5"]
    assert alerts(commands) == [(AlertLevel.WARNING, "grid.order_rejected")]
    assert "sell it by hand" in next(c.message for c in commands if isinstance(c, RaiseAlert))
    assert state.phase is grid.Phase.CLOSING and ex.base == D("2")
    cfg, state, _ = _closing(MiniExchange(BTC))
    state, commands = _lost(cfg, state, "close", unsent=False, reason="insufficient balance")
    assert places(commands) == [] and state.phase is grid.Phase.CLOSING
    data = json.loads(json.dumps(grid.dump_state(state)))
    assert grid.load_state(data) == state
    del data["closing"]["lost"]  # saved before the count existed
    assert grid.load_state(data).closing == state.closing
