"""Backtests run from the dashboard or the API, kept per user under the instance's data directory.

A run is a directory ``<data_dir>/backtests/<user id>/<run id>/`` holding the bot file
it ran (``bot.json``), the recorded signals it was given (``signals.csv``, if any), the
JSON result (``result.json``), the HTML report (``report.html``, kept without plotly.js,
which is inlined as the page is served: 0.4 MB a week of 1-minute candles instead of
6 MB) and ``meta.json`` (its name, when it ran and its summary, so a listing reads no
result). The directory is the owner scope: another user's run id is simply not found.
Candle files come from the package's bundled market data and from
``<data_dir>/candles/`` (where ``sealbot data download --output`` can put them).

Each user keeps at most ``backtest_max_runs`` runs taking at most ``backtest_max_bytes``
(settings): when a new run would pass either, the oldest runs are removed, and a run
that alone is larger than the byte limit is refused (``Refused("backtest_max_bytes")``).
"""

from __future__ import annotations

import csv
import json
import re
import secrets
import shutil
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sealbot
from sealbot.backtest.data import DataError
from sealbot.backtest.report import with_plotlyjs
from sealbot.backtest.runner import read_signals, run_backtest_file
from sealbot.domain.errors import InvalidConfig, NotFound, Refused
from sealbot.services.platform import Platform

_RUN_ID = re.compile(r"^[0-9]{8}T[0-9]{6}-[0-9a-f]{6}$")
_CANDLE_SUFFIXES = (".csv", ".csv.gz", ".feather", ".parquet")
BUNDLED = Path(sealbot.__file__).parent / "data"
SIGNAL_COLUMNS = ("at", "action", "pair", "amount", "amount_type", "trigger_price", "signal_id")
MAX_SIGNALS = 10_000
_QUOTA = threading.Lock()  # one quota pass at a time (a pass only lists and removes folders)


@dataclass(frozen=True, slots=True)
class CandleFile:
    name: str  # what the form shows and posts back ("bundled/BTC-...csv.gz", "candles/x.csv")
    path: Path


