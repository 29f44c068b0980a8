"""Grid bot against hand-computed scenarios: lines, one full cycle's profit net of
fees, trailing up and down, and the stop actions."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from sealbot.bots import grid
from sealbot.bots.base import Interest
from sealbot.domain import (
    CancelOrder,
    ClientOrderId,
    CloseAtMarket,
    CloseReason,
    DealChanged,
    Fill,
    OrderCanceled,
    OrderFilled,
    OrderType,
    Pair,
    PlaceOrder,
    PriceTicked,
    RaiseAlert,
    Side,
    StopBot,
)

from .grid_exchange import T0, MiniExchange, candle, drive

BTC = Pair("BTC", "USDT")
MARKET = {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.001"}


def config(**overrides: Any) -> grid.Config:
    base: dict[str, Any] = {"bot_id": "g1", "market": MARKET, "lower_price": "100", "upper_price": "120",
                            "grids_quantity": 5, "quantity_per_grid": "1",
                            "fees": {"maker": "0.001", "taker": "0.001"}}
    base.update(overrides)
    return grid.parse_config(base)


def places(commands: list[Any]) -> list[tuple[str, str, str, str | None]]:
    return [(str(c.order.client_id), c.order.side.value, str(c.order.amount),
             None if c.order.price is None else str(c.order.price))
            for c in commands if isinstance(c, PlaceOrder)]


def test_arithmetic_lines_are_equally_spaced_in_price() -> None:
    # (120 - 100) / (5 - 1) = 5 between lines
    assert grid.levels(config()) == [D("100"), D("105"), D("110"), D("115"), D("120")]


def test_geometric_lines_are_equally_spaced_in_percent() -> None:
    # 146.41 / 100 = 1.1 ** 4, so each line is 10 % above the one below
    cfg = config(upper_price="146.41", grid_type="geometric")
    assert grid.levels(cfg) == [D("100"), D("110"), D("121"), D("133.1"), D("146.41")]
    # trailing lines continue the progression: one line below 100 is 100 / 1.1 = 90.909.. -> 90.91
    assert grid.level_price(cfg, -1) == D("90.91")
    assert grid.level_price(cfg, 5) == D("161.05")  # 146.41 * 1.1 = 161.051 -> tick 0.01


def test_start_funds_the_lines_above_the_price_and_buys_below() -> None:
    cfg = config()
    state, commands = grid.step(cfg, grid.initial_state(cfg), PriceTicked(BTC, D("107"), T0))
    # 107 lies in the interval 105-110: intervals starting at 110 and 115 are bought at
    # market (2 coins), the ones starting at 100 and 105 wait with limit buys; no order
    # at 110, the line the price sits under.
    assert places(commands) == [
        ("sbg1-1-init", "buy", "2.000", None),
        ("sbg1-1-g0b1", "buy", "1.000", "100.00"),
        ("sbg1-1-g1b1", "buy", "1.000", "105.00"),
    ]
    ex = MiniExchange(BTC)
    fills = ex.apply(commands, T0, D("107"))
    state, commands = grid.step(cfg, state, fills[0])
    assert places(commands) == [("sbg1-1-g3s1", "sell", "1.000", "115.00"),
                                ("sbg1-1-g4s1", "sell", "1.000", "120.00")]


def _one_cycle(buy_fee_in_base: bool) -> tuple[grid.State, MiniExchange]:
    cfg = config()
    ex = MiniExchange(BTC, fee=D("0.001"), buy_fee_in_base=buy_fee_in_base)
    bars = [
        candle(BTC, 0, "107", "107.5", "106.5", "107"),  # start: market buy at 107
        candle(BTC, 1, "107", "107", "104.5", "105.5"),  # trades through 105: buy fills
        candle(BTC, 2, "105.5", "110.5", "105.2", "110.2"),  # trades through 110: sell fills
    ]
    run = drive(grid.step, cfg, grid.initial_state(cfg), ex, bars)
    return run.state, ex


def test_one_cycle_profit_net_of_fees_in_quote() -> None:
    state, _ = _one_cycle(buy_fee_in_base=False)
    # buy 1 at 105, fee 0.1 % in quote: pays 105 + 0.105 = 105.105
    # sell 1 at 110, fee 0.1 % in quote: gets 110 - 0.11 = 109.89
    # profit = 109.89 - 105.105 = 4.785
    assert state.cycles == 1
    assert state.profit == D("4.785")
    preview = grid.preview(config(), D("107"))
    # the preview's formula q(S-B) - f q (B+S) = 5 - 0.001 * 215 = 4.785, 4.785/105 = 4.5571.. %
    assert preview.intervals[1].profit_quote == D("4.785")
    assert preview.intervals[1].profit_pct.quantize(D("0.0001")) == D("4.5571")
    # the buy at 105 is placed again for the next cycle
    assert state.slots[1].side is Side.BUY and state.slots[1].cycle == 2


def test_one_cycle_profit_with_the_buy_fee_taken_in_base() -> None:
    state, ex = _one_cycle(buy_fee_in_base=True)
    # buy 1 at 105, fee 0.001 BTC: holds 0.999, pays 105
    # sell 0.999 (already a multiple of the 0.001 step) at 110: 109.89 - 0.10989 fee = 109.78011
    # profit = 109.78011 - 105 = 4.78011
    assert state.profit == D("4.78011")
    sells = [o for o in ex.placed if o.side is Side.SELL and o.client_id.step == "g2s1"]
    assert sells[0].amount == D("0.999")


def test_deal_records_every_fill() -> None:
    cfg = config()
    ex = MiniExchange(BTC)
    bars = [candle(BTC, 0, "107", "107.5", "106.5", "107"), candle(BTC, 1, "107", "107", "104.5", "105.5")]
    run = drive(grid.step, cfg, grid.initial_state(cfg), ex, bars)
    deal = run.state.deal
    assert deal.bought == D("3") and deal.spent == D("2") * D("107") + D("105")
    assert [c for c in run.commands if isinstance(c, DealChanged)][-1].deal == deal


def test_trailing_up_moves_the_lowest_buy_above_the_top() -> None:
    cfg = config(quantity_per_grid="100", order_currency_type="quote", trailing_up_enabled=True)
    state, commands = grid.step(cfg, grid.initial_state(cfg), PriceTicked(BTC, D("119"), T0))
    # every line is below 119: four buys, each 100 USDT / line price floored to 0.001
    assert places(commands) == [
        ("sbg1-1-g0b1", "buy", "1.000", "100.00"), ("sbg1-1-g1b1", "buy", "0.952", "105.00"),
        ("sbg1-1-g2b1", "buy", "0.909", "110.00"), ("sbg1-1-g3b1", "buy", "0.869", "115.00"),
    ]
    assert grid.interest(cfg, state).above == D("125")  # one line above the top (120)
    state, commands = grid.step(cfg, state, PriceTicked(BTC, D("125.5"), T0))
    assert commands[0] == CancelOrder(ClientOrderId("g1", 1, "g0b1"))
    assert places(commands) == [("sbg1-1-g4b1", "buy", "0.833", "120.00")]  # 100/120 = 0.8333
    assert (state.lo, state.hi) == (1, 5)
    assert grid.interest(cfg, state).above == D("130")
    # a jump to 141 passes the lines 130, 135 and 140: three moves at once, after
    # which the top line (140) is the last one at or below the price
    state, commands = grid.step(cfg, state, PriceTicked(BTC, D("141"), T0))
    assert [c.client_id.step for c in commands if isinstance(c, CancelOrder)] == ["g1b1", "g2b1", "g3b1"]
    assert [p[:2] + p[3:] for p in places(commands)] == [
        ("sbg1-1-g5b1", "buy", "125.00"), ("sbg1-1-g6b1", "buy", "130.00"), ("sbg1-1-g7b1", "buy", "135.00")]
    assert grid.interest(cfg, state).above == D("145")


def test_trailing_down_adds_buys_below_until_the_stop_price() -> None:
    cfg = config(trailing_down_enabled=True, trailing_down_stop_price="90")
    assert grid.preview(cfg, D("99")).trailing_down_levels == 2  # lines 95 and 90
    ex = MiniExchange(BTC)
    bars = [
        candle(BTC, 0, "99", "99.5", "98.5", "99"),  # every line above 99: all four intervals bought
        candle(BTC, 1, "99", "99", "96.5", "97"),  # below the bottom with every buy filled
        candle(BTC, 2, "97", "97", "94", "94.5"),  # trades through 95
        candle(BTC, 3, "94.5", "94.5", "92", "93"),
        candle(BTC, 4, "93", "93", "80.5", "81"),  # through 90; nothing below the stop price
        candle(BTC, 5, "81", "81", "70", "71"),
    ]
    run = drive(grid.step, cfg, grid.initial_state(cfg), ex, bars)
    placed = [(str(o.client_id), str(o.price)) for o in ex.placed]
    assert ("sbg1-1-gn1b1", "95.00") in placed
    assert ("sbg1-1-g0s1", "100.00") in placed  # the new bottom interval sells at the old bottom
    assert ("sbg1-1-gn2b1", "90.00") in placed
    assert not any("gn3" in p[0] for p in placed)
    assert run.state.lo == -2


def _stopped_run(**overrides: Any) -> tuple[Any, MiniExchange]:
    cfg = config(**overrides)
    ex = MiniExchange(BTC)
    bars = [
        candle(BTC, 0, "107", "107.5", "106.5", "107"),
        candle(BTC, 1, "107", "107", "94", "95"),  # through 105 and 100, then the stop at 96
        candle(BTC, 2, "95", "130", "95", "125"),
    ]
    return drive(grid.step, cfg, grid.initial_state(cfg), ex, bars), ex


def test_lower_stop_loss_and_sell_cancels_then_sells_everything_it_holds() -> None:
    run, ex = _stopped_run(lower_stop_loss_enabled=True, lower_stop_loss_price="96",
                           lower_stop_loss_action="stop_bot_and_sell")
    # held: 2 from the market buy + 1 at 105 + 1 at 100 = 4; the sells at 105..120 are
    # cancelled first, then 4 are sold at market.
    sells = [o for o in ex.placed if o.client_id.step == "close"]
    assert len(sells) == 1 and sells[0].amount == D("4.000") and sells[0].type is OrderType.MARKET
    assert ex.base == 0 and not ex.open
    assert run.state.phase is grid.Phase.STOPPED
    assert any(isinstance(c, StopBot) for c in run.commands)
    assert run.state.deal.close_reason is CloseReason.STOP_LOSS


def test_lower_stop_bot_keeps_the_coins() -> None:
    run, ex = _stopped_run(lower_stop_loss_enabled=True, lower_stop_loss_price="96")
    assert ex.base == D("4") and not ex.open  # nothing sold, nothing left resting
    assert [c for c in run.commands if isinstance(c, StopBot)]
    assert grid.interest(config(), run.state) == Interest()  # stopped: no price can wake it
    assert run.state.phase is grid.Phase.STOPPED


def test_upper_stop_takes_profit_when_the_high_reaches_it() -> None:
    cfg = config(upper_stop_loss_enabled=True, upper_stop_loss_price="125",
                 upper_stop_loss_action="stop_bot_and_sell")
    state, _ = grid.step(cfg, grid.initial_state(cfg), PriceTicked(BTC, D("107"), T0))
    assert grid.interest(cfg, state).above == D("125")
    ex = MiniExchange(BTC)
    bars = [candle(BTC, 0, "107", "107.5", "106.5", "107"), candle(BTC, 1, "107", "126", "107", "124")]
    run = drive(grid.step, cfg, grid.initial_state(cfg), ex, bars)
    assert run.state.deal.close_reason is CloseReason.TAKE_PROFIT
    assert ex.base == 0  # sells at 115 and 120 filled on the way up, nothing left to sell


@pytest.mark.parametrize("fee_in_base", [False, True])
def test_state_survives_a_json_round_trip_mid_run(fee_in_base: bool) -> None:
    import json

    state, _ = _one_cycle(buy_fee_in_base=fee_in_base)
    assert grid.load_state(json.loads(json.dumps(grid.dump_state(state)))) == state


def test_the_lower_stop_trails_up_with_the_grid() -> None:
    cfg = config(quantity_per_grid="100", order_currency_type="quote", trailing_up_enabled=True,
                 lower_stop_loss_enabled=True, lower_stop_loss_price="95")
    state, _ = grid.step(cfg, grid.initial_state(cfg), PriceTicked(BTC, D("119"), T0))
    assert grid.interest(cfg, state).below == D("95")
    state, _ = grid.step(cfg, state, PriceTicked(BTC, D("125.5"), T0))
    # the bottom line moved from 100 to 105: the stop keeps its 5 below it
    assert grid.interest(cfg, state).below == D("100")
    state, commands = grid.step(cfg, state, PriceTicked(BTC, D("100"), T0))
    assert state.phase is grid.Phase.STOPPED and any(isinstance(c, StopBot) for c in commands)
    geometric = config(upper_price="146.41", grid_type="geometric", quantity_per_grid="200",
                       order_currency_type="quote", trailing_up_enabled=True,
                       lower_stop_loss_enabled=True, lower_stop_loss_price="90")
    state, _ = grid.step(geometric, grid.initial_state(geometric), PriceTicked(BTC, D("150"), T0))
    state, _ = grid.step(geometric, state, PriceTicked(BTC, D("162"), T0))  # one line up (161.05)
    assert (state.lo, grid.interest(geometric, state).below) == (1, D("99"))  # 90 * 110 / 100


def test_trailing_down_after_trailing_up_stays_within_the_investment() -> None:
    cfg = config(quantity_per_grid=None, investment="1000", trailing_up_enabled=True,
                 trailing_down_enabled=True, trailing_down_stop_price="90")
    # 4 intervals + 2 trailing-down lines (95, 90): each interval may use 1000 / 6 / 1.001
    ex = MiniExchange(BTC)
    bars = [candle(BTC, 0, "119", "119.5", "118.5", "119"), candle(BTC, 1, "119", "131.5", "119", "131")]
    price = D("131")
    for i in range(2, 14):  # a slow crash to 83, line by line
        nxt = price - 4
        bars.append(candle(BTC, i, price, price, nxt, nxt))
        price = nxt
    committed: list[D] = []
    run = drive(grid.step, cfg, grid.initial_state(cfg), ex, bars,
                after_event=lambda _s: committed.append(ex.committed()))
    # moved up two lines (lo 2..hi 6), then extended down to line 0 only: 6 intervals,
    # as many as the investment was split into; line -1 (95) would be a 7th
    assert (run.state.lo, run.state.hi) == (0, 6)
    assert max(committed) <= D("1000")
    assert not any(o.client_id.step.startswith("gn") for o in ex.placed)


def test_rounding_dust_goes_along_with_the_next_sell_instead_of_piling_up() -> None:
    # 0.3 BTC a line, the buy's 0.1 % fee taken in base: each buy leaves 0.2997, of which
    # the 0.001 step sells 0.299. Kept apart, 0.0007 a cycle piled up (below any minimum
    # notional, never sold) and every cycle booked a step's worth less; added to the next
    # sell once it makes a step, the grid never holds a step or more of dust.
    cfg = config(quantity_per_grid="0.3")
    ex = MiniExchange(BTC, fee=D("0.001"), buy_fee_in_base=True)
    bars = [candle(BTC, 0, "107", "107.5", "106.5", "107")]
    for i in range(1, 9, 2):  # four times through 105 (buy) and 110 (sell)
        bars.append(candle(BTC, i, "107", "107", "104.5", "105.5"))
        bars.append(candle(BTC, i + 1, "105.5", "110.5", "105.2", "110.2"))
    run = drive(grid.step, cfg, grid.initial_state(cfg), ex, bars)
    assert run.state.cycles >= 4
    assert run.state.dust < D("0.001")
    sells = [o.amount for o in ex.placed if o.side is Side.SELL and o.client_id.step.startswith("g2s")]
    assert D("0.300") in sells  # a sell that took the dust along
    held = sum((s.held for s in run.state.slots.values()), D(0)) + run.state.dust
    assert held == ex.base  # the books still match the exchange


def test_orders_cancelled_outside_the_bot_are_placed_again_on_the_next_price() -> None:
    # A kill switch (or a stop) cancels every order; once the grid runs again its next
    # price places them again under the next cycle number. They used to stay idle: a
    # grid started again after a kill switch never traded again.
    cfg = config()
    ex = MiniExchange(BTC)
    state, commands = grid.step(cfg, grid.initial_state(cfg), PriceTicked(BTC, D("107"), T0))
    fills = ex.apply(commands, T0, D("107"))
    state, commands = grid.step(cfg, state, fills[0])  # the opening buy: sells at 115 and 120
    resting = [("sbg1-1-g0b1", 0), ("sbg1-1-g1b1", 1), ("sbg1-1-g4s1", 3)]
    for text, _ in resting:
        state, commands = grid.step(cfg, state, OrderCanceled(ClientOrderId.parse(text), T0))
        assert not [c for c in commands if isinstance(c, PlaceOrder)]
    assert grid.interest(cfg, state) == Interest.ALWAYS
    assert grid.load_state(grid.dump_state(state)) == state
    state, commands = grid.step(cfg, state, PriceTicked(BTC, D("108"), T0))
    assert sorted(places(commands)) == [("sbg1-1-g0b2", "buy", "1.000", "100.00"),
                                        ("sbg1-1-g1b2", "buy", "1.000", "105.00"),
                                        ("sbg1-1-g4s2", "sell", "1.000", "120.00")]
    state, commands = grid.step(cfg, state, PriceTicked(BTC, D("108"), T0))
    assert places(commands) == []


def test_a_part_filled_buy_cancelled_outside_the_bot_sells_on_the_next_price_not_at_once() -> None:
    # A kill switch cancels a buy that had filled in part. Its sell used to go out at
    # once, while the bot was stopped: refused by the engine, the interval stayed idle
    # with its coins for good. Now the sell goes out on the first price of the running grid.
    cfg = config()
    state, commands = grid.step(cfg, grid.initial_state(cfg), PriceTicked(BTC, D("102"), T0))
    buy = next(c.order for c in commands if isinstance(c, PlaceOrder) and c.order.client_id.step == "g0b1")
    fill = Fill(buy.client_id, BTC, Side.BUY, D("100"), D("0.4"), D("0"), "USDT", T0, "t1")
    state, commands = grid.step(cfg, state, OrderFilled(fill, D("0.6")))
    state, commands = grid.step(cfg, state, OrderCanceled(buy.client_id, T0))
    assert places(commands) == []
    state, commands = grid.step(cfg, state, PriceTicked(BTC, D("102"), T0))
    assert places(commands) == [("sbg1-1-g1s2", "sell", "0.400", "105.00")]


def test_stop_and_sell_says_so_when_what_the_grid_holds_is_too_little_to_sell() -> None:
    # 0.05 BTC bought at 100 (5 USDT, the minimum), the fee taken in base: 0.049 left to
    # sell is 4.90 USDT, below the minimum notional. The grid stopped without a word.
    cfg = config(market={**MARKET, "min_notional": "5"}, quantity_per_grid="0.05", upper_price="105",
                 grids_quantity=2)
    state, commands = grid.step(cfg, grid.initial_state(cfg), PriceTicked(BTC, D("101"), T0))
    buy = next(c.order for c in commands if isinstance(c, PlaceOrder) and c.order.client_id.step == "g0b1")
    fill = Fill(buy.client_id, BTC, Side.BUY, D("100"), D("0.05"), D("0.00005"), "BTC", T0, "t1")
    state, commands = grid.step(cfg, state, OrderFilled(fill, D("0")))
    state, commands = grid.step(cfg, state, CloseAtMarket(1, T0))
    for cancel in [c for c in commands if isinstance(c, CancelOrder)]:
        state, commands = grid.step(cfg, state, OrderCanceled(cancel.client_id, T0))
    assert any(isinstance(c, StopBot) for c in commands)
    assert [c.code for c in commands if isinstance(c, RaiseAlert)] == ["grid.unsellable"]
