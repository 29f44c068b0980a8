"""File-in, report-out entry points for the CLI (``sealbot backtest``) and services.

A bot file is JSON or TOML: the bot's config as the dashboard and the API take it, plus
``"kind"`` (``dca``, ``grid``, ...). Data is one candle file per pair, given as
``PAIR=path`` (or just ``path`` when the bot trades one pair). Everything else is an
option of ``simulate.run``.
"""

from __future__ import annotations

import importlib
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from sealbot.backtest.data import DataError, ValidationReport, clean, load_candles, resample
from sealbot.backtest.fills import FeeCurrency, LimitFill
from sealbot.backtest.indicators import events_for
from sealbot.backtest.metrics import Result
from sealbot.backtest.report import PlotlyJs, write_json, write_report
from sealbot.backtest.simulate import config_rules, run
from sealbot.backtest.sweep import (
    Progress,
    SweepResult,
    Uniform,
    check_names,
    check_objective,
    grid_space,
    random_space,
    sweep,
)
from sealbot.bots.registry import bot_module, parse_config
from sealbot.domain import (
    AmountType,
    InvalidConfig,
    MarketRules,
    Pair,
    SignalAction,
    SignalReceived,
    timeframe_seconds,
)


@dataclass(frozen=True, slots=True)
class Loaded:
    """A bot file and its data, ready to simulate; ``reports`` say what the data held."""

    kind: str
    config: Any
    candles: dict[Pair, pd.DataFrame]
    reports: dict[Pair, ValidationReport]


def read_bot_file(path: str | Path) -> tuple[str, dict[str, Any]]:
    """(kind, config data) from a JSON or TOML bot file."""
    path = Path(path)
    form = "TOML" if path.suffix == ".toml" else "JSON"
    try:
        text = path.read_text()
        data = tomllib.loads(text) if form == "TOML" else json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidConfig(path.name, f"not valid {form}: {exc}") from None
    if not isinstance(data, dict) or "kind" not in data:
        raise InvalidConfig("kind", f"{path.name} must say which bot it configures (\"kind\": \"dca\")")
    data = dict(data)
    data.setdefault("bot_id", "bt")  # order ids need one; a backtest has no database bot to name it
    return str(data.pop("kind")), data


def _pairs_of(config: Any) -> list[Pair]:
    rules = config_rules(config)
    if isinstance(rules, Mapping):
        return sorted(rules)
    return [rules.pair] if isinstance(rules, MarketRules) else []


def parse_data_args(items: Sequence[str], pairs: Sequence[Pair]) -> dict[Pair, Path]:
    """``["BTC/USDT=btc.csv.gz", ...]``, or one bare path when the bot has one pair.

    The files must cover exactly the bot's pairs (when the config names them): a file
    for a pair the bot does not trade would be ignored, and a traded pair without one
    would never fill, so a backtest of either would report a quiet, meaningless zero."""
    out: dict[Pair, Path] = {}
    for item in items:
        name, sep, path = item.rpartition("=")
        if sep:
            try:
                pair = Pair.parse(name)
            except ValueError as exc:
                raise InvalidConfig("data", f"{item!r}: {exc}") from None
            out[pair] = Path(path)
        elif len(pairs) == 1 and len(items) == 1:
            out[pairs[0]] = Path(item)
        else:
            raise InvalidConfig("data", f"{item!r}: say which pair it holds, as PAIR=path")
    if pairs:
        traded = ", ".join(p.symbol for p in pairs)
        for pair in out:
            if pair not in pairs:
                raise InvalidConfig("data", f"{pair.symbol}: the bot does not trade this pair (it trades {traded})")
        for pair in pairs:
            if pair not in out:
                raise InvalidConfig("data", f"{pair.symbol}: the bot trades this pair but no candle file is given "
                                            f"for it (PAIR=FILE)")
    return out


