"""A backtest as a page people want to look at, and as JSON machines want to read.

Charts are drawn by plotly (a maintained Python library: no hand-written JavaScript)
and the page works offline: by default plotly.js is inlined, so the report is one
self-contained file (plotly.js alone is 4.8 MB) that opens anywhere, including a
browser with no network; ``plotlyjs="directory"`` writes ``plotly.min.js`` once next
to the report instead (many reports in one folder), and ``plotlyjs="served"`` leaves a
marker where whoever serves the page inserts it (``with_plotlyjs``: the dashboard keeps
its reports so, about 0.3 MB each instead of 6 MB). TradingView's lightweight-charts
would be lighter but needs vendored JavaScript and hand-written chart code; plotly
gives candles, markers, linked zoom and hover from Python.

The page has: the metrics, one candle chart per pair with every fill marked (deal
entries, safety orders / further buys, exits), the equity curve and the drawdown
under it (zoom is linked across all of them), and the deal table. Long runs are drawn
on coarser candles (said on the chart) so the page stays fluid; markers keep their
exact times and prices. The equity and drawdown curves, one point per candle, are
sent as a start and a step when their times are evenly spaced (they nearly always are),
not as one timestamp per point.
"""

from __future__ import annotations

import html
import json
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from sealbot.backtest.data import resample
from sealbot.backtest.metrics import PairOutcome, Result, deal_to_dict
from sealbot.domain import Fill, Side, timeframe_seconds

PlotlyJs = Literal["inline", "directory", "served"]
PLOTLY_MARK = "/* sealbot: plotly.js goes here */"  # in the script tag that inlines it, see with_plotlyjs
_DISPLAY_TIMEFRAMES = ("1m", "5m", "15m", "1h", "4h", "1d", "1w")


def write_json(result: Result, path: str | Path) -> Path:
    """The JSON result (``Result.to_dict``): amounts as exact decimal text."""
    path = Path(path)
    path.write_text(json.dumps(result.to_dict(), indent=1))
    return path


def render_report(
    result: Result, *, title: str = "sealbot backtest", plotlyjs_src: str | None = None, max_candles: int = 5000,
    served: bool = False,
) -> str:
    """The report page as text. ``plotlyjs_src`` is the URL of plotly.min.js (e.g. the
    web app's static copy); None inlines it, or with ``served`` leaves ``PLOTLY_MARK``
    in its place for ``with_plotlyjs`` to fill when the page is served."""
    figure = build_figure(result, max_candles=max_candles)
    chart = figure.to_html(full_html=False, include_plotlyjs=plotlyjs_src if plotlyjs_src else True,
                           div_id="sealbot-chart", config={"displaylogo": False, "responsive": True})
    if served and not plotlyjs_src:
        chart = chart.replace(get_plotlyjs(), PLOTLY_MARK, 1)
    return _page(result, title, chart)


def with_plotlyjs(page: str) -> str:
    """A report written with ``plotlyjs="served"`` made self-contained again: the very
    page ``plotlyjs="inline"`` writes. Any other page is returned as it is."""
    return page.replace(PLOTLY_MARK, get_plotlyjs(), 1) if PLOTLY_MARK in page else page


def write_plotlyjs(directory: str | Path) -> Path:
    """Write plotly.min.js (the version plotly for Python bundles) into ``directory``."""
    path = Path(directory) / "plotly.min.js"
    path.write_text(get_plotlyjs())
    return path


def write_report(
    result: Result, path: str | Path, *, title: str = "sealbot backtest", plotlyjs: PlotlyJs = "inline",
    max_candles: int = 5000,
) -> Path:
    """Write the HTML report to ``path`` (and ``plotly.min.js`` beside it with
    ``plotlyjs="directory"``; with ``"served"``, none: see ``with_plotlyjs``)."""
    path = Path(path)
    src = None
    if plotlyjs == "directory":
        write_plotlyjs(path.parent)
        src = "plotly.min.js"
    path.write_text(render_report(result, title=title, plotlyjs_src=src, max_candles=max_candles,
                                  served=plotlyjs == "served"))
    return path


def _kind_of_fill(fill: Fill, entry_side: dict[tuple[str, int], Side]) -> str:
    """A deal's first fill is its entry; later fills on the same side add to it, the other
    side exits. Read from the deal, not from buy/sell: a short enters by selling."""
    key = (fill.pair.symbol, fill.client_id.deal)
    side = entry_side.get(key)
    if side is None:
        entry_side[key] = fill.side
        return "entry"
    return "safety" if fill.side is side else "exit"


_MARKERS = {
    "entry": dict(symbol="triangle-up", color="#1a9850", size=11),
    "safety": dict(symbol="circle", color="#2c7fb8", size=8),
    "exit": dict(symbol="triangle-down", color="#d73027", size=11),
}


def _display_frame(outcome: PairOutcome, max_candles: int) -> tuple[pd.DataFrame, str]:
    arrays = outcome.arrays
    frame = arrays.frame()
    timeframe = arrays.timeframe
    if len(frame) > max_candles:
        span = (arrays.open_ns[-1] - arrays.open_ns[0]) / 1e9
        for candidate in _DISPLAY_TIMEFRAMES:
            if timeframe_seconds(candidate) > timeframe_seconds(timeframe) and span / timeframe_seconds(
                    candidate) <= max_candles:
                timeframe = candidate
                break
        else:
            timeframe = _DISPLAY_TIMEFRAMES[-1]
        frame = resample(frame, timeframe)
    return frame, timeframe


