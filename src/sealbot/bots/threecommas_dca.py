"""Import a DCA bot exported from 3Commas' public API (``GET /ver1/bots/{id}/show``).

sealbot's DCA settings carry 3Commas' names, so most fields copy across unchanged; the
rest are translated (``pairs``, ``strategy_list``, ``start_order_type``,
``profit_currency``, ``stop_loss_timeout_enabled``) or explained: every field that is
not used gets one line saying why, so a user moving off the platform knows exactly
what did not come along. Pure: dict in, config and explanations out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from sealbot.bots.common.validation import parse_config
from sealbot.bots.dca.config import DcaConfig
from sealbot.domain import InvalidConfig, Pair

_COPIED: Final = (
    "base_order_volume",
    "safety_order_volume",
    "safety_order_step_percentage",
    "max_safety_orders",
    "active_safety_orders_count",
    "martingale_volume_coefficient",
    "martingale_step_coefficient",
    "take_profit",
    "take_profit_type",
    "trailing_enabled",
    "trailing_deviation",
    "stop_loss_percentage",
    "stop_loss_type",
    "tsl_enabled",
    "sl_to_breakeven_enabled",
    "cooldown",
    "min_price",
    "max_price",
    "max_active_deals",
    "strategy",
)
_INTEGERS: Final = frozenset({"max_safety_orders", "active_safety_orders_count", "cooldown", "max_active_deals"})
_FLAGS: Final = frozenset({"trailing_enabled", "tsl_enabled", "sl_to_breakeven_enabled"})
_HANDLED: Final = frozenset(
    {
        "pairs",
        "strategy_list",
        "start_order_type",
        "profit_currency",
        "take_profit_steps",
        "stop_loss_timeout_enabled",
        "stop_loss_timeout_in_seconds",
        "custom_safety_steps",
        "base_order_volume_type",
        "safety_order_volume_type",
    }
)
_STATISTICS: Final = frozenset(
    {
        "id", "account_id", "is_enabled", "created_at", "updated_at", "active_deals_count", "deletable?",
        "finished_deals_profit_usd", "finished_deals_count", "active_deals_usd_profit", "active_deals",
        "active_deals_btc_profit", "reinvested_volume_usd", "deals_counter", "easy_form_supported",
        "account_name", "name", "type",
    }
)  # fmt: skip
_REASONS: Final = {
    "close_strategy_list": "indicator-based closing is not supported; deals close by take profit, stop loss, "
    "signal or by hand",
    "safety_strategy_list": "indicator conditions on safety orders are not supported; safety orders rest on the book",
    "deal_start_delay_seconds": "a delay before each start is not supported; use cooldown",
    "disable_after_deals_count": "stopping after N deals is not supported; stop the bot by hand",
    "allowed_deals_on_same_pair": "a multi-pair bot runs one deal per pair",
    "close_deals_timeout": "a deal timeout is not supported for DCA bots (smart trades have timeout_seconds)",
    "url_secret": "signal secrets are issued by sealbot, not copied",
    "btc_price_limit": "a BTC price condition is not supported",
    "min_volume_btc_24h": "a 24 h volume filter is not supported",
    "leverage_type": "futures leverage is not supported; the bot trades spot",
    "leverage_custom_value": "futures leverage is not supported; the bot trades spot",
    "reinvesting_percentage": "reinvesting profit is not supported; volumes stay as configured",
    "risk_reduction_percentage": "risk reduction is not supported",
    "min_price_percentage": "relative price bounds are not supported; use min_price / max_price",
    "max_price_percentage": "relative price bounds are not supported; use min_price / max_price",
    "secret": "signal secrets are issued by sealbot, not copied",
}


def import_dca(
    data: Mapping[str, Any], bot_id: str | None = None, markets: Sequence[Mapping[str, Any]] | None = None
) -> tuple[DcaConfig, list[str]]:
    """A ``DcaConfig`` from a 3Commas DCA-bot export and one explanation per field not
    mapped. ``markets`` are the exchange's rules per pair (the export has none).
    Raises ``InvalidConfig`` (field and reason) when the mapped settings cannot work."""
    notes: list[str] = []
    out: dict[str, Any] = {"bot_id": bot_id or _default_id(data), "name": str(data.get("name") or "")}
    pairs = _pairs(data)
    if markets is None:
        out["markets"] = [{"pair": p.symbol} for p in pairs]
        notes.append(
            "markets: the export has no tick size, step size or minimums; the service fills them from the "
            "exchange (until then prices and amounts are not rounded)"
        )
    else:
        given = {Pair.parse(str(m.get("pair", ""))) for m in markets}
        if given != set(pairs):
            raise InvalidConfig("markets", "must describe exactly the export's pairs")
        out["markets"] = [dict(m) for m in markets]
    for name in _COPIED:
        value = data.get(name)
        if value is None:
            continue
        if name in _FLAGS:
            out[name] = value in (True, "true", "1", 1)
        elif name in _INTEGERS:
            out[name] = int(_number(value, name))
        elif name in ("take_profit_type", "stop_loss_type", "strategy"):
            out[name] = str(value)
        elif name in ("min_price", "max_price") and _number(value, name) == 0:
            continue  # 3Commas writes 0 for "no bound"
        else:
            out[name] = _number(value, name)
    _map_start(data, out, notes)
    _map_volumes(data, notes)
    if data.get("start_order_type") is not None:
        out["base_order_type"] = str(data["start_order_type"])
    currency = data.get("profit_currency")
    if currency is not None:
        out["profit_currency"] = "base" if str(currency).startswith("base") else "quote"
    steps = data.get("take_profit_steps") or []
    if steps:
        out["take_profit_steps"] = [
            {"amount_percentage": _number(s["amount_percentage"], "take_profit_steps"),
             "profit_percentage": _number(s["profit_percentage"], "take_profit_steps")}
            for s in steps
        ]  # fmt: skip
    if data.get("stop_loss_timeout_enabled") in (True, "true") and data.get("stop_loss_timeout_in_seconds"):
        out["stop_loss_timeout_in_seconds"] = int(_number(data["stop_loss_timeout_in_seconds"], "stop_loss_timeout"))
    if data.get("custom_safety_steps"):
        out["custom_safety_steps"] = list(data["custom_safety_steps"])
    if not out.get("stop_loss_percentage"):
        out.pop("stop_loss_type", None)
    for name in sorted(set(data) - set(_COPIED) - _HANDLED):
        if name in _STATISTICS:
            notes.append(f"{name}: a runtime figure or label of the 3Commas bot, not a trading setting")
        else:
            notes.append(f"{name}: {_REASONS.get(name, 'not a sealbot DCA setting; ignored')}")
    return parse_config(DcaConfig, out), notes


def _map_start(data: Mapping[str, Any], out: dict[str, Any], notes: list[str]) -> None:
    """3Commas' ``strategy_list`` -> one start condition (nonstop, signal, or RSI)."""
    strategies = data.get("strategy_list") or []
    kinds = [str(s.get("strategy", "")) for s in strategies if isinstance(s, Mapping)]
    if not kinds or "nonstop" in kinds:
        out["start_condition"] = "immediately"
    elif any(k in ("manual", "tv_custom_signal", "api", "trading_view", "webhook") for k in kinds):
        out["start_condition"] = "signal"
    elif "rsi" in kinds:
        options = next(s for s in strategies if s.get("strategy") == "rsi").get("options") or {}
        out["start_condition"] = "rsi"
        out["rsi"] = {"timeframe": str(options.get("time", "1h")), "value": _number(options.get("points", 30), "rsi")}
        if options.get("period") is not None:
            out["rsi"]["period"] = int(options["period"])
    else:
        out["start_condition"] = "signal"
        notes.append(f"strategy_list: {', '.join(kinds)} cannot be evaluated here; deals start on a signal instead")
        return
    extra = [k for k in kinds if k not in ("nonstop", "rsi", "manual", "tv_custom_signal", "api")]
    if len(kinds) > 1 or extra:
        notes.append(f"strategy_list: only one start condition is used ({out['start_condition']}); "
                     f"the others ({', '.join(kinds)}) were not combined")  # fmt: skip