def load(
    bot_file: str | Path,
    data: Sequence[str],
    *,
    timeframe: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    strict_data: bool = False,
) -> Loaded:
    """Read the bot file and its candles: validated (``strict_data`` refuses any gap or
    bad row), cleaned of duplicates and disorder, cut to [start, end), resampled to
    ``timeframe`` when it is coarser than the files."""
    if timeframe is not None:
        try:
            timeframe_seconds(timeframe)
        except ValueError as exc:
            raise InvalidConfig("timeframe", str(exc).removeprefix("timeframe: ")) from None
    kind, raw = read_bot_file(bot_file)
    config = parse_config(kind, raw)
    files = parse_data_args(data, _pairs_of(config))
    quotes = sorted({pair.quote for pair in files})
    if len(quotes) > 1:
        # P&L, equity, drawdown and funds are sums over the pairs: USDT plus BTC is no figure
        raise InvalidConfig("markets", f"the pairs quote in {' and '.join(quotes)}; a backtest adds up its pairs' "
                                       f"P&L, equity and funds in one quote currency, so they must share one "
                                       f"(backtest each quote currency's pairs as a bot file of its own)")
    candles: dict[Pair, pd.DataFrame] = {}
    reports: dict[Pair, ValidationReport] = {}
    for pair, path in files.items():
        try:
            frame, report = load_candles(path, strict=strict_data, repair=True)
        except OSError as exc:
            raise DataError(f"data: {path}: cannot read it ({exc.strerror or exc})") from None
        if start is not None:
            frame = frame[frame["open_time"] >= pd.Timestamp(start)]
        if end is not None:
            frame = frame[frame["open_time"] < pd.Timestamp(end)]
        if frame.empty:
            raise DataError(f"{path.name}: no candle in the chosen time range")
        if timeframe is not None and timeframe != report.timeframe:
            if timeframe_seconds(timeframe) < timeframe_seconds(report.timeframe):
                raise DataError(f"{path.name}: holds {report.timeframe} candles, cannot make finer {timeframe}")
            frame = resample(frame, timeframe)
        candles[pair] = clean(frame).reset_index(drop=True)
        reports[pair] = report
    return Loaded(kind, config, candles, reports)


def _timeframe(loaded: Loaded, timeframe: str | None) -> str:
    """The timeframe every pair's candles have: the one asked for (each file was resampled
    to it), else the files' own, read from the whole file (so a range of one candle still
    has one). Files of different timeframes are refused, naming ``timeframe``: the first
    file's used to be forced on every pair (5m candles closing a minute after they
    opened), and walked each at its own, a 5m candle's close would reach the bot before
    the 1m candles inside it."""
    if timeframe is not None:
        return timeframe
    found = sorted({report.timeframe for report in loaded.reports.values()}, key=timeframe_seconds)
    if len(found) > 1:
        raise InvalidConfig("timeframe", f"the candle files hold {' and '.join(found)} candles: give a timeframe "
                                         f"({found[-1]} or coarser) to run every pair on the same candles")
    return found[0]


