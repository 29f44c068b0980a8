"""A stored state with fields its type does not have (written by another version, or
not this bot's) is refused, never loaded as a fresh state with the rest dropped: a DCA
bot that forgot its open deal this way would open a new one beside it. The engine then
sets such a bot aside with its reason (tests/engine/test_engine_unloadable_bot.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from sealbot.bots.registry import bot_module, parse_config
from sealbot.domain import Candle, CandleClosed, Pair

MARKET = {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.0001", "min_notional": "5"}


def opened_dca_state() -> dict[str, Any]:
    """A DCA state with one open deal, as the engine stores it."""
    module = bot_module("dca")
    config = parse_config("dca", {"bot_id": "7", "markets": [MARKET], "base_order_volume": "100", "take_profit": "1"})
    price = Decimal(20000)
    bar = Candle(Pair("BTC", "USDT"), "1m", datetime(2026, 1, 1, tzinfo=UTC), price, price, price, price, Decimal(1))
    state, _commands = module.step(config, module.initial_state(config), CandleClosed(bar))
    dumped: dict[str, Any] = module.dump_state(state)
    assert dumped["deals"], "the first candle opens a deal"
    return dumped


@pytest.mark.parametrize("kind", ["dca", "smart", "signal"])
def test_a_state_of_another_shape_is_refused_not_loaded_as_a_fresh_one(kind: str) -> None:
    with pytest.raises(ValueError, match="unknown fields"):
        bot_module(kind).load_state({"not": "this bot's state"})


def test_a_known_state_with_a_field_from_another_version_is_refused() -> None:
    stored = opened_dca_state()
    assert bot_module("dca").load_state(stored) is not None  # as stored: loads
    with pytest.raises(ValueError, match="unknown fields added_later"):
        bot_module("dca").load_state({**stored, "added_later": 1})


def test_a_signal_bot_state_of_the_right_shape_still_loads() -> None:
    module = bot_module("signal")
    state = module.initial_state(parse_config("signal", {"bot_id": "s1", "markets": [MARKET], "amount": "100"}))
    assert module.load_state(module.dump_state(state)) == state
