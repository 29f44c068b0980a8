"""Fills are never lost to a page limit or a time window: ``CcxtVenue.fetch_my_trades``
pages through every trade since the time asked, against a real simex that answers
Binance's myTrades and KuCoin's fills with the exchanges' own page and window rules,
and the engine applies a fill that lay beyond the first page."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from sealbot.domain import ClientOrderId, Fill, Order, OrderStatus, OrderType, Pair, Side
from sealbot.engine.budget import Budget, RateLimit
from sealbot.engine.budgeted import BINANCE_WEIGHTS, BudgetedVenue
from sealbot.engine.journal import AccountRecord, MemoryJournal
from sealbot.engine.orders import OrderManager
from sealbot.simex import SimexServer
from sealbot.venues import trade_paging
from sealbot.venues.ccxt_venue import CcxtVenue

from .simex_env import SimexTime, record_trades, resting_order, simex_kucoin_venue, simex_venue

BTC = Pair("BTC", "USDT")
DAY_MS = 24 * 3600 * 1000
MINUTE_MS = 60_000
PASSPHRASE = "paging"
TRADES_PATH = {"binance": "/api/v3/myTrades", "kucoin": "/api/v1/fills"}


def _wall_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    """simex's market clock starts 10 days ago (the history below fits between then and now)."""
    with SimexServer(speed=0, start_ms=(_wall_ms() - 10 * DAY_MS) // MINUTE_MS * MINUTE_MS) as sx:
        yield sx


def _venue(sx: SimexServer, exchange_id: str) -> tuple[CcxtVenue, str]:
    account = sx.admin.create_account("pager", {"USDT": "1000000", "BTC": "10"})
    key = sx.admin.create_key(int(account["id"]), passphrase=PASSPHRASE if exchange_id == "kucoin" else None)
    if exchange_id == "kucoin":
        return simex_kucoin_venue(sx.base_url, key["key"], key["secret"], PASSPHRASE), key["key"]
    return simex_venue(sx.base_url, key["key"], key["secret"]), key["key"]


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@pytest.mark.parametrize("exchange_id", ["binance", "kucoin"])
async def test_every_one_of_2500_trades_since_an_order_was_placed_comes_back(
        simex: SimexServer, exchange_id: str) -> None:
    venue, key = _venue(simex, exchange_id)
    ours, other = resting_order(simex, key, "V1-1-a"), resting_order(simex, key, "manual-1")
    since = _wall_ms() - 3 * DAY_MS
    before = record_trades(simex, other, [since - 3_000, since - 2_000, since - 1])  # not asked for
    # 2,500 trades a minute apart (41 hours: more than one 24-hour Binance window), two orders
    times = [since + 30 * MINUTE_MS + i * MINUTE_MS for i in range(2_500)]
    wanted = (record_trades(simex, ours, times[:700]) + record_trades(simex, other, times[700:2_400])
              + record_trades(simex, ours, times[2_400:]))
    simex.admin.reset_requests()
    try:
        fills = await venue.fetch_my_trades(BTC, _at(since))
    finally:
        await venue.close()
    assert [int(f.trade_id) for f in fills] == wanted  # each once, oldest first, none from before
    assert not set(before) & {int(f.trade_id) for f in fills}
    assert {f.client_id.text for f in fills[:700]} == {"V1-1-a"}
    assert fills[0].at == _at(times[0]) and fills[-1].at == _at(times[-1])
    # Binance: the newest page, one 24-hour window (a full page), one fromId page up to the
    # newest page. KuCoin: one 7-day window, five full pages of 500 and an empty one.
    assert simex.admin.request_count(TRADES_PATH[exchange_id]) == {"binance": 3, "kucoin": 6}[exchange_id]


@pytest.mark.parametrize("exchange_id", ["binance", "kucoin"])
@pytest.mark.parametrize("days_open", [3, 9])
async def test_an_order_open_for_days_still_gets_the_fill_from_a_minute_ago(
        simex: SimexServer, exchange_id: str, days_open: int) -> None:
    venue, key = _venue(simex, exchange_id)
    ours = resting_order(simex, key, "V1-1-b")
    since = _wall_ms() - days_open * DAY_MS
    [recent] = record_trades(simex, ours, [_wall_ms() - MINUTE_MS])
    simex.admin.reset_requests()
    try:
        fills = await venue.fetch_my_trades(BTC, _at(since))
    finally:
        await venue.close()
    assert [(f.trade_id, f.client_id.text) for f in fills] == [(str(recent), "V1-1-b")]
    # Binance: the newest page holds it (one request); KuCoin: one request per 7-day window
    expected = {"binance": 1, "kucoin": 1 if days_open < 7 else 2}[exchange_id]
    assert simex.admin.request_count(TRADES_PATH[exchange_id]) == expected


async def test_each_page_draws_its_weight_from_the_budget(simex: SimexServer) -> None:
    inner, key = _venue(simex, "binance")
    ours = resting_order(simex, key, "V1-1-c")
    since = _wall_ms() - 2 * DAY_MS
    record_trades(simex, ours, [since + i * 1_000 for i in range(2_500)])
    budget = Budget("ip", [RateLimit(100_000, 60.0)], SimexTime(_wall_ms()))
    venue = BudgetedVenue(inner, budget)
    try:
        fills = await venue.fetch_my_trades(BTC, _at(since))
    finally:
        await venue.close()
    assert len(fills) == 2_500
    pages = simex.admin.request_count("/api/v3/myTrades")
    orders = simex.admin.request_count("/api/v3/order")  # the trades' order, read once to name it
    assert (pages, orders) == (3, 1)
    assert budget.limits[0].used == pages * BINANCE_WEIGHTS["fetch_my_trades"] + orders * BINANCE_WEIGHTS[
        "fetch_order"]


async def test_a_walk_past_the_page_bound_stops_and_says_what_it_left_out(
        simex: SimexServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(trade_paging, "MAX_PAGES", 2)
    venue, key = _venue(simex, "binance")
    ours = resting_order(simex, key, "V1-1-d")
    since = _wall_ms() - 2 * DAY_MS
    ids = record_trades(simex, ours, [since + i * 1_000 for i in range(3_500)])
    try:
        with caplog.at_level(logging.WARNING):
            fills = await venue.fetch_my_trades(BTC, _at(since))
    finally:
        await venue.close()
    # the newest page and the oldest window: trades 1,001..2,500 are left to a later poll
    assert [int(f.trade_id) for f in fills] == ids[:1_000] + ids[2_500:]
    assert f"trades after id {ids[999]} and before id {ids[2_500]}" in caplog.text
    assert "stopped after 2 requests" in caplog.text


async def test_the_engine_applies_a_fill_that_lay_beyond_the_first_page(simex: SimexServer) -> None:
    """A grid's far level, open for three days while 2,500 trades went through on the pair:
    its fill is the 1,201st trade since it was placed, beyond a first page from either end."""
    venue, key = _venue(simex, "binance")
    start = simex.admin.clock()["now_ms"]
    clock = SimexTime(start)
    journal = MemoryJournal()
    manager = OrderManager(AccountRecord("1", "alice", "binance"), venue, journal, clock=clock)
    try:
        last = (await venue.fetch_ticker(BTC)).last
        assert last is not None
        order = Order(ClientOrderId("g1", 1, "far"), BTC, Side.BUY, OrderType.LIMIT, Decimal("0.001"),
                      (last / 2).quantize(Decimal("0.01")))
        with journal.transaction() as tx:
            manager.journal_new(tx, "g1", order)
        await manager.send(order.client_id)
        ours = next(o["id"] for o in simex.admin.orders() if o["client_id"] == order.client_id.text)
        noise = resting_order(simex, key, "manual-2")
        times = [start + 3_600_000 + i * 60_000 for i in range(2_501)]
        record_trades(simex, noise, times[:1_200])
        [fill_id] = record_trades(simex, ours, [times[1_200]])
        record_trades(simex, noise, times[1_201:])
        clock.ms = times[-1] + 60_000
        simex.admin.set_clock(set_ms=clock.ms)

        observations = await manager.poll()
        fills = [o for o in observations if isinstance(o, Fill)]
        assert [(f.client_id, f.trade_id) for f in fills] == [(order.client_id, str(fill_id))]
        with journal.transaction() as tx:
            manager.apply(tx, fills[0])
            entry = tx.get_order(order.client_id)
        assert entry is not None and entry.order.filled == Decimal("0.001")
        assert entry.order.status is OrderStatus.FILLED
    finally:
        await venue.close()


@pytest.mark.parametrize("exchange_id", ["binance", "kucoin"])
async def test_fills_made_while_the_engine_was_down_past_the_page_bound_all_reach_the_books_once(
        simex: SimexServer, monkeypatch: pytest.MonkeyPatch, exchange_id: str) -> None:
    """Six grid levels rest on the pair; while the engine is down 9,000 trades go through,
    five levels filled somewhere among them, the sixth still open. The restart's reconcile cannot read them all
    within its bound (3 requests here: 3,000 Binance trades, 1,500 KuCoin fills); the polls
    after it go on where it stopped, each bounded, until the books hold every fill once."""
    monkeypatch.setattr(trade_paging, "MAX_PAGES", 3)
    venue, key = _venue(simex, exchange_id)
    start = simex.admin.clock()["now_ms"]
    clock = SimexTime(start)
    journal = MemoryJournal()
    account = AccountRecord("1", "alice", exchange_id)
    before = OrderManager(account, venue, journal, clock=clock)
    path = TRADES_PATH[exchange_id]
    try:
        last = (await venue.fetch_ticker(BTC)).last
        assert last is not None
        levels = [Order(ClientOrderId("g1", 1, f"l{i}"), BTC, Side.BUY, OrderType.LIMIT, Decimal("0.001"),
                        (last / 2).quantize(Decimal("0.01"))) for i in range(6)]
        for level in levels:
            with journal.transaction() as tx:
                before.journal_new(tx, "g1", level)
            await before.send(level.client_id)
        on_simex = {o["client_id"]: o["id"] for o in simex.admin.orders()}
        apply_all(before, journal, await before.poll())  # watched once: the marks are set, then the crash

        noise = resting_order(simex, key, "manual-3")
        times = [start + 3_600_000 + i * 30_000 for i in range(9_000)]
        where = [10, 2_500, 4_999, 7_000, 8_990]  # each level's fill: oldest to newest of the backlog
        expected: dict[ClientOrderId, str] = {}
        done = 0
        for level, at in zip(levels[:5], where, strict=True):
            record_trades(simex, noise, times[done:at])
            [trade] = record_trades(simex, on_simex[level.client_id.text], [times[at]])
            expected[level.client_id], done = str(trade), at + 1
        record_trades(simex, noise, times[done:])
        clock.ms = times[-1] + 60_000
        simex.admin.set_clock(set_ms=clock.ms)

        after = OrderManager(account, venue, journal, clock=clock)  # the restart
        simex.admin.reset_requests()
        apply_all(after, journal, await after.reconcile())
        requests = [simex.admin.request_count(path)]
        polls = 0
        while (_missing(journal, expected) or after.drains) and polls < 20:
            clock.ms += 2_000
            apply_all(after, journal, await after.poll())
            polls += 1
            requests.append(simex.admin.request_count(path) - sum(requests))

        assert _missing(journal, expected) == {}
        with journal.transaction() as tx:
            for level in levels[:5]:
                assert [f.trade_id for f in tx.fills_of(level.client_id)] == [expected[level.client_id]]
                entry = tx.get_order(level.client_id)
                assert entry is not None and entry.order.status is OrderStatus.FILLED
            assert tx.fills_of(levels[5].client_id) == []
        assert not after.drains and max(requests) <= 3  # every call within its bound
        # Binance: the reconcile reads 2,000 trades in order (and the newest page, set
        # aside), two polls 3,000 each, the third the last 1,000 and an empty page.
        # KuCoin: 1,500 fills a call (18 full pages), then the empty 19th page and the open window.
        assert (polls, requests) == {"binance": (3, [3, 3, 3, 2]), "kucoin": (6, [3, 3, 3, 3, 3, 3, 2])}[exchange_id]
    finally:
        await venue.close()


def _missing(journal: MemoryJournal, expected: dict[ClientOrderId, str]) -> dict[ClientOrderId, str]:
    with journal.transaction() as tx:
        return {c: t for c, t in expected.items() if t not in {f.trade_id for f in tx.fills_of(c)}}


def apply_all(manager: OrderManager, journal: MemoryJournal, observations: list[Any]) -> None:
    with journal.transaction() as tx:
        for observation in observations:
            manager.apply(tx, observation)
