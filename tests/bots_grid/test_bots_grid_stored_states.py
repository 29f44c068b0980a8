"""Grid and signal bot states stored by the dataclass code (``stored_states.json``,
dumped at 1d97d5e, before these states became ``msgspec`` structs) still load, and
dump back to the very same JSON: the persisted format did not change, so a state an
engine saved before the upgrade resumes after it.

The stored states cover each shape a state takes: a grid new, running, funding its
upper intervals by market, trailing (a retired interval, a line below the original
bottom), re-sending lost orders, cancelling, closing (a lost closing sell too) and
stopped; signal positions filling their entry, shorts, two at once, an exit working
(one lost), an add-funds order open, a reversal's pending entry with and without its
own amount."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sealbot.bots import grid, signal
from sealbot.domain import Deal, SignalReceived

STORED: dict[str, dict[str, Any]] = json.loads(Path(__file__).with_name("stored_states.json").read_text())
CASES = [(kind, name) for kind, states in STORED.items() for name in states]


@pytest.mark.parametrize(("kind", "name"), CASES)
def test_a_stored_state_loads_and_dumps_back_unchanged(kind: str, name: str) -> None:
    module = grid if kind == "grid" else signal
    data = STORED[kind][name]
    state = module.load_state(json.loads(json.dumps(data)))
    assert module.dump_state(state) == data
    assert module.load_state(module.dump_state(state)) == state


@pytest.mark.parametrize("name", list(STORED["grid"]))
def test_a_stored_grid_state_loads_typed(name: str) -> None:
    state = grid.load_state(STORED["grid"][name])
    assert isinstance(state, grid.State) and isinstance(state.phase, grid.Phase)
    assert state.deal is None or isinstance(state.deal, Deal)
    for index, slot in state.slots.items():
        assert isinstance(slot, grid.Slot) and slot.index == index
        assert all(isinstance(v, Decimal) for v in (slot.amount, slot.filled, slot.held, slot.cost, slot.proceeds))
    for order in (state.opening, state.closing):
        assert order is None or all(isinstance(v, Decimal) for v in (order.amount, order.filled, order.quote))


@pytest.mark.parametrize("name", list(STORED["signal"]))
def test_a_stored_signal_state_loads_typed(name: str) -> None:
    state = signal.load_state(STORED["signal"][name])
    assert isinstance(state, signal.State)
    assert all(isinstance(b, signal.Balance) and isinstance(b.free, Decimal) for b in state.balances)
    for position in state.positions:
        assert isinstance(position, signal.Position) and isinstance(position.deal, Deal)
        assert isinstance(position.held, Decimal) and isinstance(position.entry_amount, Decimal)
        pending = position.entry_after_close
        assert pending is None or isinstance(pending, SignalReceived)
        assert pending is None or pending.trigger_price is None or isinstance(pending.trigger_price, Decimal)


def test_the_stored_states_cover_the_shapes_named() -> None:
    """The file holds what the docstring says (a regenerated file that lost a shape
    would silently stop guarding it)."""
    grids, signals = STORED["grid"], STORED["signal"]
    assert grids["new"]["phase"] == "new" and grids["stopped"]["phase"] == "stopped"
    assert grids["opening"]["opening"] is not None and grids["closing_lost"]["closing"]["lost"] > 0
    assert grids["retired"]["retired"] and any(s["index"] < 0 for s in grids["neg_slot"]["slots"])
    assert any(s["lost"] for s in grids["lost"]["slots"]) and any(s["canceling"] for s in grids["canceling"]["slots"])
    assert any(p["entry_after_close"]["amount"] for p in signals["eac_amount"]["positions"] if p["entry_after_close"])
    assert any(p["exit_lost"] for p in signals["exit_lost"]["positions"])
    assert any(p["add_open"] for p in signals["add_open"]["positions"])
    assert len(signals["two_positions"]["positions"]) >= 2