@dataclass(frozen=True, slots=True)
class RunSummary:
    id: str
    name: str
    created_at: datetime
    kind: str
    candles: str
    pairs: list[str]
    timeframe: str
    start: str
    end: str
    metrics: dict[str, Any]
    deals: int


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run just kept, and the older runs removed to keep the owner within the quota."""

    run: RunSummary
    evicted: list[str]


@dataclass(frozen=True, slots=True)
class Usage:
    """What the owner's kept runs take, against the instance's limits."""

    runs: int
    bytes: int
    max_runs: int
    max_bytes: int


def _root(platform: Platform, owner_id: int) -> Path:
    return platform.settings.data_dir / "backtests" / str(owner_id)


def candle_files(platform: Platform) -> list[CandleFile]:
    """The candle files a dashboard backtest may read, bundled first."""
    out: list[CandleFile] = []
    for prefix, folder in (("bundled", BUNDLED), ("candles", platform.settings.data_dir / "candles")):
        if folder.is_dir():
            out += [CandleFile(f"{prefix}/{p.name}", p) for p in sorted(folder.iterdir())
                    if p.is_file() and p.name.endswith(_CANDLE_SUFFIXES) and "-trades-" not in p.name]
    return out


def _write_signals(path: Path, signals: Sequence[Mapping[str, Any]]) -> None:
    """Recorded signals as the CSV ``runner.read_signals`` reads; a bad row is
    ``InvalidConfig("signals", "row N: ...")``."""
    if len(signals) > MAX_SIGNALS:
        raise InvalidConfig("signals", f"at most {MAX_SIGNALS} signals")
    for row, signal in enumerate(signals):
        unknown = sorted(set(signal) - set(SIGNAL_COLUMNS))
        if unknown:
            raise InvalidConfig("signals", f"row {row}: unknown column {unknown[0]!r} "
                                           f"(columns: {', '.join(SIGNAL_COLUMNS)})")
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=SIGNAL_COLUMNS)
        writer.writeheader()
        for signal in signals:
            writer.writerow({k: "" if v is None else str(v) for k, v in signal.items()})
    try:
        read_signals(path)
    except DataError as exc:
        raise InvalidConfig("signals", str(exc).removeprefix(f"{path.name}: ")) from None


def run_backtest(platform: Platform, owner_id: int, name: str, kind: str, config: Mapping[str, Any],
                 candles: str, signals: Sequence[Mapping[str, Any]] | None = None) -> NewRun:
    """Run ``config`` (a ``kind`` bot's settings, as in a bot file) over one candle file,
    with ``signals`` (rows of ``SIGNAL_COLUMNS``) as recorded signals, and keep the
    result for the owner, removing their oldest runs past the quota. Bad settings or
    data raise ``InvalidConfig`` naming the field; nothing is kept then."""
    files = {f.name: f.path for f in candle_files(platform)}
    if candles not in files:
        raise InvalidConfig("candles", "choose one of the listed candle files")
    now = datetime.now(UTC)
    run_id = f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    folder = _root(platform, owner_id) / run_id
    folder.mkdir(parents=True)
    try:
        (folder / "bot.json").write_text(json.dumps({"kind": kind, **config}, indent=1))
        signals_path = None
        if signals is not None:
            signals_path = folder / "signals.csv"
            _write_signals(signals_path, signals)
        try:
            result = run_backtest_file(folder / "bot.json", [str(files[candles])], report_path=folder / "report.html",
                                       json_path=folder / "result.json", signals_path=signals_path,
                                       plotlyjs="served")
        except DataError as exc:
            raise InvalidConfig("candles", str(exc)) from None
        summary = RunSummary(run_id, name or f"{kind} backtest", now, kind, candles,
                             [p.symbol for p in result.pairs], result.timeframe, result.start.isoformat(),
                             result.end.isoformat(), result.metrics.to_dict(), len(result.deals))
        meta = {"name": summary.name, "created_at": now.isoformat(), "candles": candles, "kind": kind,
                "pairs": summary.pairs, "timeframe": summary.timeframe, "start": summary.start, "end": summary.end,
                "metrics": summary.metrics, "deals": summary.deals}
        evicted = _keep_within_quota(platform, owner_id, run_id, json.dumps(meta))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    # the summary built here, not read back: a concurrent run's quota pass (this user's
    # newer runs) may already have removed this one, which its own answer then reports
    return NewRun(summary, evicted)


def _size(folder: Path) -> int:
    """The bytes a run's files take; 0 once another process's quota pass removed it."""
    try:
        return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    except FileNotFoundError:
        return 0


def _keep_within_quota(platform: Platform, owner_id: int, new_id: str, meta: str) -> list[str]:
    """Remove the owner's oldest runs until the newest ones, ``new_id`` first, fit
    ``backtest_max_runs`` and ``backtest_max_bytes``; refuse ``new_id`` if it alone does not.

    ``meta.json`` (what makes a run listed) is written inside the pass: a finished run
    that was visible before its own pass could be removed by a concurrent run's pass and
    then still count itself as kept in its own, leaving the user below the quota."""
    settings = platform.settings
    max_runs, max_bytes = settings.backtest_max_runs, int(settings.backtest_max_bytes)
    root = _root(platform, owner_id)
    with _QUOTA:
        used = _size(root / new_id)
        if used > max_bytes:
            raise Refused("backtest_max_bytes", f"this run takes {used:,} bytes, more than the {max_bytes:,} "
                                                "a user may keep")
        (root / new_id / "meta.json").write_text(meta)
        older = [r for r in list_runs(platform, owner_id) if r.id != new_id]  # newest first
        kept = 1
        evicted: list[str] = []
        for run in older:
            size = _size(root / run.id)
            if evicted or kept + 1 > max_runs or used + size > max_bytes:
                evicted.append(run.id)
                shutil.rmtree(root / run.id, ignore_errors=True)
            else:
                kept, used = kept + 1, used + size
    return evicted


def _summary(folder: Path) -> RunSummary:
    meta = json.loads((folder / "meta.json").read_text())
    if "metrics" not in meta:  # kept before summaries went into meta.json
        result = json.loads((folder / "result.json").read_text())
        meta |= {"kind": json.loads((folder / "bot.json").read_text()).get("kind", ""),
                 **{k: result[k] for k in ("pairs", "timeframe", "start", "end", "metrics")},
                 "deals": len(result["deals"])}
    return RunSummary(folder.name, str(meta["name"]), datetime.fromisoformat(meta["created_at"]), str(meta["kind"]),
                      str(meta["candles"]), list(meta["pairs"]), str(meta["timeframe"]), str(meta["start"]),
                      str(meta["end"]), dict(meta["metrics"]), int(meta["deals"]))


def list_runs(platform: Platform, owner_id: int) -> list[RunSummary]:
    """The owner's finished runs, newest first."""
    root = _root(platform, owner_id)
    if not root.is_dir():
        return []
    runs = []
    for path in root.iterdir():
        if _RUN_ID.match(path.name) and (path / "meta.json").is_file():
            try:
                runs.append(_summary(path))
            except FileNotFoundError:  # removed by a quota pass (here or in another process) while read
                continue
    return sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)


def usage(platform: Platform, owner_id: int) -> Usage:
    """How many runs the owner keeps and the bytes they take, with the limits."""
    root = _root(platform, owner_id)
    runs = list_runs(platform, owner_id)
    settings = platform.settings
    return Usage(len(runs), sum(_size(root / r.id) for r in runs), settings.backtest_max_runs,
                 int(settings.backtest_max_bytes))


def _folder(platform: Platform, owner_id: int, run_id: str) -> Path:
    folder = _root(platform, owner_id) / run_id
    if not _RUN_ID.match(run_id) or not (folder / "meta.json").is_file():
        raise NotFound("backtest", run_id)
    return folder


def get_run(platform: Platform, owner_id: int, run_id: str) -> RunSummary:
    return _summary(_folder(platform, owner_id, run_id))


def delete_run(platform: Platform, owner_id: int, run_id: str) -> None:
    """Remove one of the owner's runs (another user's is not found)."""
    shutil.rmtree(_folder(platform, owner_id, run_id))


def report_html(platform: Platform, owner_id: int, run_id: str) -> str:
    """The run's self-contained HTML report (plotly.js inlined as it is served)."""
    return with_plotlyjs((_folder(platform, owner_id, run_id) / "report.html").read_text())


def result_json(platform: Platform, owner_id: int, run_id: str) -> str:
    """The run's full result as ``sealbot backtest run --json`` writes it."""
    return (_folder(platform, owner_id, run_id) / "result.json").read_text()
