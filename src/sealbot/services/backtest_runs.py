"""Backtests run from the dashboard, kept per user under the instance's data directory.

A run is a directory ``<data_dir>/backtests/<user id>/<run id>/`` holding the bot file
it ran (``bot.json``), the JSON result (``result.json``), the HTML report
(``report.html``, from ``backtest.report``) and ``meta.json`` (its name and when it
ran). The directory is the owner scope: another user's run id is simply not found.
Candle files come from the package's bundled market data and from
``<data_dir>/candles/`` (where ``sealbot data download --output`` can put them).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sealbot
from sealbot.backtest.data import DataError
from sealbot.backtest.runner import run_backtest_file
from sealbot.domain.errors import InvalidConfig, NotFound
from sealbot.services.platform import Platform

_RUN_ID = re.compile(r"^[0-9]{8}T[0-9]{6}-[0-9a-f]{6}$")
_CANDLE_SUFFIXES = (".csv", ".csv.gz", ".feather", ".parquet")
BUNDLED = Path(sealbot.__file__).parent / "data"


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


def run_backtest(platform: Platform, owner_id: int, name: str, kind: str, config: dict[str, Any],
                 candles: str) -> RunSummary:
    """Run ``config`` (a ``kind`` bot's settings, as in a bot file) over one candle file
    and keep the result for the owner. Bad settings or data raise ``InvalidConfig``
    naming the field; nothing is kept then."""
    files = {f.name: f.path for f in candle_files(platform)}
    if candles not in files:
        raise InvalidConfig("candles", "choose one of the listed candle files")
    now = datetime.now(UTC)
    run_id = f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    folder = _root(platform, owner_id) / run_id
    folder.mkdir(parents=True)
    try:
        (folder / "bot.json").write_text(json.dumps({"kind": kind, **config}, indent=1))
        try:
            run_backtest_file(folder / "bot.json", [str(files[candles])], report_path=folder / "report.html",
                              json_path=folder / "result.json")
        except DataError as exc:
            raise InvalidConfig("candles", str(exc)) from None
        (folder / "meta.json").write_text(json.dumps({"name": name or f"{kind} backtest",
                                                      "created_at": now.isoformat(), "candles": candles}))
    except BaseException:
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()
        raise
    return get_run(platform, owner_id, run_id)


def _summary(folder: Path) -> RunSummary:
    meta = json.loads((folder / "meta.json").read_text())
    result = json.loads((folder / "result.json").read_text())
    kind = str(json.loads((folder / "bot.json").read_text()).get("kind", ""))
    return RunSummary(folder.name, str(meta["name"]), datetime.fromisoformat(meta["created_at"]), kind,
                      str(meta["candles"]), list(result["pairs"]), str(result["timeframe"]), str(result["start"]),
                      str(result["end"]), dict(result["metrics"]), len(result["deals"]))


def list_runs(platform: Platform, owner_id: int) -> list[RunSummary]:
    """The owner's finished runs, newest first."""
    root = _root(platform, owner_id)
    if not root.is_dir():
        return []
    runs = [_summary(p) for p in root.iterdir() if _RUN_ID.match(p.name) and (p / "meta.json").is_file()]
    return sorted(runs, key=lambda r: r.created_at, reverse=True)


def _folder(platform: Platform, owner_id: int, run_id: str) -> Path:
    folder = _root(platform, owner_id) / run_id
    if not _RUN_ID.match(run_id) or not (folder / "meta.json").is_file():
        raise NotFound("backtest", run_id)
    return folder


def get_run(platform: Platform, owner_id: int, run_id: str) -> RunSummary:
    return _summary(_folder(platform, owner_id, run_id))


def report_html(platform: Platform, owner_id: int, run_id: str) -> str:
    """The run's self-contained HTML report (plotly inlined)."""
    return (_folder(platform, owner_id, run_id) / "report.html").read_text()


def result_json(platform: Platform, owner_id: int, run_id: str) -> str:
    """The run's full result as ``sealbot backtest run --json`` writes it."""
    return (_folder(platform, owner_id, run_id) / "result.json").read_text()
