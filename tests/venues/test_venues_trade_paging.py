"""A trade walk cut short by its page bound resumes where it stopped: over several
bounded calls every trade since the start comes back exactly once, on exchanges that
answer the way Binance (``myTrades``) and KuCoin (``fills``) do."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sealbot.venues.trade_paging import DAY_MS, WEEK_MS, ResumeAt, TradeWalk, binance_trades, kucoin_trades

Row = dict[str, Any]


@dataclass
class FakeBinance:
    """myTrades as Binance answers it: oldest first, at most ``limit``; ``fromId`` alone;
    a time query at most 24 hours wide; nothing at all: the newest trades."""

    times: list[int]  # trade i has id i + 1 (ids grow with time)
    limit: int = 1000
    requests: int = 0
    asked: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows(self) -> list[Row]:
        return [{"id": i + 1, "timestamp": t} for i, t in enumerate(self.times)]

    async def fetch(self, since: int | None, params: dict[str, Any]) -> list[Row]:
        self.requests += 1
        self.asked.append({"since": since, **params})
        rows = self.rows
        if "fromId" in params:
            assert since is None and "endTime" not in params, "fromId cannot be combined with a time (-1128)"
            return [r for r in rows if r["id"] >= params["fromId"]][:self.limit]
        if since is None:
            return rows[-self.limit:]
        end = params["endTime"]
        assert 0 <= end - since <= DAY_MS, "more than 24 hours between startTime and endTime (-1127)"
        return [r for r in rows if since <= r["timestamp"] <= end][:self.limit]


@dataclass
class FakeKucoin:
    """fills as KuCoin answers them: newest first, ``pageSize`` a page, ``currentPage``;
    a window at most 7 days wide, ``startAt`` alone meaning the 7 days from it."""

    times: list[int]
    limit: int = 500
    requests: int = 0

    async def fetch(self, since: int | None, params: dict[str, Any]) -> list[Row]:
        self.requests += 1
        size, number = params["pageSize"], params.get("currentPage", 1)
        assert size == self.limit and since is not None
        end = params.get("endAt", since + WEEK_MS)
        assert 0 <= end - since <= WEEK_MS, "more than 7 days between startAt and endAt"
        window = [{"id": i + 1, "timestamp": t} for i, t in enumerate(self.times) if since <= t <= end]
        window.sort(key=lambda r: (r["timestamp"], r["id"]), reverse=True)
        return window[(number - 1) * size:number * size]


def _ids(walk: TradeWalk, since: int) -> list[int]:
    """What the venue makes of one call: the trades since ``since``, one per id."""
    return sorted({int(r["id"]) for r in walk.rows if r["timestamp"] >= since})


async def _drain_binance(ex: FakeBinance, since: int, max_pages: int,
                         between: list[list[int]] | None = None) -> tuple[list[int], list[TradeWalk]]:
    """Walk, then resume until a walk is complete; ``between[i]``: trades that happen
    after call ``i``. Returns every id read, in call order, and the walks."""
    read: list[int] = []
    walks: list[TradeWalk] = []
    resume: ResumeAt | None = None
    # every trade there will be, those arriving meanwhile too: a walk of at least one
    # trade a call catches up within that many calls
    for call in range(len(ex.times) + sum(len(b) for b in between or []) + 10):
        walk = await binance_trades(ex.fetch, since, ex.limit, max_pages=max_pages, resume=resume)
        walks.append(walk)
        assert walk.requests <= max_pages
        read += _ids(walk, since)
        if walk.resume is None:
            return read, walks
        assert walk.resume != resume, "a resumed walk made no progress"
        resume = walk.resume
        if between and call < len(between):
            ex.times += between[call]
    raise AssertionError("the walk never caught up")


async def _drain_kucoin(ex: FakeKucoin, since: int, now: int, max_pages: int) -> tuple[list[int], list[TradeWalk]]:
    read: list[int] = []
    walks: list[TradeWalk] = []
    resume: ResumeAt | None = None
    for _ in range(len(ex.times) + 10):
        walk = await kucoin_trades(ex.fetch, since, now, ex.limit, max_pages=max_pages, resume=resume)
        walks.append(walk)
        assert walk.requests <= max_pages
        read += _ids(walk, since)
        if walk.resume is None:
            return read, walks
        assert walk.resume != resume, "a resumed walk made no progress"
        resume = walk.resume
    raise AssertionError("the walk never caught up")


T0 = 1_700_000_000_000


async def test_binance_a_backlog_past_the_bound_is_read_over_several_calls_each_trade_once() -> None:
    # 7,500 trades over three days, ten seconds apart, a few before the start
    ex = FakeBinance([T0 + i * 10_000 for i in range(7_500)])
    since = T0 + 50_000  # trades 1..5 are older
    read, walks = await _drain_binance(ex, since, max_pages=3)
    assert read == list(range(6, 7_501))
    # first call: the newest page, a 24 h window from the start, one fromId page (2,000
    # trades in order; the newest page is left aside); then 3 fromId pages a call
    assert [len(_ids(w, since)) for w in walks] == [2_000, 3_000, 2_495]
    assert [w.requests for w in walks] == [3, 3, 3]
    assert walks[0].resume == ResumeAt(T0 + 2_004 * 10_000, 2_006)
    assert [int(r["id"]) for r in walks[0].beyond] == list(range(6_501, 7_501))
    assert walks[0].truncated == "trades after id 2005 and before id 6501"


async def test_binance_a_truncated_walk_leaves_no_hole_in_what_it_returns() -> None:
    """The newest page is read first; cut short, the walk returns the trades from the start
    on, in order, and the newest page apart, where no caller mistakes it for the rest."""
    ex = FakeBinance([T0 + i * 1_000 for i in range(3_500)])
    walk = await binance_trades(ex.fetch, T0, 1000, max_pages=2)
    assert _ids(walk, T0) == list(range(1, 1_001))
    assert walk.resume == ResumeAt(T0 + 999_000, 1_001)
    resumed = await binance_trades(ex.fetch, T0, 1000, max_pages=2, resume=walk.resume)
    assert _ids(resumed, T0) == list(range(1_001, 3_001)) and resumed.beyond == []
    assert [a.get("fromId") for a in ex.asked[-2:]] == [1_001, 2_001]  # by id, no newest page again


async def test_binance_a_quiet_first_day_does_not_end_the_walk() -> None:
    """The first 24-hour window holding a trade may hold fewer than 1,000 (a quiet day)
    while the days after it hold thousands: the walk goes on by id to the newest page."""
    ex = FakeBinance([T0 + i * 1_000 for i in range(10)] + [T0 + DAY_MS + i * 20_000 for i in range(3_000)])
    walk = await binance_trades(ex.fetch, T0, 1000)
    assert _ids(walk, T0) == list(range(1, 3_011)) and walk.resume is None


async def test_binance_no_trade_for_longer_than_the_bound_allows_windows_resumes_the_search() -> None:
    """Sixty empty days before the first trade: 24-hour windows cannot reach it in one
    call; the next call searches on from the window where the first stopped."""
    ex = FakeBinance([T0 + 60 * DAY_MS + i * 1_000 for i in range(1_500)])
    first = await binance_trades(ex.fetch, T0, 1000, max_pages=10)
    assert first.rows == [] and first.resume == ResumeAt(T0 + 9 * DAY_MS)
    read, walks = await _drain_binance(ex, T0, max_pages=10)
    assert read == list(range(1, 1_501)) and len(walks) == 7


async def test_binance_trades_made_between_calls_are_read_once() -> None:
    ex = FakeBinance([T0 + i * 1_000 for i in range(5_000)])
    later = [[T0 + 10_000_000 + i * 1_000 for i in range(700)], [T0 + 20_000_000 + i for i in range(2_000)]]
    read, _ = await _drain_binance(ex, T0, max_pages=2, between=later)
    assert read == list(range(1, 7_701))


async def test_kucoin_a_backlog_past_the_bound_is_read_over_several_calls_each_fill_once() -> None:
    # 4,000 fills in the first 7-day window (8 pages), 1,300 in the last one, 3 pages a call
    times = [T0 + i * 150_000 for i in range(4_000)] + [T0 + 21 * DAY_MS + i * 1_000 for i in range(1_300)]
    ex = FakeKucoin(times)
    now = T0 + 22 * DAY_MS
    read, walks = await _drain_kucoin(ex, T0, now, max_pages=3)
    assert sorted(read) == list(range(1, 5_301))  # each once
    assert all(w.requests == 3 for w in walks[:-1])
    assert walks[0].resume == ResumeAt(T0, page=4)  # the first window, from its fourth page


async def test_kucoin_a_fill_landing_between_calls_in_the_open_window_is_not_skipped() -> None:
    ex = FakeKucoin([T0 + i * 1_000 for i in range(1_200)])
    now = T0 + DAY_MS
    first = await kucoin_trades(ex.fetch, T0, now, 500, max_pages=1)
    assert _ids(first, T0) == list(range(701, 1_201))
    assert first.resume == ResumeAt(T0, page=2, top_ms=T0 + 1_199_000)
    ex.times.append(T0 + 2_000_000)  # lands on page 1, already read, and pushes every fill down one place
    second = await kucoin_trades(ex.fetch, T0, now, 500, max_pages=5, resume=first.resume)
    assert second.resume is None
    read = _ids(first, T0) + _ids(second, T0)
    assert sorted(set(read)) == list(range(1, 1_202))  # none skipped, the new one included
    # read twice (the journal applies it once): 701, pushed from page 1 to page 2; 1,201
    # landed after the newest fill of the page 1 read, and is read after the window's pages
    assert sorted({i for i in read if read.count(i) > 1}) == [701]


def test_a_cursor_says_which_field_is_wrong() -> None:
    with pytest.raises(ValueError, match="page"):
        ResumeAt(T0, page=0)
    with pytest.raises(ValueError, match="from_ms"):
        ResumeAt.from_dict({"from_id": 3})
    cursor = ResumeAt(T0, 7, 2)
    assert ResumeAt.from_dict(cursor.to_dict()) == cursor


async def test_binance_needs_room_for_the_newest_page_and_one_more() -> None:
    ex = FakeBinance([T0])
    with pytest.raises(ValueError, match="max_pages"):
        await binance_trades(ex.fetch, T0, 1000, max_pages=1)


# --- properties ------------------------------------------------------------------------
gaps = st.lists(st.one_of(st.integers(0, 5_000), st.integers(DAY_MS // 2, 3 * DAY_MS)), min_size=0, max_size=120)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gaps=gaps, limit=st.integers(1, 7), max_pages=st.integers(2, 6), start=st.integers(-2, 130),
       arrivals=st.lists(st.integers(0, 9), max_size=6))
@example(gaps=[0, 0, 0, 1, 1, 1], limit=1, max_pages=2, start=0, arrivals=[9] * 6)  # more arrivals than history
def test_binance_any_history_any_bound_each_trade_since_the_start_once(
        gaps: list[int], limit: int, max_pages: int, start: int, arrivals: list[int]) -> None:
    times, t = [], T0
    for gap in gaps:
        t += gap
        times.append(t)
    since = times[start] if 0 <= start < len(times) else T0 + (start if start < 0 else 10 * DAY_MS * 40)
    ex = FakeBinance(times, limit=limit)
    end = (times[-1] if times else T0) + 1
    between = [[end + 1_000 * k + i for i in range(n)] for k, n in enumerate(arrivals)]
    read, _ = asyncio.run(_drain_binance(ex, since, max_pages, between))
    # nothing happens after the last call, which caught up: every trade since the start, once, in order
    assert read == [i + 1 for i, at in enumerate(ex.times) if at >= since]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gaps=gaps, limit=st.integers(1, 7), max_pages=st.integers(1, 6), start=st.integers(-2, 130))
def test_kucoin_any_history_any_bound_each_fill_since_the_start_once(
        gaps: list[int], limit: int, max_pages: int, start: int) -> None:
    times, t = [], T0
    for gap in gaps:
        t += gap
        times.append(t)
    since = times[start] if 0 <= start < len(times) else T0 + (start if start < 0 else 40 * DAY_MS)
    now = (times[-1] if times else T0) + 60_000
    ex = FakeKucoin(times, limit=limit)
    read, walks = asyncio.run(_drain_kucoin(ex, since, now, max_pages))
    assert sorted(read) == [i + 1 for i, at in enumerate(times) if at >= since]  # each once
    # as many requests as one unbounded walk, but one: reading what came after the open
    # window's first page, once a call resumed inside it
    whole = asyncio.run(kucoin_trades(FakeKucoin(times, limit=limit).fetch, since, now, limit, max_pages=10**6))
    assert sum(w.requests for w in walks) <= whole.requests + 1
