"""Parameter sweeps: variants, ranking, processes, progress."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pandas as pd

import sealbot.bots.dca as dca
from sealbot.backtest.data import read_frame
from sealbot.backtest.metrics import Metrics
from sealbot.backtest.simulate import run
from sealbot.backtest.sweep import Uniform, grid_space, random_space, sweep, with_params
from sealbot.domain import Pair

DATA = Path(__file__).resolve().parents[2] / "src" / "sealbot" / "data"
PAIR = Pair("BTC", "USDT")
CANDLES = {PAIR: read_frame(DATA / "BTC-PERP-1m-20211231-20220107.csv.gz").iloc[:4000]}
CONFIG = dca.DcaConfig.model_validate(dict(
    bot_id="sw", markets=[{"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001"}],
    base_order_volume=D("100"), safety_order_volume=D("100"), max_safety_orders=3, active_safety_orders_count=1,
    safety_order_step_percentage=D("0.5"), take_profit=D("0.5"),
))


def test_backtest_grid_space_lists_every_combination_in_order() -> None:
    space = grid_space({"a": [1, 2], "b": ["x", "y", "z"]})
    assert space == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"},
                     {"a": 2, "b": "x"}, {"a": 2, "b": "y"}, {"a": 2, "b": "z"}]


def test_backtest_random_space_is_seeded_distinct_and_in_range() -> None:
    space = {"take_profit": Uniform(D("0.2"), D("2"), D("0.1")), "max_safety_orders": [0, 1, 2, 3]}
    first = random_space(space, 10, seed=7)
    assert first == random_space(space, 10, seed=7)
    assert first != random_space(space, 10, seed=8)
    assert len({tuple(p.values()) for p in first}) == 10
    assert all(D("0.2") <= p["take_profit"] <= D("2") and p["take_profit"] % D("0.1") == 0 for p in first)
    assert len(random_space({"a": [1, 2]}, 10, seed=1)) == 2  # a small space yields what it has


def test_backtest_with_params_revalidates_and_reaches_nested_settings() -> None:
    changed = with_params(CONFIG, {"take_profit": D("1.5"), "fees.maker": D("0.0005")})
    assert (changed.take_profit, changed.fees.maker, CONFIG.take_profit) == (D("1.5"), D("0.0005"), D("0.5"))
    assert isinstance(changed, dca.DcaConfig)


def test_backtest_sweep_ranks_by_the_objective_across_processes() -> None:
    variants = grid_space({"take_profit": [D("0.3"), D("0.8"), D("1.5")], "safety_order_step_percentage": [D("0.4"),
                                                                                                         D("1")]})
    seen: list[tuple[int, int]] = []
    result = sweep(dca, CONFIG, CANDLES, variants, workers=2, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(i, 6) for i in range(1, 7)]
    scores = [row.score for row in result.rows]
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    assert [row.rank for row in result.rows] == [1, 2, 3, 4, 5, 6]
    # Each score is that variant's own backtest P&L.
    for row in (result.rows[0], result.rows[-1]):
        alone = run(dca, with_params(CONFIG, row.params), CANDLES)
        assert row.metrics is not None and row.metrics.pnl == alone.metrics.pnl
        assert row.score == float(alone.metrics.pnl)
    # In one process the table is the same, whatever order workers finished in.
    same = sweep(dca, CONFIG, CANDLES, variants, workers=1)
    pd.testing.assert_frame_equal(result.table(), same.table())


def test_backtest_sweep_keeps_refused_variants_last_with_their_reason() -> None:
    variants = [{"active_safety_orders_count": 5}, {"take_profit": D("0.4")}]  # 5 > max_safety_orders (3)
    result = sweep(dca, CONFIG, CANDLES, variants, workers=1)
    assert result.best.params == {"take_profit": D("0.4")}
    last = result.rows[-1]
    assert last.metrics is None and last.score is None and last.error and "active_safety_orders_count" in last.error
    table = result.table()
    assert list(table["rank"]) == [1, 2] and table["error"].iloc[1] == last.error


def test_backtest_sweep_objective_can_be_a_function() -> None:
    variants = grid_space({"take_profit": [D("0.3"), D("1.5")]})

    def fewest_deals(m: Metrics) -> float:
        return -m.deals_closed

    result = sweep(dca, CONFIG, CANDLES, variants, workers=1, objective=fewest_deals)
    deals = [row.metrics.deals_closed for row in result.rows if row.metrics]
    assert deals == sorted(deals) and result.objective == "fewest_deals"
