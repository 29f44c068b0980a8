"""Every trade of an account since a time, paged the way each exchange requires.

One request answers one page, and each exchange bounds a request in time as well:

* Binance ``GET /api/v3/myTrades``: at most 1,000 trades, oldest first; ``fromId``
  returns the trades with id >= fromId (no time bound) and cannot be combined with
  ``startTime``/``endTime``; ``endTime - startTime`` may not exceed 24 hours (-1127);
  with no parameter the *most recent* trades come back. What ``startTime`` alone returns
  is not documented, so it is never sent: a time query is always an explicit window of
  at most 24 hours.
* KuCoin ``GET /api/v1/fills``: at most 500 fills a page (``pageSize``, default 50),
  newest first, pages by ``currentPage``; ``endAt - startAt`` may not exceed 7 days,
  ``startAt`` alone means ``[startAt, startAt + 7 days]`` and no time at all the last day.

ccxt answers one page per call and does not page these itself (its ``paginate`` option
pages by time only, and would again ask Binance for ``startTime`` alone), so the walk
is written here; each page is still fetched through ccxt (``fetch_page``), which builds
and signs the request. Trade ids are only compared, never invented: the walk stops where
the exchange says there is nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Row = dict[str, Any]
# fetch_page(since_ms, params) -> one page of ccxt trade dicts (one request to the exchange)
FetchPage = Callable[[int | None, dict[str, Any]], Awaitable[list[Row]]]

DAY_MS = 24 * 3600 * 1000
WEEK_MS = 7 * DAY_MS
# A KuCoin window that reaches this far past the host's clock is the last one needed
# (the exchange's clock may run a little ahead of ours).
CLOCK_AHEAD_MS = 60_000
# The most requests one call makes: 50 pages are 50,000 Binance trades (1,000 weight)
# or 25,000 KuCoin fills. Beyond it the call stops and says what it left out.
MAX_PAGES = 50


class PageBudgetSpent(Exception):
    """The walk reached ``MAX_PAGES`` requests (caught here; never leaves this module)."""


@dataclass
class TradeWalk:
    """The trades a walk collected, the requests it made, and whether it stopped early."""

    rows: list[Row] = field(default_factory=list)
    requests: int = 0
    truncated: str | None = None  # what was left out, when the page bound was hit


class _Pager:
    def __init__(self, fetch: FetchPage, max_pages: int | None) -> None:
        self.fetch, self.requests = fetch, 0
        self.max_pages = MAX_PAGES if max_pages is None else max_pages

    async def page(self, since_ms: int | None, params: dict[str, Any]) -> list[Row]:
        if self.requests >= self.max_pages:
            raise PageBudgetSpent
        self.requests += 1
        return await self.fetch(since_ms, params)


def _id(row: Row) -> int:
    return int(str(row.get("id")))


def _ms(row: Row) -> int:
    return int(row.get("timestamp") or 0)


async def binance_trades(fetch: FetchPage, since_ms: int | None, limit: int = 1000,
                         max_pages: int | None = None) -> TradeWalk:
    """Binance: the newest page first — when it is not full, or reaches back before
    ``since_ms``, it holds every trade since then (one request, the usual case). Otherwise
    find the first trade since ``since_ms`` with 24-hour windows, oldest first, then page
    forward by ``fromId`` (last id + 1) up to the newest page already in hand.

    Binance trade ids grow with time within a symbol, which is what makes an id walk
    equal to a time walk."""
    pager = _Pager(fetch, max_pages)
    newest = sorted(await pager.page(None, {}), key=_id)
    walk = TradeWalk(rows=list(newest))
    if since_ms is None or len(newest) < limit or _ms(newest[0]) < since_ms:
        walk.requests = pager.requests
        return walk
    floor_id, floor_ms = _id(newest[0]), _ms(newest[0])
    older: list[Row] = []
    try:
        page: list[Row] = []
        start = since_ms
        while start <= floor_ms:  # the window holding floor_ms holds newest[0]: this ends
            page = await pager.page(start, {"endTime": min(start + DAY_MS - 1, floor_ms)})
            if page:
                break
            start += DAY_MS
        older += page
        while len(page) >= limit:
            next_id = max(_id(r) for r in page) + 1
            if next_id >= floor_id:
                break
            page = await pager.page(None, {"fromId": next_id})
            older += page
            if any(_id(r) >= floor_id for r in page):
                break
    except PageBudgetSpent:
        last = max((_id(r) for r in older), default=None)
        walk.truncated = (f"trades after id {last} and before id {floor_id}" if last is not None
                          else f"trades since {since_ms} before id {floor_id}")
    walk.rows = [r for r in older if _id(r) < floor_id] + newest
    walk.requests = pager.requests
    return walk


async def kucoin_trades(fetch: FetchPage, since_ms: int | None, now_ms: int, limit: int = 500,
                        max_pages: int | None = None) -> TradeWalk:
    """KuCoin: 7-day windows from ``since_ms`` (the last one given ``startAt`` only, so the
    exchange's own clock ends it), each read page by page until a page is short.

    Pages are newest first: a fill that lands while paging pushes the others down one
    place, so the next page repeats a fill (removed by id) rather than skipping one."""
    pager = _Pager(fetch, max_pages)
    walk = TradeWalk()
    if since_ms is None:
        walk.rows = await pager.page(None, {"pageSize": limit})
        walk.requests = pager.requests
        return walk
    start, number = since_ms, 1
    try:
        while True:
            last_window = start + WEEK_MS > now_ms + CLOCK_AHEAD_MS
            params: dict[str, Any] = {"pageSize": limit}
            if not last_window:
                params["endAt"] = start + WEEK_MS - 1
            number = 1
            while True:
                page = await pager.page(start, {**params, "currentPage": number})
                walk.rows += page
                if len(page) < limit:
                    break
                number += 1
            if last_window:
                break
            start += WEEK_MS
    except PageBudgetSpent:
        walk.truncated = f"fills from {start} on, past page {number} of that window"
    walk.requests = pager.requests
    return walk
