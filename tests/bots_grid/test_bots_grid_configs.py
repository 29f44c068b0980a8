"""Impossible grid and signal-bot settings are refused naming the field and the reason;
3Commas exports import with every unmapped field explained; the registry finds kinds."""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

import pytest

from sealbot.bots import grid, registry
from sealbot.bots import signal as sb
from sealbot.bots.threecommas import detect_kind, import_bot
from sealbot.bots.threecommas_grid import import_grid
from sealbot.domain import InvalidConfig

MARKET = {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.001", "min_notional": "5"}
GRID = {"bot_id": "g1", "market": MARKET, "lower_price": "100", "upper_price": "120", "grids_quantity": 5,
        "quantity_per_grid": "1"}
SIGNAL = {"bot_id": "s1", "markets": [MARKET], "amount": "100"}


@pytest.mark.parametrize(("changes", "field", "reason"), [
    ({"lower_price": "130"}, "lower_price", "must be below upper_price"),
    ({"grids_quantity": 1}, "grids_quantity", "greater than or equal to 2"),
    ({"lower_price": "-1"}, "lower_price", "greater than 0"),
    ({"market": {**MARKET, "tick_size": "5"}, "grids_quantity": 9}, "grids_quantity", "collapse at the tick"),
    ({"grids_quantity": 150}, "grids_quantity", "twice the maker fee"),
    ({"quantity_per_grid": "0.04"}, "quantity_per_grid", "below the minimum 5"),
    ({"quantity_per_grid": "0.0004"}, "quantity_per_grid", "buys nothing"),
    ({"investment": "1000"}, "quantity_per_grid", "exactly one of"),
    ({"quantity_per_grid": None, "investment": "10"}, "investment", "breaks the market's rules"),
    ({"lower_stop_loss_enabled": True}, "lower_stop_loss_price", "required"),
    ({"lower_stop_loss_enabled": True, "lower_stop_loss_price": "100"}, "lower_stop_loss_price", "below"),
    ({"upper_stop_loss_enabled": True, "upper_stop_loss_price": "119"}, "upper_stop_loss_price", "above"),
    ({"upper_stop_loss_action": "stop_bot_and_close_position"}, "upper_stop_loss_action", "Input should be"),
    ({"trailing_up_enabled": True}, "trailing_up_enabled", "quote sizing"),
    ({"trailing_down_enabled": True}, "trailing_down_stop_price", "unbounded"),
    ({"trailing_down_enabled": True, "trailing_down_stop_price": "150"}, "trailing_down_stop_price", "below"),
    ({"bot_id": "bad id!"}, "bot_id", "pattern"),
    ({"grid_type": "fibonacci"}, "grid_type", "Input should be"),
    ({"market": {**MARKET, "pair": "BTCUSDT"}}, "market.pair", "BASE/QUOTE"),
    ({"fees": {"maker": "-0.1"}}, "fees.maker", "greater than or equal to 0"),
    ({"lower_price": True}, "lower_price", "boolean"),
    ({"surprise": 1}, "surprise", "Extra inputs"),
])
def test_invalid_grid_configs_name_the_field(changes: dict[str, Any], field: str, reason: str) -> None:
    data = {**GRID, **changes}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(InvalidConfig) as caught:
        grid.parse_config(data)
    assert caught.value.field == field
    assert reason in caught.value.reason


@pytest.mark.parametrize(("changes", "field", "reason"), [
    ({"amount": "0"}, "amount", "greater than 0"),
    ({"amount": "150", "amount_type": "percent_of_balance"}, "amount", "at most 100"),
    ({"max_position": "50"}, "max_position", "below the entry amount"),
    ({"long_enabled": False}, "long_enabled", "can never trade"),
    ({"markets": []}, "markets", "at least 1"),
    ({"markets": [MARKET, MARKET]}, "markets.1.pair", "appears twice"),
    ({"max_open_positions": 0}, "max_open_positions", "greater than or equal to 1"),
    ({"reverse_on_opposite_entry": "sometimes"}, "reverse_on_opposite_entry", "boolean"),
])
def test_invalid_signal_bot_configs_name_the_field(changes: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(InvalidConfig) as caught:
        sb.parse_config({**SIGNAL, **changes})
    assert (caught.value.field, reason in caught.value.reason) == (field, True)


def test_json_numbers_are_read_through_their_text() -> None:
    cfg = grid.parse_config({**GRID, "quantity_per_grid": 0.1})
    assert cfg.quantity_per_grid == D("0.1")


# A grid bot as 3Commas' API returns it (GET /ver1/grid_bots/{id}), strings and all.
EXPORT: dict[str, Any] = {
    "id": 2338357, "account_id": 32833909, "account_name": "My Binance", "is_enabled": True,
    "grids_quantity": "81", "created_at": "2024-10-03T19:53:35.530Z", "updated_at": "2024-10-04T15:53:05.485Z",
    "strategy_type": "manual", "upper_stop_loss_enabled": True, "lower_stop_loss_enabled": False, "note": None,
    "editable": True, "lower_price": "0.016352", "lower_stop_loss_price": None, "lower_stop_loss_action": "stop_bot",
    "upper_price": "0.022503", "upper_stop_loss_price": "0.03", "upper_stop_loss_action": "stop_bot_and_close_position",
    "quantity_per_grid": "20.0", "leverage_type": "cross", "leverage_custom_value": "10.0", "name": "VET grid",
    "pair": "USDT_VET", "start_price": "0.022395",
    "grid_price_step": "1.00399920581210916146041542739112586575949572812639182",
    "current_profit": "2.03", "current_profit_usd": "2.03", "total_profits_count": "21", "bought_volume": "0.0",
    "sold_volume": "0.0", "profit_percentage": "0.127", "current_price": "0.022355", "max_active_buy_lines": "81",
    "max_active_sell_lines": "81", "order_currency_type": "quote", "profit_currency_type": "quote",
    "trailing_up_enabled": "true", "trailing_down_enabled": "true", "grid_type": "geometric",
    "investment_base_currency": "0.0", "investment_quote_currency": "1620.0",
}
VET = {"pair": "VET/USDT", "tick_size": "0.000001", "step_size": "0.1", "min_notional": "5"}


def test_a_3commas_grid_export_imports_and_explains_every_unmapped_field() -> None:
    cfg, notes = import_grid(EXPORT, market=VET)
    assert (cfg.bot_id, cfg.grids_quantity, cfg.grid_type) == ("g2338357", 81, grid.GridType.GEOMETRIC)
    assert (cfg.lower_price, cfg.upper_price, cfg.quantity_per_grid) == (D("0.016352"), D("0.022503"), D("20.0"))
    assert cfg.order_currency_type is grid.OrderCurrency.QUOTE and cfg.trailing_up_enabled
    assert cfg.upper_stop_loss_action is grid.StopAction.STOP_BOT_AND_SELL
    assert not cfg.trailing_down_enabled  # 3Commas' unbounded trailing down needs a stop price here
    mapped = {"pair", "grids_quantity", "lower_price", "upper_price", "quantity_per_grid", "grid_type",
              "order_currency_type", "trailing_up_enabled", "upper_stop_loss_enabled", "lower_stop_loss_enabled",
              "upper_stop_loss_price", "lower_stop_loss_price", "lower_stop_loss_action", "profit_currency_type"}
    explained = {note.split(":")[0] for note in notes}
    assert set(EXPORT) - mapped <= explained  # every other field is explained
    assert "trailing_down_enabled" in explained and "upper_stop_loss_action" in explained
    # 3Commas' grids_quantity counts lines, as ours does: 80 equal ratios, the same step
    ratio = (cfg.upper_price / cfg.lower_price) ** (D(1) / 80)
    assert abs(ratio - D(EXPORT["grid_price_step"])) < D("1e-12")


def test_the_dispatcher_detects_a_grid_and_reads_json_text() -> None:
    assert detect_kind(EXPORT) == "grid"
    cfg, notes = import_bot(json.dumps([EXPORT]), bot_id="vet1", markets=[MARKET, VET])
    assert isinstance(cfg, grid.Config) and cfg.market.tick_size == D("0.000001")
    assert isinstance(cfg, grid.Config) and cfg.bot_id == "vet1" and notes
    assert detect_kind({"base_order_volume": "10", "safety_order_volume": "20"}) == "dca"
    with pytest.raises(InvalidConfig) as caught:
        import_bot(b'{"hello": 1}')
    assert caught.value.field == "export"
    with pytest.raises(InvalidConfig):
        import_bot(b"not json")


def test_an_impossible_export_is_refused_with_the_field() -> None:
    with pytest.raises(InvalidConfig) as caught:
        import_grid({**EXPORT, "lower_price": "0.03"}, market=VET)
    assert caught.value.field == "lower_price"
    with pytest.raises(InvalidConfig) as caught:
        import_grid({**EXPORT, "pair": "VET"})
    assert caught.value.field == "pair"


def test_the_registry_maps_kinds_to_bot_packages() -> None:
    assert registry.bot_module("grid").step is grid.step and registry.bot_module("signal").step is sb.step
    assert {"grid", "signal"} <= set(registry.available())
    for kind, module in registry.available().items():
        assert kind == module.KIND
    with pytest.raises(InvalidConfig) as caught:
        registry.bot_module("martingale")
    assert caught.value.field == "kind"
    assert isinstance(registry.parse_config("grid", GRID), grid.Config)


def test_the_dispatcher_hands_a_dca_export_to_the_dca_importer() -> None:
    pytest.importorskip("sealbot.bots.threecommas_dca")
    export = {"id": 9876, "pairs": ["USDT_BTC"], "base_order_volume": "10", "safety_order_volume": "20",
              "take_profit": "1.5", "max_safety_orders": 5, "active_safety_orders_count": 1,
              "safety_order_step_percentage": "1", "martingale_volume_coefficient": "2",
              "martingale_step_coefficient": "1.5", "strategy_list": [{"strategy": "nonstop"}], "account_id": 1}
    cfg, notes = import_bot(json.dumps(export), markets=[{"pair": "BTC/USDT", "tick_size": "0.01",
                                                          "step_size": "0.00001"}])
    assert type(cfg).__name__ == "DcaConfig" and getattr(cfg, "bot_id", None) == "d9876"
    assert any(note.startswith("account_id") for note in notes)


def test_the_doc_examples_are_valid_configs() -> None:
    import re
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs"
    for name, module in (("bots-grid.md", grid), ("bots-signal.md", sb)):
        block = re.findall(r"```json\n(.*?)```", (docs / name).read_text(), re.S)[0]
        assert module.parse_config(json.loads(block)).bot_id
