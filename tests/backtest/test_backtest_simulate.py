"""The simulator running the real sealbot bots over the bundled real candles."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sealbot.bots.dca as dca
import sealbot.bots.grid as grid
from sealbot.backtest.data import read_frame, resample
from sealbot.backtest.metrics import Result
from sealbot.backtest.simulate import run
from sealbot.domain import CloseReason, DealStatus, InvalidConfig, OrderStatus, Pair
from sealbot.domain.money import ceil_to_step, floor_to_step

from . import toybot

DATA = Path(__file__).resolve().parents[2] / "src" / "sealbot" / "data"
BTC_USDT = Pair("BTC", "USDT")
BTC = read_frame(DATA / "BTC-PERP-1m-20211231-20220107.csv.gz")
ETH_BTC = read_frame(DATA / "ETH_BTC-5m.feather")
UNIT_BTC = read_frame(DATA / "UNITTEST_BTC-1m.feather")
MARKET = {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.0001", "min_notional": "10"}


def at(hms: str) -> datetime:
    return datetime.fromisoformat(f"2021-12-31T{hms}+00:00")


def dca_config(**overrides: Any) -> dca.DcaConfig:
    settings_: dict[str, Any] = dict(bot_id="hand", markets=[MARKET], base_order_volume=D("1000"),
                                     safety_order_volume=D("1000"), max_safety_orders=1,
                                     active_safety_orders_count=1, safety_order_step_percentage=D("0.1"),
                                     take_profit=D("0.1"))
    settings_.update(overrides)
    return dca.DcaConfig.model_validate(settings_)


def comparable(result: Result) -> str:
    """Everything a run produced except how many candles it had to step."""
    data = result.to_dict()
    data["metrics"].pop("candles_stepped")
    return json.dumps(data, sort_keys=True)


def test_backtest_hand_checked_dca_scenario_on_real_btc_minutes() -> None:
    """Ten real 1-minute candles, 2021-12-31 23:01-23:10 (open high low close):

        23:01 46319 46385 46319 46377     23:06 46427 46435 46424 46435
        23:02 46377 46411 46377 46411     23:07 46435 46435 46379 46420
        23:03 46411 46425 46411 46425     23:08 46420 46420 46405 46411
        23:04 46425 46425 46420 46420     23:09 46411 46429 46372 46415
        23:05 46420 46437 46420 46427     23:10 46415 46456 46415 46435

    Bot: base order 1000 USDT at market, one safety order of 1000 USDT 0.1 % below the
    base price, take profit 0.1 % over the average entry; tick 0.01, step 0.0001; fees
    0.1 % maker and taker, in the asset received (Binance).
    """
    result = run(dca, dca_config(), {BTC_USDT: BTC.iloc[:10]})
    fee = D("0.001")
    tick, step = D("0.01"), D("0.0001")

    # Deal 1. 23:01 closes at 46377 (close time 23:02): the deal opens with a market buy of
    # floor(1000 / 46377 = 0.02156.., step) = 0.0215 BTC. It meets the book at the next
    # open, 46377 (taker): the fee is 0.0215 * 0.1 % = 0.0000215 BTC, so 0.0214785 BTC arrive.
    bo1 = floor_to_step(D(1000) / D(46377), step)
    assert bo1 == D("0.0215")
    net1 = bo1 * (1 - fee)
    # Take profit: 46377 * 1.001 = 46423.377, up to the tick: 46423.38, selling
    # floor(0.0214785, step) = 0.0214. Safety order: 46377 * 0.999 = 46330.623 -> 46330.62.
    tp1 = ceil_to_step(D(46377) * D("1.001"), tick)
    assert tp1 == D("46423.38")
    # 23:02 goes no higher than 46411. 23:03 is green (46411 -> low 46411 -> high 46425):
    # the rise to 46425 trades through 46423.38 in the candle's last third, 23:03:40 (maker).
    deal1 = result.deals[0]
    assert (deal1.opened_at, deal1.closed_at, deal1.close_reason) == (at("23:02"), at("23:03:40"),
                                                                      CloseReason.TAKE_PROFIT)
    assert (deal1.bought, deal1.sold) == (net1, D("0.0214"))
    proceeds1 = D("0.0214") * tp1
    # Profit = proceeds - cost - fees (the buy's base fee valued at the fill price, the
    # sell's quote fee): 993.460332 - 996.1083945 - (0.9971055 + 0.993460332) = -4.638628332.
    cash1 = proceeds1 - net1 * 46377 - (bo1 * fee * 46377 + proceeds1 * fee)
    assert cash1 == D("-4.638628332")
    # The step leaves 0.0214785 - 0.0214 = 0.0000785 BTC unsold in the account; it is
    # valued at the exit price: 0.0000785 * 46423.38 = 3.64423533, so the profit is -0.994393002.
    profit1 = cash1 + (net1 - D("0.0214")) * tp1
    assert profit1 == D("-0.994393002")
    assert deal1.realized_profit == profit1

    # Deal 2. 23:03 closes at 46425: market buy floor(1000 / 46425) = 0.0215 at 23:04's open,
    # 46425. Safety order at 46425 * 0.999 = 46378.575 -> 46378.57 (floor(1000/46378.57) =
    # 0.0215 BTC); take profit 46425 * 1.001 = 46471.425 -> 46471.43. Lows 23:04-23:08:
    # 46420, 46420, 46424, 46379, 46405: 23:07 comes within 0.43 but does not trade through.
    so_price = floor_to_step(D(46425) * D("0.999"), tick)
    assert so_price == D("46378.57")
    # 23:09 is green: open 46411 -> low 46372 fills the safety order (23:09:20, maker). The
    # average entry becomes (0.0214785 * 46425 + 0.0214785 * 46378.57) / 0.042957 and the take
    # profit is re-placed at that * 1.001, rounded up, for floor(0.042957, step) = 0.0429 BTC.
    net = bo1 * (1 - fee)
    average = (net * 46425 + net * so_price) / (2 * net)
    tp2 = ceil_to_step(average * D("1.001"), tick)
    assert tp2 == D("46448.19")
    # The rest of 23:09 rises to 46429 only; 23:10 (green) reaches 46456 > 46448.19: the take
    # profit fills at 23:10:40.
    deal2 = result.deals[1]
    assert (deal2.opened_at, deal2.closed_at) == (at("23:04"), at("23:10:40"))
    proceeds2 = D("0.0429") * tp2
    cost2 = net * 46425 + net * so_price
    fees2 = D("0.0000215") * 46425 + D("0.0000215") * so_price + proceeds2 * fee  # two base fees, one quote
    cash2 = proceeds2 - cost2 - fees2
    profit2 = cash2 + (2 * net - D("0.0429")) * tp2  # + the unsold remainder at the exit price
    assert deal2.realized_profit == profit2

    # Deal 3 opens on 23:10's close; its market order would meet the 23:11 open, which is
    # not in the slice: the order stays pending, the deal open and empty.
    deal3 = result.deals[2]
    assert (deal3.status, deal3.bought) == (DealStatus.OPEN, 0)
    pending = [o for o in result.orders if o.client_id == "sbhand-3-bo"]
    assert pending[0].status is OrderStatus.PENDING

    # The account keeps what the floors left over, 0.0000785 + 0.000057 BTC, worth the last
    # close (46435); P&L (marked to market) = the two deals' cash + that dust; the realized
    # P&L valued the dust at each deal's exit price instead.
    dust = (net1 - D("0.0214")) + (2 * net - D("0.0429"))
    assert result.metrics.pnl == cash1 + cash2 + dust * 46435
    assert result.metrics.realized_pnl == profit1 + profit2
    # The equity curve marks the account to each close: 0 before the first fill, the P&L at the end.
    assert result.equity.iloc[0] == 0 and result.equity.iloc[-1] == pytest.approx(float(result.metrics.pnl))
    # After 23:03 (deal 1 closed, deal 2 not yet bought): deal 1's cash plus its dust at 46425.
    assert result.equity.iloc[2] == pytest.approx(float(cash1 + (net1 - D("0.0214")) * 46425))
    # Most funds at once: in deal 2 before the safety fill, deal 1's cash loss plus the 0.0215 BTC
    # bought at 46425 plus the safety order's 0.0215 * 46378.57 locked on the book.
    assert result.metrics.max_funds_used == -cash1 + bo1 * 46425 + D("0.0215") * so_price
    assert (result.metrics.deals_closed, result.metrics.deals_open) == (2, 1)
    assert [o.client_id for o in result.orders if o.status is OrderStatus.CANCELED] == ["sbhand-1-so1",
                                                                                        "sbhand-2-tp1"]


def test_backtest_results_are_identical_between_runs() -> None:
    config = dca_config(max_safety_orders=5, active_safety_orders_count=2, safety_order_step_percentage=D("0.5"),
                        take_profit=D("0.6"), safety_order_volume=D("500"))
    first = run(dca, config, {BTC_USDT: BTC})
    second = run(dca, config, {BTC_USDT: BTC})
    assert first.metrics.deals_closed > 5
    assert json.dumps(first.to_dict(), sort_keys=True) == json.dumps(second.to_dict(), sort_keys=True)


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.integers(0, 8000),
    length=st.integers(200, 1500),
    take_profit=st.sampled_from([D("0.2"), D("0.5"), D("1.1")]),
    so_step=st.sampled_from([D("0.15"), D("0.4"), D("1")]),
    safety=st.integers(0, 5),
    cooldown=st.sampled_from([0, 600]),
    stop_loss=st.sampled_from([D(0), D("3")]),
    limit_fill=st.sampled_from(["through", "touch"]),
    slippage=st.sampled_from([D(0), D("0.0005")]),
    short=st.booleans(),
    trailing=st.booleans(),
    # Enough for the base order and one safety order, not always for a second: some rejects.
    balances=st.sampled_from([None, {"USDT": D("1500"), "BTC": D("0.033")}]),
)
def test_backtest_interest_skipping_gives_exactly_the_stepped_result(
    start: int, length: int, take_profit: D, so_step: D, safety: int, cooldown: int, stop_loss: D,
    limit_fill: Any, slippage: D, short: bool, trailing: bool, balances: dict[str, D] | None,
) -> None:
    config = dca_config(max_safety_orders=safety, active_safety_orders_count=min(safety, 2),
                        safety_order_step_percentage=so_step, take_profit=take_profit, cooldown=cooldown,
                        stop_loss_percentage=stop_loss, safety_order_volume=D("300"),
                        strategy="short" if short else "long", trailing_enabled=trailing,
                        trailing_deviation=take_profit / 4 if trailing else D(0))
    candles = {BTC_USDT: BTC.iloc[start:start + length].reset_index(drop=True)}
    options: dict[str, Any] = dict(limit_fill=limit_fill, slippage=slippage, balances=balances)
    skipped = run(dca, config, candles, **options)
    stepped = run(dca, config, candles, skip=False, **options)
    assert stepped.metrics.candles_stepped == length or stepped.stopped is not None
    assert comparable(skipped) == comparable(stepped)


def test_backtest_skipping_is_what_makes_it_fast() -> None:
    config = dca_config(max_safety_orders=5, active_safety_orders_count=5, take_profit=D("1"),
                        safety_order_step_percentage=D("1"), safety_order_volume=D("200"))
    result = run(dca, config, {BTC_USDT: BTC})
    assert result.metrics.candles_stepped < len(BTC) / 20


def grid_config(**overrides: Any) -> grid.Config:
    base: dict[str, Any] = dict(bot_id="g1", market=MARKET, lower_price=D("45000"), upper_price=D("48000"),
                                grids_quantity=11, quantity_per_grid=D("0.002"))
    base.update(overrides)
    return grid.Config.model_validate(base)


def test_backtest_grid_bot_on_real_data_with_and_without_skipping() -> None:
    for config in (grid_config(), grid_config(trailing_up_enabled=True, lower_price=D("42000"),
                                              upper_price=D("44000"), lower_stop_loss_enabled=True,
                                              lower_stop_loss_price=D("41000"), order_currency_type="quote",
                                              quantity_per_grid=D("100"))):
        skipped = run(grid, config, {BTC_USDT: BTC})
        stepped = run(grid, config, {BTC_USDT: BTC}, skip=False)
        assert comparable(skipped) == comparable(stepped)
        assert len(skipped.fills) > 2
    result = run(grid, grid_config(), {BTC_USDT: BTC})
    sells = [f for f in result.fills if f.side.value == "sell"]
    # Each grid sell is one line (300 USDT) above a buy: the state's profit counts them.
    assert sells and result.final_state.cycles == len(sells)


def test_backtest_toy_bot_skipping_matches_stepping_on_other_real_markets() -> None:
    pair = Pair("ETH", "BTC")
    from sealbot.domain import MarketRules

    rules = MarketRules(pair, D("0.000001"), D("0.001"))
    config = toybot.ToyConfig(pair, D("1"), D("2"), 3, D("1.5"), D("1"), rules)
    skipped = run(toybot, config, {pair: ETH_BTC}, rules=rules)
    stepped = run(toybot, config, {pair: ETH_BTC}, rules=rules, skip=False)
    assert comparable(skipped) == comparable(stepped)
    assert skipped.metrics.deals_closed > 3


def test_backtest_one_multi_pair_dca_bot_over_two_markets() -> None:
    eth, unit = Pair("ETH", "BTC"), Pair("UNITTEST", "BTC")
    markets = [{"pair": "ETH/BTC", "tick_size": "0.000001", "step_size": "0.001"},
               {"pair": "UNITTEST/BTC", "tick_size": "0.00000001", "step_size": "1"}]

    def config(chosen: list[dict[str, str]]) -> dca.DcaConfig:
        # A multi-pair bot runs one deal per pair; a single-pair bot with max_active_deals=1 too.
        return dca.DcaConfig(bot_id="mp", markets=chosen, base_order_volume=D("0.05"), safety_order_volume=D("0.05"),
                             max_safety_orders=2, active_safety_orders_count=1, take_profit=D("1"),
                             safety_order_step_percentage=D("1"), max_active_deals=len(chosen))

    both = run(dca, config(markets), {eth: ETH_BTC, unit: UNIT_BTC})
    assert set(both.equity.index) == set(both.outcomes[0].equity().index) | set(both.outcomes[1].equity().index)
    # The two files do not overlap in time and each pair may have its deal, so each pair
    # trades exactly as a single-pair bot on it would (deal numbers aside).
    for pair, market, frame in ((eth, markets[0], ETH_BTC), (unit, markets[1], UNIT_BTC)):
        alone = run(dca, config([market]), {pair: frame})

        def shape(result: Result, pair: Pair = pair) -> list[tuple[Any, ...]]:
            return [(d.opened_at, d.closed_at, d.bought, d.spent, d.sold, d.received) for d in result.deals
                    if d.pair == pair]

        assert shape(both) == shape(alone) and shape(alone)
    assert both.metrics.deals_closed == sum(1 for d in both.deals if d.status is DealStatus.CLOSED)


def test_backtest_pairs_of_different_timeframes_over_the_same_time_are_refused() -> None:
    # Candles are walked by their open: the 5m candle of 23:00 closed (at 23:05, with its
    # 23:05 price) before the 1m candles of 23:01 to 23:04 of the other pair were walked.
    one_minute = BTC.iloc[:30]
    five_minutes = resample(one_minute, "5m")
    eth = Pair("ETH", "USDT")
    with pytest.raises(InvalidConfig, match=r"^timeframe: BTC/USDT \(1m\) and ETH/USDT \(5m\) overlap in time"):
        run(dca, dca_config(), {BTC_USDT: one_minute, eth: five_minutes})
    run(dca, dca_config(), {BTC_USDT: one_minute, eth: resample(BTC.iloc[60:90], "5m")})  # one after the other: fine


def test_backtest_result_json_is_complete() -> None:
    result = run(dca, dca_config(), {BTC_USDT: BTC.iloc[:10]})
    data = json.loads(json.dumps(result.to_dict()))
    assert data["metrics"]["deals_closed"] == 2
    assert data["deals"][0]["realized_profit"] == "-0.994393002"  # the hand-checked deal 1
    assert len(data["equity"]["time"]) == 10 and data["fills"][0]["fee_currency"] == "BTC"
    assert pd.Timestamp(data["start"]) == pd.Timestamp("2021-12-31 23:01", tz=UTC)


def test_backtest_rsi_start_condition_gets_rsi_events_like_live() -> None:
    from sealbot.backtest.indicators import rsi_events

    config = dca_config(start_condition="rsi", rsi={"timeframe": "1h", "period": 14, "value": "35"},
                        max_safety_orders=2, active_safety_orders_count=1, take_profit=D("1"))
    events = rsi_events(BTC, BTC_USDT, "1h", 14)
    # 169 hourly buckets (23:00 Dec 31 ... 23:00 Jan 7); talipp's RSI(14) needs 14 closes
    # before its first value; each value is stamped at its hour's close.
    assert len(events) == 169 - 14 and all(e.at.minute == 0 for e in events)
    low = [e.at for e in events if e.value < 35]
    skipped = run(dca, config, {BTC_USDT: BTC})
    stepped = run(dca, config, {BTC_USDT: BTC}, skip=False)
    assert comparable(skipped) == comparable(stepped)
    # The first deal opens on the first hourly close whose RSI is below 35, not before.
    assert skipped.deals and skipped.deals[0].opened_at == low[0]
    assert run(dca, config, {BTC_USDT: BTC}, events=()).deals == []  # without RSI it never starts


def test_backtest_a_short_needs_the_base_it_sells() -> None:
    """A short sells base first: what it needs is that base (valued at the price of the
    moment) plus the base its safety sells hold, not quote."""
    config = dca_config(strategy="short", base_order_volume=D("100"), safety_order_volume=D("100"),
                        max_safety_orders=1, active_safety_orders_count=1, safety_order_step_percentage=D("0.1"),
                        take_profit=D("0.1"))
    result = run(dca, config, {BTC_USDT: BTC.iloc[:10]})
    first = result.fills[0]
    assert first.side.value == "sell" and first.client_id.step == "bo"
    safety = next(o for o in result.orders if o.client_id == "sbhand-1-so1")
    # After the base sell fills at 46377 and the safety sell rests: the base sold plus the
    # base the safety sell holds, both at 46377.
    assert result.metrics.max_funds_used >= (first.amount + safety.amount) * first.price
    assert result.metrics.max_funds_used < D("210")