def read_signals(path: str | Path) -> list[SignalReceived]:
    """Recorded signals (e.g. TradingView alerts) as events, from a CSV with columns
    ``at`` (ISO time, UTC), ``action`` (``start_deal``, ``close_at_market_price``,
    ``enter_long``, ...) and optionally ``pair``, ``amount``, ``amount_type``,
    ``trigger_price``, ``signal_id`` (default: ``sig<row>``)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"at", "action"} - set(frame.columns)
    if missing:
        raise DataError(f"{Path(path).name}: signals need columns {', '.join(sorted(missing))}")
    out = []
    for row, record in enumerate(frame.to_dict("records")):
        try:
            at = pd.Timestamp(record["at"])
            at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
            out.append(SignalReceived(
                signal_id=record.get("signal_id") or f"sig{row}",
                action=SignalAction(record["action"]),
                at=at.to_pydatetime(),
                pair=Pair.parse(record["pair"]) if record.get("pair") else None,
                amount=Decimal(record["amount"]) if record.get("amount") else None,
                amount_type=AmountType(record["amount_type"]) if record.get("amount_type") else None,
                trigger_price=Decimal(record["trigger_price"]) if record.get("trigger_price") else None,
            ))
        except (ValueError, ArithmeticError) as exc:
            raise DataError(f"{Path(path).name}: row {row}: {exc}") from None
    return out


def run_backtest_file(
    bot_file: str | Path,
    data: Sequence[str],
    *,
    report_path: str | Path | None = None,
    signals_path: str | Path | None = None,
    json_path: str | Path | None = None,
    timeframe: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    slippage: Decimal = Decimal(0),
    fee_currency: FeeCurrency = FeeCurrency.RECEIVED,
    limit_fill: LimitFill = "through",
    initial_capital: Decimal | None = None,
    strict_data: bool = False,
    balances: Mapping[str, Decimal] | None = None,
    plotlyjs: PlotlyJs = "inline",
) -> Result:
    """``sealbot backtest BOT_FILE --data PAIR=FILE ... [--report out.html] [--json out.json]
    [--signals signals.csv] [--balance USDT=1000 ...]``. Indicator events the config needs
    (RSI) are computed; ``balances`` models the account (see ``simulate.run``);
    ``plotlyjs`` says how the report carries plotly.js (``report.write_report``). An
    output path whose folder does not exist is refused before the run, not after it."""
    for option, target in (("report", report_path), ("json", json_path)):
        if target is not None and not Path(target).parent.is_dir():
            raise InvalidConfig(option, f"{Path(target).parent} is not an existing directory")
    loaded = load(bot_file, data, timeframe=timeframe, start=start, end=end, strict_data=strict_data)
    frames = loaded.candles
    tf = _timeframe(loaded, timeframe)
    events: list[Any] | None = None
    if signals_path is not None:
        events = [*events_for(loaded.config, frames), *read_signals(signals_path)]
    result = run(bot_module(loaded.kind), loaded.config, frames, slippage=slippage, fee_currency=fee_currency,
                 limit_fill=limit_fill, timeframe=tf, initial_capital=initial_capital, events=events,
                 balances=balances)
    try:
        if report_path is not None:
            write_report(result, report_path, title=f"sealbot {loaded.kind} backtest: {Path(bot_file).name}",
                         plotlyjs=plotlyjs)
        if json_path is not None:
            write_json(result, json_path)
    except OSError as exc:
        raise InvalidConfig(str(exc.filename or report_path or json_path),
                            f"cannot write it ({exc.strerror or exc})") from None
    return result


def read_space(path: str | Path) -> dict[str, Any]:
    """A sweep space file (JSON): ``{"take_profit": ["0.5", "1"], "safety_order_step_percentage":
    {"low": "0.5", "high": "2", "step": "0.25"}}`` (a list is a choice, an object a range).
    A file that is not such an object is refused, naming the parameter at fault."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidConfig("space", f"{path.name} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict) or not raw:
        raise InvalidConfig("space", f"{path.name} must be a JSON object of parameter names")
    space: dict[str, Any] = {}
    for name, spec in raw.items():
        if isinstance(spec, dict):
            space[name] = _range(name, spec)
        elif isinstance(spec, list) and spec:
            space[name] = list(spec)
        else:
            raise InvalidConfig(f"space.{name}", "give a non-empty list of values or {low, high, step}")
    return space


def _range(name: str, spec: Mapping[str, Any]) -> Uniform:
    try:
        low, high, step = (Decimal(str(spec[k])) for k in ("low", "high", "step"))
    except KeyError as exc:
        raise InvalidConfig(f"space.{name}", f"a range needs low, high and step; {exc} is missing") from None
    except ArithmeticError:
        raise InvalidConfig(f"space.{name}", "low, high and step must be numbers") from None
    if not all(v.is_finite() for v in (low, high, step)) or step <= 0 or high < low:
        raise InvalidConfig(f"space.{name}", "needs finite numbers with low <= high and step > 0")
    return Uniform(low, high, step)


def run_sweep_file(
    bot_file: str | Path,
    data: Sequence[str],
    space: Mapping[str, Any],
    *,
    samples: int | None = None,
    seed: int = 0,
    objective: str = "pnl",
    workers: int | None = None,
    progress: Progress | None = None,
    timeframe: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> SweepResult:
    """``sealbot backtest sweep BOT_FILE --data ... --space space.json [--samples N --seed S]``:
    every combination of ``space`` (lists only), or ``samples`` seeded random draws.
    Refused before any run: ``samples`` below 1, an ``objective`` that is no number of
    ``Metrics``, and a space name that is no setting of the bot (every row would fail)."""
    if samples is not None and samples < 1:
        raise InvalidConfig("samples", f"must be 1 or more, not {samples}")
    check_objective(objective)
    loaded = load(bot_file, data, timeframe=timeframe, start=start, end=end)
    check_names(loaded.config, space)
    if samples is None:
        if any(isinstance(v, Uniform) for v in space.values()):
            raise InvalidConfig("space", "ranges need --samples (random search)")
        variants = grid_space(space)
    else:
        variants = random_space(space, samples, seed)
    kind = importlib.import_module(f"sealbot.bots.{loaded.kind}")  # a module: workers re-import it by name
    return sweep(kind, loaded.config, loaded.candles, variants, objective=objective, workers=workers,
                 progress=progress, timeframe=_timeframe(loaded, timeframe))
