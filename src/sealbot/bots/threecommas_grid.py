"""Import a grid bot exported from 3Commas' public API (``GET /ver1/grid_bots/{id}``).

Settings that mean the same thing map field for field; everything else is explained,
one line per field, so a user leaving 3Commas knows exactly what did not come along
and why. 3Commas sends booleans and numbers as strings ("true", "81"); both are read.
The export carries no exchange precision: pass the market's rules (``market``) as the
service copies them from the exchange, or the grid runs unrounded until it does.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from sealbot.bots.grid import Config, parse_config
from sealbot.domain import InvalidConfig, Pair

_COPIED: Final = ("upper_price", "lower_price", "grids_quantity", "quantity_per_grid",
                  "upper_stop_loss_price", "lower_stop_loss_price")
_FLAGS: Final = ("trailing_up_enabled", "trailing_down_enabled", "upper_stop_loss_enabled", "lower_stop_loss_enabled")
_STATISTICS: Final = frozenset({
    "created_at", "updated_at", "start_price", "grid_price_step", "current_profit", "current_profit_usd",
    "total_profits_count", "bought_volume", "sold_volume", "profit_percentage", "current_price",
    "investment_base_currency", "investment_quote_currency", "editable", "is_enabled", "grid_lines",
})
_REASONS: Final = {
    "id": "3Commas' bot id; sealbot gives the bot its own id (bot_id)",
    "account_id": "the 3Commas exchange account; choose the linked sealbot account when creating the bot",
    "account_name": "the 3Commas exchange account; choose the sealbot account when creating the bot",
    "name": "display name, not a trading setting; set it when creating the bot",
    "note": "free text, not a trading setting",
    "strategy_type": "3Commas AI/manual preset; the imported settings are used as they are",
    "leverage_type": "futures leverage is not supported; the grid trades spot",
    "leverage_custom_value": "futures leverage is not supported; the grid trades spot",
    "max_active_buy_lines": "3Commas keeps far lines virtual; sealbot places an order at every line",
    "max_active_sell_lines": "3Commas keeps far lines virtual; sealbot places an order at every line",
    "ignore_warnings": "an API flag, not a setting; sealbot refuses an impossible grid with the reason",
    "mode": "only long (spot) grids are supported",
    "expansion_up_enabled": "grid expansion is not supported; use trailing_up_enabled",
    "expansion_up_stop_price": "grid expansion is not supported; use trailing_up_enabled",
}


def import_grid(data: Mapping[str, Any], bot_id: str | None = None,
                market: Mapping[str, Any] | None = None) -> tuple[Config, list[str]]:
    """A grid ``Config`` from a 3Commas grid-bot export, and one explanation per field
    that was not mapped. Raises ``InvalidConfig`` (field and reason) when the mapped
    settings cannot work."""
    notes: list[str] = []
    out: dict[str, Any] = {}
    used: set[str] = set()
    pair = _pair(data)
    used.add("pair")
    out["bot_id"] = bot_id or _default_id(data)
    out["market"] = dict(market) if market is not None else {"pair": pair.symbol}
    if market is None:
        notes.append("market: the export has no tick size, step size or minimums; the service fills them "
                     "from the exchange (until then prices and amounts are not rounded)")
    elif Pair.parse(str(out["market"].get("pair", ""))) != pair:
        raise InvalidConfig("market.pair", f"does not match the export's pair {pair}")
    for name in _COPIED:
        if data.get(name) is not None:
            out[name] = _number(data[name], name)
        used.add(name)
    for name in _FLAGS:
        if name in data:
            out[name] = _flag(data[name], name)
            used.add(name)
    if data.get("grid_type") is not None:
        out["grid_type"] = str(data["grid_type"])
    used.add("grid_type")
    if data.get("order_currency_type") is not None:
        out["order_currency_type"] = str(data["order_currency_type"])
    used.add("order_currency_type")
    for side in ("upper", "lower"):
        used.add(f"{side}_stop_loss_action")
        action = data.get(f"{side}_stop_loss_action")
        if action is None:
            continue
        if action == "stop_bot_and_close_position":
            out[f"{side}_stop_loss_action"] = "stop_bot_and_sell"
            notes.append(f"{side}_stop_loss_action: stop_bot_and_close_position is a futures action; "
                         "mapped to stop_bot_and_sell (cancel, then sell the grid's coins at market)")
        else:
            out[f"{side}_stop_loss_action"] = str(action)
    for name in ("trailing_down_stop_price", "expansion_down_stop_price"):
        if data.get(name) is not None:
            out["trailing_down_stop_price"] = _number(data[name], name)
        used.add(name)
    if data.get("expansion_down_enabled") in (True, "true"):
        out["trailing_down_enabled"] = True
        notes.append("expansion_down_enabled: read as trailing_down_enabled (adds buy lines below the grid)")
    used.add("expansion_down_enabled")
    if out.get("trailing_down_enabled") and "trailing_down_stop_price" not in out:
        out["trailing_down_enabled"] = False
        notes.append("trailing_down_enabled: turned off: 3Commas trails down until the balance runs out, "
                     "sealbot needs trailing_down_stop_price to bound the funds; set it and enable again")
    profit_currency = data.get("profit_currency_type")
    used.add("profit_currency_type")
    if profit_currency not in (None, "quote"):
        notes.append("profit_currency_type: only quote profit is supported; the grid keeps profit in quote")
    for name in sorted(set(data) - used):
        if name in _STATISTICS:
            notes.append(f"{name}: a runtime figure of the 3Commas bot, not a setting")
        else:
            notes.append(f"{name}: {_REASONS.get(name, 'not a sealbot grid setting; ignored')}")
    return parse_config(out), notes


def _pair(data: Mapping[str, Any]) -> Pair:
    raw = data.get("pair")
    if not isinstance(raw, str):
        raise InvalidConfig("pair", "is required, as QUOTE_BASE (e.g. USDT_BTC)")
    try:
        return Pair.parse_quote_base(raw)
    except ValueError:
        raise InvalidConfig("pair", "must be QUOTE_BASE (e.g. USDT_BTC)") from None


def _default_id(data: Mapping[str, Any]) -> str:
    raw = str(data.get("id", ""))
    return f"g{raw}"[:12] if raw.isdigit() else "grid1"


def _number(value: Any, name: str) -> Decimal | int:
    if isinstance(value, bool):
        raise InvalidConfig(name, "must be a number, not a boolean")
    if isinstance(value, int):
        return value
    try:
        number = Decimal(str(value))  # floats through their shortest text, never their binary value
    except ArithmeticError:
        raise InvalidConfig(name, "is not a number") from None
    if not number.is_finite():
        raise InvalidConfig(name, "must be a finite number")
    return int(number) if name == "grids_quantity" and number == number.to_integral_value() else number


def _flag(value: Any, name: str) -> bool:
    if value is True or value is False:
        return bool(value)
    if value in ("true", "false"):
        return bool(value == "true")
    raise InvalidConfig(name, "must be true or false")
