"""The dashboard's backtest forms: one per bot kind, each input named by the config
field it sets.

An input's name is that field's dotted path in the bot's config (``markets.0.pair``,
``take_profit_steps.0.profit_percentage``), the very path an ``InvalidConfig`` names: so
the form reports a bad value with the API's own "field: reason", and the page can mark
the input it means. The form posts text; the bot's config schema (pydantic, lax)
parses numbers and choices exactly as it does for a JSON body, so the form adds no
rule of its own. Settings a form does not offer take the config's defaults, or the
``fixed`` values a form states.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from sealbot.domain.errors import InvalidConfig
from sealbot.services.backtest_runs import MAX_SIGNALS, SIGNAL_COLUMNS


@dataclass(frozen=True, slots=True)
class Input:
    """One form input: the config field it sets, and how it is shown."""

    path: str  # dotted config path, also the input's name
    label: str
    default: str = ""
    choices: tuple[tuple[str, str], ...] = ()  # (value, label): a select
    checkbox: bool = False
    hint: str = ""


@dataclass(frozen=True, slots=True)
class KindForm:
    kind: str
    title: str
    inputs: tuple[Input, ...]
    fixed: Mapping[str, str] = field(default_factory=dict)  # settings sent as they are
    signals: str | None = None  # the recorded-signals box's default text; None: no box
    note: str = ""


def _market(prefix: str) -> tuple[Input, ...]:
    return (
        Input(f"{prefix}.pair", "Pair (the file's market)", "BTC/USDT"),
        Input(f"{prefix}.tick_size", "Price tick", "0.01"),
        Input(f"{prefix}.step_size", "Amount step", "0.00001"),
        Input(f"{prefix}.min_notional", "Min order value (quote)", "5"),
    )


FEES = (
    Input("fees.maker", "Maker fee (fraction)", "0.001", hint="0.001 = 0.1 %"),
    Input("fees.taker", "Taker fee (fraction)", "0.001"),
)
LONG_SHORT = (("long", "long"), ("short", "short"))

SIGNALS_EXAMPLE = """at,action
2022-01-01T06:00:00Z,enter_long
2022-01-02T06:00:00Z,exit_long
2022-01-03T12:00:00Z,enter_long
2022-01-05T12:00:00Z,exit_long
"""

FORMS: dict[str, KindForm] = {form.kind: form for form in (
    KindForm("dca", "DCA bot", (
        *_market("markets.0"),
        Input("strategy", "Direction", "long", LONG_SHORT),
        Input("base_order_volume", "Base order (quote)", "100"),
        Input("safety_order_volume", "Safety order (quote)", "100"),
        Input("max_safety_orders", "Max safety orders", "3"),
        Input("active_safety_orders_count", "Active safety orders", "1"),
        Input("safety_order_step_percentage", "Safety order step %", "1"),
        Input("martingale_volume_coefficient", "Safety volume scale", "1"),
        Input("martingale_step_coefficient", "Safety step scale", "1"),
        Input("take_profit", "Take profit %", "1"),
        Input("stop_loss_percentage", "Stop loss % (0: none)", "0"),
        Input("cooldown", "Cooldown between deals (s)", "0"),
        *FEES,
    ), fixed={"base_order_type": "market"}),
    KindForm("grid", "Grid bot", (
        *_market("market"),
        Input("lower_price", "Lower price", "45000"),
        Input("upper_price", "Upper price", "48500"),
        Input("grids_quantity", "Grid levels", "15"),
        Input("grid_type", "Spacing", "arithmetic", (("arithmetic", "arithmetic (equal price steps)"),
                                                     ("geometric", "geometric (equal % steps)"))),
        Input("investment", "Investment (quote)", "1000"),
        Input("lower_stop_loss_enabled", "Stop below the range", checkbox=True),
        Input("lower_stop_loss_price", "Lower stop price"),
        *FEES,
    ), fixed={"order_currency_type": "quote"}),
    KindForm("smart", "Smart trade", (
        *_market("market"),
        Input("direction", "Direction", "long", LONG_SHORT),
        Input("volume", "Volume (quote)", "100"),
        Input("entry_type", "Entry", "market", (("market", "at market, on the first candle"),
                                                ("limit", "limit at the entry price"),
                                                ("conditional", "at market once the entry price is reached"),
                                                ("trailing", "trailing from the entry price"))),
        Input("entry_price", "Entry price", hint="for limit, conditional and trailing entries"),
        Input("take_profit_steps.0.profit_percentage", "Take profit %", "1"),
        Input("trailing_enabled", "Trailing take profit", checkbox=True),
        Input("trailing_deviation", "Trailing deviation %", "0"),
        Input("stop_loss_percentage", "Stop loss % (0: none)", "2"),
        Input("sl_to_breakeven_enabled", "Move the stop to breakeven", checkbox=True),
        *FEES,
    ), fixed={"take_profit_steps.0.amount_percentage": "100"},
        note="A smart trade is one position: it enters once, then exits by its take profit or stop loss."),
    KindForm("signal", "Signal bot", (
        *_market("markets.0"),
        Input("amount", "Amount per signal", "0.002"),
        Input("amount_type", "Amount in", "base",
              (("base", "base"), ("quote", "quote (needs each signal's trigger_price)"))),
        Input("long_enabled", "Trade long", "on", checkbox=True),
        Input("short_enabled", "Trade short", checkbox=True),
        Input("reverse_on_opposite_entry", "Reverse on an opposite entry (close, then enter)", checkbox=True),
        Input("max_signal_age_seconds", "Max signal age (s)", "300"),
        *FEES,
    ), signals=SIGNALS_EXAMPLE,
        note="The bot trades on the recorded signals below (e.g. your TradingView alerts), each "
             "delivered at the first candle close at or after its time."),
)}


def form_for(kind: str) -> KindForm:
    if kind not in FORMS:
        raise InvalidConfig("kind", f"must be one of {', '.join(FORMS)}")
    return FORMS[kind]


def values(form: KindForm, posted: Mapping[str, Any] | None) -> dict[str, str]:
    """What each input shows: the posted value (after an error), else its default."""
    if posted is None:
        shown = {i.path: i.default for i in form.inputs}
        if form.signals is not None:
            shown["signals"] = form.signals
        return shown
    shown = {i.path: str(posted.get(i.path, "")) for i in form.inputs}
    shown["signals"] = str(posted.get("signals", ""))
    return shown


def config_from(form: KindForm, posted: Mapping[str, Any]) -> dict[str, Any]:
    """The config the form describes: each filled input at its path (a checkbox is
    true when ticked), then the form's fixed values; empty inputs are left out."""
    flat: dict[str, Any] = {}
    for item in form.inputs:
        if item.checkbox:
            flat[item.path] = posted.get(item.path) == "on"
        else:
            text = str(posted.get(item.path, "")).strip()
            if text:
                flat[item.path] = text
    return nest({**flat, **form.fixed})


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"markets.0.pair": "BTC/USDT"}`` -> ``{"markets": [{"pair": "BTC/USDT"}]}``
    (a numeric part is a list index; indexes of one list come in order from 0)."""
    root: dict[str, Any] = {}
    for path, value in flat.items():
        parts = path.split(".")
        node: Any = root
        for part, after in pairwise(parts):
            child: Any = [] if after.isdigit() else {}
            if isinstance(node, list):
                index = int(part)
                if index == len(node):
                    node.append(child)
                node = node[index]
            else:
                node = node.setdefault(part, child)
        last = parts[-1]
        if isinstance(node, list):
            node.append(value)
        else:
            node[last] = value
    return root


def signals_from(text: str) -> list[dict[str, str]]:
    """The recorded-signals box: CSV with a header row naming ``SIGNAL_COLUMNS``
    (``at`` and ``action`` at least). Empty: no signals."""
    if not text.strip():
        return []
    reader = csv.DictReader(io.StringIO(text.strip()), skipinitialspace=True)
    header = [name.strip() for name in reader.fieldnames or []]
    unknown = [name for name in header if name not in SIGNAL_COLUMNS]
    if unknown or not {"at", "action"} <= set(header):
        raise InvalidConfig("signals", f"the first line names the columns: at, action and optionally "
                                       f"{', '.join(SIGNAL_COLUMNS[2:])}")
    rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None and (v or "").strip()}
            for row in reader]
    if len(rows) > MAX_SIGNALS:
        raise InvalidConfig("signals", f"at most {MAX_SIGNALS} signals")
    return rows