def build_figure(result: Result, *, max_candles: int = 5000) -> go.Figure:
    """Candles per pair with fills, equity and drawdown, sharing one time axis."""
    outcomes = result.outcomes
    rows = len(outcomes) + 2
    heights = [0.55 / len(outcomes)] * len(outcomes) + [0.25, 0.2]
    titles = []
    frames = []
    for outcome in outcomes:
        frame, shown = _display_frame(outcome, max_candles)
        frames.append(frame)
        note = "" if shown == outcome.arrays.timeframe else f" (drawn as {shown} candles)"
        titles.append(f"{outcome.pair.symbol} {outcome.arrays.timeframe}{note}")
    titles += ["equity (quote, marked to market)", "drawdown (quote)"]
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.03, row_heights=heights,
                        subplot_titles=titles)
    entry_side: dict[tuple[str, int], Side] = {}
    kinds = [(_kind_of_fill(f, entry_side), f) for f in result.fills]
    for row, (outcome, frame) in enumerate(zip(outcomes, frames, strict=True), start=1):
        fig.add_trace(go.Candlestick(x=frame["open_time"], open=frame["open"], high=frame["high"], low=frame["low"],
                                     close=frame["close"], name=outcome.pair.symbol, showlegend=False), row=row, col=1)
        for kind, style in _MARKERS.items():
            chosen = [f for k, f in kinds if k == kind and f.pair == outcome.pair]
            if not chosen:
                continue
            fig.add_trace(go.Scatter(
                x=[f.at for f in chosen], y=[float(f.price) for f in chosen], mode="markers", name=kind,
                marker=dict(symbol=style["symbol"], color=style["color"], size=style["size"],
                            line=dict(width=1, color="#222")),
                text=[f"{f.client_id.text} {f.side.value} {f.amount} @ {f.price}" for f in chosen],
                hoverinfo="text+x", legendgroup=kind, showlegend=row == 1,
            ), row=row, col=1)
        fig.update_xaxes(rangeslider_visible=False, row=row, col=1)
    equity = result.equity
    fig.add_trace(go.Scatter(**_times(equity.index), y=equity.to_numpy(), name="equity",
                             line=dict(color="#3b528b")), row=rows - 1, col=1)
    drawdown = result.drawdown
    fig.add_trace(go.Scatter(**_times(drawdown.index), y=drawdown.to_numpy(), name="drawdown", fill="tozeroy",
                             line=dict(color="#d73027")), row=rows, col=1)
    fig.update_layout(height=380 * len(outcomes) + 420, margin=dict(l=50, r=20, t=40, b=30),
                      legend=dict(orientation="h", y=1.02, x=0), template="plotly_white")
    return fig


def _times(index: pd.Index) -> dict[str, Any]:
    """A trace's times: ``x0`` and ``dx`` (milliseconds, as plotly steps a date axis)
    when evenly spaced, else every one (``x``). A week of 1-minute equity is 10,080
    points: 0.4 MB of timestamps in the page, or two numbers."""
    if len(index) < 2:
        return {"x": index}
    steps = np.diff(index.asi8)
    if not (steps == steps[0]).all() or steps[0] <= 0:
        return {"x": index}
    return {"x0": index[0], "dx": int(steps[0]) / 1e6}


def _page(result: Result, title: str, chart: str) -> str:
    m = result.metrics
    metric_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(_fmt(getattr(m, k)))}</td></tr>"
                          for k in m.__slots__)
    columns = ["no", "pair", "status", "opened_at", "closed_at", "close_reason", "bought", "spent", "sold",
               "received", "fees_quote", "realized_profit"]
    deal_rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(d[c]))}</td>" for c in columns) + "</tr>"
        for d in (deal_to_dict(deal) for deal in result.deals)
    )
    head = "".join(f"<th>{c}</th>" for c in columns)
    pairs = ", ".join(p.symbol for p in result.pairs)
    # Why the figures are what they are: a bot that stopped (a base order below the
    # exchange minimum after rounding) gave a page of zeros with no reason on it.
    stopped = (f'<p id="stopped"><strong>The bot stopped:</strong> {html.escape(result.stopped)}</p>'
               if result.stopped else "")
    alert_rows = "".join(f"<tr><td>{html.escape(a.level.value)}</td><td>{html.escape(a.code)}</td>"
                         f"<td>{html.escape(a.message)}</td></tr>" for a in result.alerts)
    alerts = (f'<h2>Alerts</h2>\n<table id="alerts"><thead><tr><th>level</th><th>code</th><th>message</th></tr>'
              f"</thead><tbody>{alert_rows}</tbody></table>" if result.alerts else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85rem; }}
td, th {{ border: 1px solid #ddd; padding: 0.2rem 0.5rem; text-align: right; }}
th {{ background: #f5f5f5; }}
.metrics th {{ text-align: left; }}
.wrap {{ display: flex; gap: 2rem; flex-wrap: wrap; align-items: flex-start; }}
</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(pairs)} &middot; {html.escape(result.timeframe)} &middot; {html.escape(result.start.isoformat())}
 &rarr; {html.escape(result.end.isoformat())}</p>
{stopped}
<div class="wrap"><table class="metrics" id="metrics">{metric_rows}</table></div>
<div id="sealbot-report" data-fills="{len(result.fills)}" data-deals="{len(result.deals)}">{chart}</div>
<h2>Deals</h2>
<table id="deals"><thead><tr>{head}</tr></thead><tbody>{deal_rows}</tbody></table>
{alerts}
</body></html>
"""


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, timedelta):
        return str(value - timedelta(microseconds=value.microseconds))  # 2:04:08
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
