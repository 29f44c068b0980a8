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
# or 25,000 KuCoin fills. Beyond it the call stops and says where a later call goes on
# (``TradeWalk.resume``), so a backlog is read over several bounded calls, never skipped.
MAX_PAGES = 50


class PageBudgetSpent(Exception):
    """The walk reached ``MAX_PAGES`` requests (caught here; never leaves this module)."""


@dataclass(frozen=True, slots=True)
class ResumeAt:
    """Where a walk cut short by the page bound goes on: every trade the walk's order puts
    before this point has been read, none after it.

    * Binance, ``from_id`` set: every trade since ``since`` with an id below ``from_id``
      has been read; the next call pages on by ``fromId=from_id``.
    * Binance, ``from_id`` None: no trade lies in ``[since, from_ms)`` (24-hour windows
      found none); the next call searches on from ``from_ms``.
    * KuCoin: every fill before ``from_ms`` and pages ``1..page-1`` (newest first) of the
      7-day window starting at ``from_ms`` have been read; the next call reads that window
      from ``page`` on, then the later windows. A closed window's pages do not move. In the
      open (last) one a fill landing between two calls goes to page 1, already read, and
      pushes the rest down (the next call may read one again, never skip one): so
      ``top_ms``, the newest fill's time on the page 1 read, says to read the fills after
      that time once the window's pages are done (a fill that landed later carries a later
      time; one the exchange listed late under an older time is what the order manager's
      ``FILL_LOOKBACK`` is for). Reading from ``top_ms`` itself would read the fills of
      that millisecond twice, and a call could never get past thousands of them."""

    from_ms: int
    from_id: int | None = None
    page: int = 1
    top_ms: int | None = None

    def __post_init__(self) -> None:
        if self.page < 1:
            raise ValueError(f"page: must be at least 1, not {self.page}")

    def to_dict(self) -> dict[str, int | None]:
        return {"from_ms": self.from_ms, "from_id": self.from_id, "page": self.page, "top_ms": self.top_ms}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResumeAt:
        try:
            from_id, top_ms = data.get("from_id"), data.get("top_ms")
            return cls(int(data["from_ms"]), None if from_id is None else int(from_id), int(data.get("page", 1)),
                       None if top_ms is None else int(top_ms))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"resume cursor: {exc}") from None


@dataclass
class TradeWalk:
    """The trades a walk collected, the requests it made, and whether it stopped early.

    ``rows`` holds every trade from the start of the walk up to ``resume`` (all of them
    when ``resume`` is None): a walk continued from ``resume`` reads exactly the rest, so
    the calls of a drain together read each trade once. ``beyond`` holds trades a cut-short
    walk read past the point it stopped (Binance's newest page): a later call from
    ``resume`` reads them again; a caller that wants what is at hand (the watchdog's look
    at recent trades) may take them, one that keeps the cursor must not."""

    rows: list[Row] = field(default_factory=list)
    requests: int = 0
    truncated: str | None = None  # what was left out, when the page bound was hit
    resume: ResumeAt | None = None  # where a later call goes on; None: complete
    beyond: list[Row] = field(default_factory=list)


class _Pager:
    def __init__(self, fetch: FetchPage, max_pages: int | None) -> None:
        self.fetch, self.requests = fetch, 0
        self.max_pages = MAX_PAGES if max_pages is None else max_pages
        if self.max_pages < 1:
            raise ValueError(f"max_pages: must be at least 1, not {self.max_pages}")

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
                         max_pages: int | None = None, resume: ResumeAt | None = None) -> TradeWalk:
    """Binance: the newest page first — when it is not full, or reaches back before
    ``since_ms``, it holds every trade since then (one request, the usual case). Otherwise
    find the first trade since ``since_ms`` with 24-hour windows, oldest first, then page
    forward by ``fromId`` (last id + 1) up to the newest page already in hand.

    Cut short by the page bound, the walk returns the trades from ``since_ms`` up to the
    last one it read in id order (``rows``, no hole in them) and where to go on
    (``resume``); the newest page, read first, lies past the unread trades and is left in
    ``beyond``. Called again with that ``resume``, the walk pages on by ``fromId`` from it
    until a short page (the present), or, when no trade was found yet, searches on from
    the window where it stopped, as a first walk does.

    Binance trade ids grow with time within a symbol, which is what makes an id walk
    equal to a time walk."""
    pager = _Pager(fetch, max_pages)
    if pager.max_pages < 2:
        raise ValueError(f"max_pages: a Binance walk needs at least 2 requests (the newest page and one "
                         f"more) to get anywhere, not {pager.max_pages}")
    walk = TradeWalk()
    if resume is not None and resume.from_id is not None:
        rows: list[Row] = []
        try:
            await _forward(pager, rows, resume.from_id, limit)
        except PageBudgetSpent:
            walk.resume, walk.truncated = _stopped(rows, resume, "the present")
        walk.rows, walk.requests = sorted(rows, key=_id), pager.requests
        return walk
    start = resume.from_ms if resume is not None else since_ms
    newest = sorted(await pager.page(None, {}), key=_id)
    if start is None or len(newest) < limit or _ms(newest[0]) < start:
        walk.rows, walk.requests = newest, pager.requests
        return walk
    floor_id, floor_ms = _id(newest[0]), _ms(newest[0])
    older: list[Row] = []
    try:
        page: list[Row] = []
        while start <= floor_ms:  # the window holding floor_ms holds newest[0]: this ends
            page = await pager.page(start, {"endTime": min(start + DAY_MS - 1, floor_ms)})
            if page:
                break
            start += DAY_MS
        older += page
        if older:
            # on by id up to the newest page: a window's page may be short (a quiet day)
            # while the days after it hold more trades
            await _forward(pager, older, max(_id(r) for r in older) + 1, limit, stop_id=floor_id)
    except PageBudgetSpent:
        walk.resume, walk.truncated = _stopped(older, ResumeAt(start), f"id {floor_id}")
        walk.rows, walk.beyond, walk.requests = sorted(older, key=_id), newest, pager.requests
        return walk
    walk.rows = sorted((r for r in older if _id(r) < floor_id), key=_id) + newest
    walk.requests = pager.requests
    return walk