def _map_volumes(data: Mapping[str, Any], notes: list[str]) -> None:
    for name in ("base_order_volume_type", "safety_order_volume_type"):
        value = data.get(name)
        if value not in (None, "quote_currency"):
            raise InvalidConfig(name, f"{value} volumes are not supported; re-enter the volume in quote currency")


def _pairs(data: Mapping[str, Any]) -> list[Pair]:
    raw = data.get("pairs")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise InvalidConfig("pairs", 'is required, as a list of QUOTE_BASE (e.g. ["USDT_BTC"])')
    try:
        return [Pair.parse_quote_base(str(p)) for p in raw]
    except ValueError:
        raise InvalidConfig("pairs", "must be QUOTE_BASE (e.g. USDT_BTC)") from None


def _default_id(data: Mapping[str, Any]) -> str:
    raw = str(data.get("id", ""))
    return f"d{raw}"[:12] if raw.isdigit() else "dca1"


def _number(value: Any, name: str) -> Decimal:
    if isinstance(value, bool):
        raise InvalidConfig(name, "must be a number, not a boolean")
    try:
        number = Decimal(str(value))  # floats through their shortest text, never their binary value
    except ArithmeticError:
        raise InvalidConfig(name, "is not a number") from None
    if not number.is_finite():
        raise InvalidConfig(name, "must be a finite number")
    return number
