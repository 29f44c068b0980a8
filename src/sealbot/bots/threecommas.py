"""``sealbot bots import``: read a bot exported as JSON from 3Commas' public API and
turn it into a sealbot config, explaining every field that could not be mapped.

Detects the kind from the fields only a kind has (a grid has ``grids_quantity`` and
``upper_price``; a DCA bot ``base_order_volume``/``safety_order_volume``), then calls
``threecommas_dca.import_dca`` or ``threecommas_grid.import_grid``. Pure: text in,
config and explanations out.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from sealbot.domain import InvalidConfig, Pair

_GRID_KEYS = frozenset({"grids_quantity", "upper_price", "lower_price", "quantity_per_grid", "grid_type"})
_DCA_KEYS = frozenset({"base_order_volume", "safety_order_volume", "martingale_volume_coefficient",
                       "safety_order_step_percentage", "max_safety_orders", "take_profit"})


def load_export(raw: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    """The export as a dict; 3Commas' list endpoints wrap bots in a one-item list."""
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        data = json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise InvalidConfig("export", "is not valid JSON") from None
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, dict):
        raise InvalidConfig("export", "must be one bot as a JSON object")
    return data


def detect_kind(data: Mapping[str, Any]) -> str:
    """``grid`` or ``dca``, from the fields present."""
    keys = set(data)
    grid, dca = len(keys & _GRID_KEYS), len(keys & _DCA_KEYS)
    if grid == dca == 0:
        raise InvalidConfig("export", "is neither a 3Commas DCA bot nor a grid bot (no fields of either)")
    return "grid" if grid > dca else "dca"


def import_bot(raw: bytes | str | Mapping[str, Any], bot_id: str | None = None,
               markets: Sequence[Mapping[str, Any]] | None = None) -> tuple[BaseModel, list[str]]:
    """(config, explanations of every unmapped field) for a 3Commas export.

    ``bot_id`` names the new bot (default: derived from 3Commas' id); ``markets`` are
    the exchange's rules (``{pair, tick_size, step_size, min_amount, min_notional}``)
    for the bot's pairs, which the export does not carry."""
    data = load_export(raw)
    if detect_kind(data) == "grid":
        from sealbot.bots.threecommas_grid import import_grid

        return import_grid(data, bot_id=bot_id, market=_market_for(data, markets))
    module = importlib.import_module("sealbot.bots.threecommas_dca")
    result: tuple[BaseModel, list[str]] = module.import_dca(
        data, bot_id=bot_id, markets=list(markets) if markets is not None else None)
    return result


def _market_for(data: Mapping[str, Any], markets: Sequence[Mapping[str, Any]] | None) -> Mapping[str, Any] | None:
    """The grid's market among ``markets``: the one of its pair, else the only one."""
    if not markets:
        return None
    try:
        pair = Pair.parse_quote_base(str(data.get("pair", ""))).symbol
    except ValueError:
        return markets[0] if len(markets) == 1 else None
    for market in markets:
        try:
            if Pair.parse(str(market.get("pair", ""))).symbol == pair:
                return market
        except ValueError:
            continue
    return markets[0] if len(markets) == 1 else None
