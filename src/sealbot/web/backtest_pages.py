"""The dashboard's backtest pages: the runs, a form per bot kind (``backtest_forms``),
one run's page, its report (served sandboxed), deleting a run.

Server-rendered like the rest of the dashboard (``pages``): ``/backtests?kind=grid``
shows the grid form, the form posts back with the session's CSRF token, a bad setting
re-renders the same form with what was typed and the API's "field: reason", the input
it names marked.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from sealbot.domain.errors import InvalidConfig, Refused
from sealbot.services import backtest_runs
from sealbot.services.auth import Principal
from sealbot.web import backtest_forms
from sealbot.web.deps import get_platform
from sealbot.web.pages import _form, _redirect, _render, _who

router = APIRouter()

# The report is generated HTML with plotly inlined (inline script and style), so it is
# served on its own, sandboxed: an opaque origin (no cookies, no API), scripts only
# inline, nothing fetched, framed only by our own pages.
REPORT_CSP = ("sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
              "img-src data: blob:; font-src data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'")


def _backtests(request: Request, who: Principal, kind: str, status_code: int = 200,
               posted: Any = None, **extra: Any) -> HTMLResponse:
    platform = get_platform(request)
    form = backtest_forms.form_for(kind)
    return _render(request, "backtests.html", who, status_code, runs=backtest_runs.list_runs(platform, who.user_id),
                   usage=backtest_runs.usage(platform, who.user_id), files=backtest_runs.candle_files(platform),
                   forms=backtest_forms.FORMS, form=form, values=backtest_forms.values(form, posted),
                   posted_name=None if posted is None else str(posted.get("name", "")),
                   posted_candles=None if posted is None else str(posted.get("candles", "")), **extra)


@router.get("/backtests", response_class=HTMLResponse)
def backtests_page(request: Request, kind: str = "dca") -> HTMLResponse:
    return _backtests(request, _who(request), kind if kind in backtest_forms.FORMS else "dca")


@router.post("/backtests", response_class=HTMLResponse)
async def backtest_run(request: Request) -> Response:
    """Run the form's settings over a candle file (in a worker thread: it takes seconds)."""
    who = _who(request)
    posted = await _form(request, who)
    kind = str(posted.get("kind", "dca"))
    if kind not in backtest_forms.FORMS:
        return _backtests(request, who, "dca", 422, error=f"kind: must be one of {', '.join(backtest_forms.FORMS)}")
    form = backtest_forms.form_for(kind)
    try:
        config = backtest_forms.config_from(form, posted)
        signals = backtest_forms.signals_from(str(posted.get("signals", ""))) if form.signals is not None else None
        new = await run_in_threadpool(backtest_runs.run_backtest, get_platform(request), who.user_id,
                                      str(posted.get("name", "")).strip()[:120], kind, config,
                                      str(posted.get("candles", "")), signals)
    except InvalidConfig as exc:
        return _backtests(request, who, kind, 422, posted, error=f"{exc.field}: {exc.reason}", error_field=exc.field)
    except Refused as exc:
        return _backtests(request, who, kind, 403, posted, error=exc.reason)
    return _redirect(f"/backtests/{new.run.id}" + (f"?evicted={len(new.evicted)}" if new.evicted else ""))


@router.get("/backtests/{run_id}", response_class=HTMLResponse)
def backtest_page(request: Request, run_id: str, evicted: int = 0) -> HTMLResponse:
    who = _who(request)
    platform = get_platform(request)
    notice = None
    if evicted > 0:
        usage = backtest_runs.usage(platform, who.user_id)
        notice = (f"Your {evicted} oldest backtest{'s were' if evicted > 1 else ' was'} removed to stay within "
                  f"the limit of {usage.max_runs} runs and {usage.max_bytes / 1e6:,.0f} MB.")
    return _render(request, "backtest.html", who, run=backtest_runs.get_run(platform, who.user_id, run_id),
                   notice=notice)


@router.get("/backtests/{run_id}/report", response_class=HTMLResponse)
def backtest_report(request: Request, run_id: str) -> HTMLResponse:
    who = _who(request)
    text = backtest_runs.report_html(get_platform(request), who.user_id, run_id)
    return HTMLResponse(text, headers={"Content-Security-Policy": REPORT_CSP, "X-Frame-Options": "SAMEORIGIN"})


@router.post("/backtests/{run_id}/delete")
async def backtest_delete(request: Request, run_id: str) -> Response:
    who = _who(request)
    await _form(request, who)
    backtest_runs.delete_run(get_platform(request), who.user_id, run_id)
    return _redirect("/backtests")