async def _forward(pager: _Pager, rows: list[Row], next_id: int, limit: int, stop_id: int | None = None) -> None:
    """Binance ``fromId`` pages from ``next_id`` on, added to ``rows`` as they come, until
    a short page (the newest trades) or one that reaches ``stop_id``."""
    while stop_id is None or next_id < stop_id:
        page = await pager.page(None, {"fromId": next_id})
        rows += page
        if len(page) < limit or (stop_id is not None and any(_id(r) >= stop_id for r in page)):
            return
        next_id = max(_id(r) for r in page) + 1


def _stopped(rows: list[Row], before: ResumeAt, until: str) -> tuple[ResumeAt, str]:
    """Where a Binance walk cut short goes on: after the last trade it read, or where it
    was (``before``) when it read none."""
    if rows:
        last = max(rows, key=_id)
        return ResumeAt(_ms(last), _id(last) + 1), f"trades after id {_id(last)} and before {until}"
    if before.from_id is not None:
        return before, f"trades from id {before.from_id} and before {until}"
    return before, f"trades since {before.from_ms} before {until}"


async def kucoin_trades(fetch: FetchPage, since_ms: int | None, now_ms: int, limit: int = 500,
                        max_pages: int | None = None, resume: ResumeAt | None = None) -> TradeWalk:
    """KuCoin: 7-day windows from ``since_ms`` (or from ``resume``: its window, from its
    page), the last one given ``startAt`` only, so the exchange's own clock ends it; each
    read page by page until a page is short.

    Pages are newest first: a fill that lands while paging pushes the others down one
    place, so the next page repeats a fill (removed by id) rather than skipping one.
    Cut short by the page bound, the walk says which window and page it goes on from."""
    pager = _Pager(fetch, max_pages)
    walk = TradeWalk()
    if since_ms is None and resume is None:
        walk.rows = await pager.page(None, {"pageSize": limit})
        walk.requests = pager.requests
        return walk
    start, number = (resume.from_ms, resume.page) if resume is not None else (int(since_ms or 0), 1)
    # the open window's newest fill time when its page 1 was read by an earlier call: read
    # what came after it once the window's pages are done (it landed on page 1)
    again_from = resume.top_ms if resume is not None else None
    top: int | None = again_from  # the same, for the window being read now, when it is the open one
    last_window = False
    try:
        while True:
            last_window = start + WEEK_MS > now_ms + CLOCK_AHEAD_MS
            params: dict[str, Any] = {"pageSize": limit}
            if not last_window:
                params["endAt"] = start + WEEK_MS - 1
            while True:
                page = await pager.page(start, {**params, "currentPage": number})
                if number == 1 and last_window:
                    top = max((_ms(r) for r in page), default=None)
                walk.rows += page
                if len(page) < limit:
                    break
                number += 1
            if last_window:
                if again_from is None:
                    break
                start, number, again_from, top = again_from + 1, 1, None, None
                continue
            start, number = start + WEEK_MS, 1
    except PageBudgetSpent:
        in_open_window = last_window and number > 1
        walk.resume = ResumeAt(start, page=number, top_ms=top if in_open_window else again_from)
        walk.truncated = f"fills from {start} on, from page {number} of that window"
    walk.requests = pager.requests
    return walk
