"""Backtests: run a bot's settings (any kind) over a candle file on the server, with
recorded signals if wanted, list and read the results (metrics, deals), fetch the HTML
report, delete. Runs are kept per user, within the instance's quota (the oldest go)."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import Field, computed_field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from sealbot.domain import AmountType, SignalAction
from sealbot.services import backtest_runs
from sealbot.services.auth import Principal
from sealbot.services.platform import Platform
from sealbot.web.deps import get_platform, scoped
from sealbot.web.schemas import Model

router = APIRouter(prefix="/api/v1/backtests", tags=["backtests"])
RunId = Path(pattern=r"^[0-9A-Za-z-]{1,40}$", description="a run id as listed")


class SignalIn(Model):
    """A recorded signal (e.g. a TradingView alert), delivered at the first candle close
    at or after ``at``."""

    at: datetime = Field(description="when it was sent (ISO 8601; UTC if no offset)")
    action: SignalAction
    pair: str | None = Field(default=None, max_length=40)
    amount: Decimal | None = Field(default=None, gt=0)
    amount_type: AmountType | None = None
    trigger_price: Decimal | None = Field(default=None, gt=0)
    signal_id: str | None = Field(default=None, max_length=100)


class BacktestIn(Model):
    name: str = Field(default="", max_length=120)
    kind: Literal["dca", "grid", "smart", "signal"]
    config: dict[str, Any] = Field(description="the bot's settings, as for POST /api/v1/bots")
    candles: str = Field(min_length=1, max_length=300, description="a name from GET /api/v1/backtests/candle-files")
    signals: list[SignalIn] | None = Field(default=None, max_length=backtest_runs.MAX_SIGNALS,
                                           description="recorded signals (what a signal bot trades on)")


class UsageOut(Model):
    """Your kept runs and what they take, against the instance's limits
    (``backtest_max_runs``, ``backtest_max_bytes``)."""

    runs: int
    bytes: int
    max_runs: int
    max_bytes: int


@pydantic_dataclass(frozen=True)
class BacktestOut(backtest_runs.RunSummary):
    """A kept run as the service summarizes it (its fields are ``RunSummary``'s, one
    source for both), plus where its HTML report is served."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def report_url(self) -> str:
        return f"/backtests/{self.id}/report"


def _out(run: backtest_runs.RunSummary) -> BacktestOut:
    return BacktestOut(**{f.name: getattr(run, f.name) for f in fields(run)})


@router.get("/candle-files", response_model=list[str])
def candle_files(who: Principal = Depends(scoped("bots:read")),
                 platform: Platform = Depends(get_platform)) -> list[str]:
    """The recorded candles a backtest can run on (bundled, and `<data_dir>/candles/`)."""
    return [f.name for f in backtest_runs.candle_files(platform)]


@router.get("/usage", response_model=UsageOut)
def usage(who: Principal = Depends(scoped("bots:read")), platform: Platform = Depends(get_platform)) -> UsageOut:
    """How many runs you keep and the bytes they take, with the limits."""
    return UsageOut(**asdict(backtest_runs.usage(platform, who.user_id)))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=BacktestOut)
async def run(body: BacktestIn, response: Response, who: Principal = Depends(scoped("bots:write")),
              platform: Platform = Depends(get_platform)) -> BacktestOut:
    """Run now and keep the result; bad settings or data are 422 naming the field. Past
    your quota your oldest runs are removed (their ids in the ``Sealbot-Evicted``
    header); a run larger than the byte limit on its own is refused (403)."""
    signals = None if body.signals is None else [s.model_dump(exclude_none=True) for s in body.signals]
    new = await run_in_threadpool(backtest_runs.run_backtest, platform, who.user_id, body.name, body.kind,
                                  body.config, body.candles, signals)
    if new.evicted:
        response.headers["Sealbot-Evicted"] = ",".join(new.evicted)
    return _out(new.run)


@router.get("", response_model=list[BacktestOut])
def runs(who: Principal = Depends(scoped("bots:read")),
         platform: Platform = Depends(get_platform)) -> list[BacktestOut]:
    """Your runs, newest first."""
    return [_out(r) for r in backtest_runs.list_runs(platform, who.user_id)]


@router.get("/{run_id}", response_model=BacktestOut)
def backtest(run_id: str = RunId, who: Principal = Depends(scoped("bots:read")),
             platform: Platform = Depends(get_platform)) -> BacktestOut:
    return _out(backtest_runs.get_run(platform, who.user_id, run_id))


@router.get("/{run_id}/result", response_model=dict[str, Any])
def result(run_id: str = RunId, who: Principal = Depends(scoped("bots:read")),
           platform: Platform = Depends(get_platform)) -> dict[str, Any]:
    """The full result as `sealbot backtest run --json` writes it: every deal and order,
    the equity curve and the metrics."""
    loaded: dict[str, Any] = json.loads(backtest_runs.result_json(platform, who.user_id, run_id))
    return loaded


@router.delete("/{run_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(run_id: str = RunId, who: Principal = Depends(scoped("bots:write")),
           platform: Platform = Depends(get_platform)) -> Response:
    """Remove one of your runs."""
    backtest_runs.delete_run(platform, who.user_id, run_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
