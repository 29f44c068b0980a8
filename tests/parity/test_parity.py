"""Parity: the same bot over the same real candles through the backtester and through
the engine trading on simex's replay (the unmodified ccxt Binance client over HTTP)
makes the same deals, the same fills at the same prices, amounts, fees and times, ends
with the same orders and the same account, and so the same P&L — to the last of the
exchange's 8 decimals, with no tolerance. The alignment between the two (simex's book
and fee rounding in the backtester, when the engine polls, how times map) is in
``harness`` and docs/parity.md."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from typing import Any

from sealbot.backtest.simulate import run
from sealbot.bots.registry import bot_module, parse_config
from sealbot.domain import Pair

from . import harness
from .harness import MARKET, XRP_MARKET, XRP_PAIR, Outcome

FEES = {"maker": "0.00075", "taker": "0.001"}  # distinct rates: a maker/taker mix-up changes the fee
DCA_LONG: dict[str, Any] = {
    "bot_id": "plong", "strategy": "long", "markets": [MARKET], "fees": FEES,
    "base_order_volume": "100", "base_order_type": "market", "safety_order_volume": "100",
    "max_safety_orders": 5, "active_safety_orders_count": 1, "safety_order_step_percentage": "0.15",
    "martingale_volume_coefficient": "1.5", "martingale_step_coefficient": "1.2", "take_profit": "0.25",
}
DCA_SHORT: dict[str, Any] = {
    "bot_id": "pshort", "strategy": "short", "markets": [MARKET], "fees": FEES,
    "base_order_volume": "80", "safety_order_volume": "80", "max_safety_orders": 4,
    "active_safety_orders_count": 2, "safety_order_step_percentage": "0.2", "martingale_volume_coefficient": "1.5",
    "take_profit_steps": [{"amount_percentage": "50", "profit_percentage": "0.2"},
                          {"amount_percentage": "50", "profit_percentage": "0.4"}],
    "stop_loss_percentage": "1.5",
}
DCA_RSI: dict[str, Any] = {
    "bot_id": "prsi", "markets": [MARKET], "fees": FEES, "base_order_volume": "100", "safety_order_volume": "100",
    "max_safety_orders": 3, "active_safety_orders_count": 1, "safety_order_step_percentage": "0.2",
    "take_profit": "0.3", "start_condition": "rsi", "rsi": {"timeframe": "5m", "period": 14, "value": "40"},
}
DCA_TWO_PAIRS: dict[str, Any] = {
    "bot_id": "ptwo", "markets": [MARKET, XRP_MARKET], "fees": FEES, "max_active_deals": 2,
    "base_order_volume": "100", "safety_order_volume": "100", "max_safety_orders": 3,
    "active_safety_orders_count": 1, "safety_order_step_percentage": "0.2", "take_profit": "0.3",
}
DCA_COOLDOWN: dict[str, Any] = {
    "bot_id": "pcool", "markets": [MARKET], "fees": FEES, "base_order_volume": "100", "safety_order_volume": "100",
    "max_safety_orders": 3, "active_safety_orders_count": 1, "safety_order_step_percentage": "0.2",
    "take_profit": "0.3", "cooldown": 290,
}
SMART: dict[str, Any] = {
    "bot_id": "psmart", "market": MARKET, "fees": FEES, "direction": "long", "volume": "500",
    "entry_type": "limit", "entry_price": "46250",
    "take_profit_steps": [{"amount_percentage": "50", "profit_percentage": "0.6"},
                          {"amount_percentage": "50", "profit_percentage": "1.2"}],
    "trailing_enabled": True, "trailing_deviation": "0.2", "stop_loss_percentage": "1",
    "sl_to_breakeven_enabled": True,
}
GRID: dict[str, Any] = {
    "bot_id": "pgrid", "market": MARKET, "fees": FEES, "lower_price": "46200", "upper_price": "47600",
    "grids_quantity": 15, "quantity_per_grid": "0.002",
}


def both(kind: str, config: dict[str, Any], n: int, spread_ticks: int = 1,
         pairs: tuple[Pair, ...] = (harness.PAIR,)) -> tuple[Outcome, Outcome]:
    backtested = harness.backtest(kind, config, n, spread_ticks=spread_ticks, pairs=pairs)
    traded = asyncio.run(harness.engine(kind, config, n, spread_ticks=spread_ticks, pairs=pairs))
    return backtested, traded


def assert_same(backtested: Outcome, traded: Outcome) -> None:
    """Equal in every field; on a difference, name the first one. Fills are compared in
    execution order market by market (within a minute the backtester walks one pair's
    candle after the other's, simex moves every market one path point at a time)."""
    for pair in sorted({f.pair for f in backtested.fills + traded.fills}):
        ours_all = [f for f in backtested.fills if f.pair == pair]
        theirs_all = [f for f in traded.fills if f.pair == pair]
        for k, (ours, theirs) in enumerate(zip(ours_all, theirs_all, strict=False)):
            assert ours == theirs, f"{pair} fill #{k} differs:\n backtest {ours}\n simex    {theirs}"
        assert len(ours_all) == len(theirs_all), pair
    assert Counter(backtested.fills) == Counter(traded.fills)
    # the engine recorded each of the exchange's trades once, no more, no fewer
    assert Counter(traded.journal_fills) == Counter(traded.fills)
    for ours, theirs in zip(backtested.deals, traded.deals, strict=False):
        assert ours == theirs, f"deal {ours.no} differs:\n backtest {ours}\n engine   {theirs}"
    assert len(backtested.deals) == len(traded.deals)
    assert backtested.orders == traded.orders
    assert backtested.balances == traded.balances
    assert backtested.realized == traded.realized
    assert backtested.pnl == traded.pnl


def assert_exchange_precision(outcome: Outcome) -> None:
    eight = Decimal("0.00000001")
    ticks = {str(pair): rules.tick_size for pair, rules in harness.ALL_RULES.items()}
    assert all(f.fee % eight == 0 and f.price % ticks[f.pair] == 0 for f in outcome.fills)
    assert all(amount % eight == 0 for amount in outcome.balances.values())


def test_parity_dca_long_with_safety_orders_and_take_profit() -> None:
    backtested, traded = both("dca", DCA_LONG, 3000)
    assert_same(backtested, traded)
    assert_exchange_precision(traded)
    closed = [d for d in backtested.deals if d.status == "closed"]
    # The window exercises what parity is about: many deals, deep safety ladders, both
    # maker (resting) and taker (market, crossing) fills, canceled safety orders.
    assert len(closed) >= 20
    assert max(sum(1 for f in backtested.fills if f.client_id.startswith(f"sbplong-{d.no}-so"))
               for d in closed) >= 3
    assert {f.is_maker for f in backtested.fills} == {True, False}
    assert any(o.status == "canceled" for o in backtested.orders)
    assert traded.realized > 0
    # The comparison has teeth: without any one of the exchange-model options the
    # backtester does not reproduce simex on this window.
    config, frame = parse_config("dca", DCA_LONG), harness.candles(3000)
    options: dict[str, Any] = dict(rules=harness.RULES, spread_ticks=1, fee_decimals=8, react="segment_end",
                                   point_times="quarters")
    for dropped in ({"spread_ticks": 0}, {"fee_decimals": None}, {"react": "at_fill"}, {"point_times": "thirds"}):
        result = run(bot_module("dca"), config, {harness.PAIR: frame}, **(options | dropped))
        fills = [harness.fill_view(f) for f in result.fills]
        assert fills != traded.fills, f"parity held without {dropped}: the test would not notice that option"


def test_parity_dca_short_with_take_profit_steps_and_stop_loss_on_a_wider_spread() -> None:
    backtested, traded = both("dca", DCA_SHORT, 2000, spread_ticks=3)
    assert_same(backtested, traded)
    assert_exchange_precision(traded)
    assert len([d for d in backtested.deals if d.status == "closed"]) >= 3
    assert any(f.client_id.split("-")[2].startswith("tp") for f in backtested.fills)


def test_parity_grid_bot() -> None:
    backtested, traded = both("grid", GRID, 3000)
    assert_same(backtested, traded)
    assert_exchange_precision(traded)
    assert len(backtested.fills) >= 100


def test_parity_dca_rsi_start_condition_on_five_minute_rsi() -> None:
    """The backtester computes the RSI from its candles; the engine from the candles its
    feed polls from simex, aggregated to 5m: deals open on the same closes."""
    backtested, traded = both("dca", DCA_RSI, 2000)
    assert_same(backtested, traded)
    assert len(backtested.deals) >= 5


def test_parity_one_dca_bot_on_two_markets() -> None:
    """One multi-pair DCA bot on BTC/USDT and XRP/ETH (100 USDT / 100 ETH per base order):
    both markets' fills, the deals of both, one account."""
    backtested, traded = both("dca", DCA_TWO_PAIRS, 1500, pairs=(harness.PAIR, XRP_PAIR))
    assert_same(backtested, traded)
    assert_exchange_precision(traded)
    assert {f.pair for f in traded.fills} == {"BTC/USDT", "XRP/ETH"}
    assert len(backtested.deals) >= 20


def test_parity_smart_trade_limit_entry_first_target_then_stop_at_breakeven() -> None:
    backtested, traded = both("smart", SMART, 200)
    assert_same(backtested, traded)
    # a resting entry (maker), the first target (maker), then the stop moved to
    # breakeven closes the rest at market (taker, at simex's bid)
    assert [(f.client_id, f.is_maker) for f in traded.fills] == [
        ("sbpsmart-1-bo", True), ("sbpsmart-1-tp1", True), ("sbpsmart-1-sl", False)]
    assert [(d.status, d.close_reason) for d in traded.deals] == [("closed", "stop_loss")]


def test_parity_polling_after_every_point_changes_nothing_and_cooldown_timers_agree() -> None:
    """The harness skips fetching fills after a path point where simex traded nothing for
    the account; fetching after every point (which also fires the engine's timers mid-
    candle) gives the same outcome, and both equal the backtest. The bot waits 290 s
    after each deal (a cooldown ending inside a candle)."""
    backtested = harness.backtest("dca", DCA_COOLDOWN, 800, spread_ticks=1)
    shortcut = asyncio.run(harness.engine("dca", DCA_COOLDOWN, 800, spread_ticks=1))
    every = asyncio.run(harness.engine("dca", DCA_COOLDOWN, 800, spread_ticks=1, poll_every_point=True))
    assert_same(backtested, shortcut)
    assert every == shortcut
    closed = [d for d in backtested.deals if d.status == "closed"]
    assert len(closed) >= 5
    # the cooldown held: each deal opened at least 290 s after the previous one closed
    assert all((b.opened_at - a.closed_at).total_seconds() >= 290 for a, b in zip(closed, backtested.deals[1:],
                                                                                 strict=False) if a.closed_at)
