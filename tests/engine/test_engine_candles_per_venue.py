"""Candle streams are shared per venue endpoint, not per exchange name: accounts on one
simex share one stream (one kline request per poll, however many accounts), accounts on
two simex instances both called "binance" get a stream each, polled on their own
instance, so their candles never mix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sealbot.domain import Pair
from sealbot.engine.candles import feed_key
from sealbot.engine.journal import AccountRecord
from sealbot.engine.runner import InProcessRunner, RunnerSettings
from sealbot.engine.store_journal import StoreJournal
from sealbot.simex import SimexServer
from sealbot.venues.base import Venue

from .fakes import FakeVenue
from .simex_env import SimexTime, simex_venue
from .test_engine_shared_prices import _seed

BTC = Pair("BTC", "USDT")
KLINES = "/api/v3/klines"


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=0) as sx:
        yield sx


async def _polling_runner(journal: StoreJournal, venues: dict[str, SimexServer],
                          opened: list[Venue]) -> InProcessRunner:
    """Every account started on its simex, the engine polling candles itself."""
    async def factory(account: AccountRecord) -> Venue:
        sx = venues[account.id]
        on_simex = sx.admin.create_account(f"a{account.id}", {"USDT": "1000"})
        key = sx.admin.create_key(on_simex["id"])
        opened.append(simex_venue(sx.base_url, str(key["key"]), str(key["secret"])))
        return opened[-1]

    clock = SimexTime(next(iter(venues.values())).admin.clock()["now_ms"])
    runner = InProcessRunner(journal, factory, clock=clock,
                             settings=RunnerSettings(background=False, poll_feeds=True))
    for account_id in venues:
        await runner.start_account(account_id)
    return runner


def _advance(runner: InProcessRunner, *instances: SimexServer, minutes: int = 2) -> None:
    """Move the instances' clocks (and the engine's) so that closed candles exist."""
    for sx in instances:
        now_ms = sx.admin.set_clock(advance_seconds=60 * minutes)["now_ms"]
    assert isinstance(runner.clock, SimexTime)
    runner.clock.ms = now_ms


def test_the_feed_key_is_the_endpoint_by_venue_and_the_exchange_name_for_a_replay() -> None:
    live = simex_venue("http://127.0.0.1:1", "k", "s")
    testnet = simex_venue("http://127.0.0.1:2", "k", "s")
    again = simex_venue("http://127.0.0.1:1", "other key", "s")
    assert feed_key("binance", live, by_venue=True) == feed_key("binance", again, by_venue=True)
    assert feed_key("binance", live, by_venue=True) != feed_key("binance", testnet, by_venue=True)
    paper_a, paper_b = FakeVenue(), FakeVenue()  # no endpoint to tell: shares with no one
    assert feed_key("fake", paper_a, by_venue=True) != feed_key("fake", paper_b, by_venue=True)
    assert feed_key("binance", live, by_venue=False) == feed_key("binance", testnet, by_venue=False) == "binance"


async def test_accounts_on_two_simulator_instances_named_alike_get_a_stream_each(database_url: str) -> None:
    journal, ids = _seed(database_url, 4)  # four "binance" accounts, a DCA bot on BTC/USDT each
    opened: list[Venue] = []
    with SimexServer(speed=0) as first, SimexServer(speed=0) as second:
        venues = {account_id: first if i % 2 == 0 else second for i, account_id in enumerate(ids)}
        runner = await _polling_runner(journal, venues, opened)
        try:
            feeds = {acc.feed for acc in runner.accounts.values()}
            assert len(feeds) == 2 and all(f.startswith("binance@http://127.0.0.1:") for f in feeds)
            assert sorted(runner.hub.streams(), key=str) == sorted(((f, BTC) for f in feeds), key=str)
            assert all(runner.hub.subscriber_count(f, BTC) == 2 for f in feeds)
            _advance(runner, first, second)
            first.admin.reset_requests()
            second.admin.reset_requests()
            await runner.poll_feeds_once()
            assert all(runner.hub.last_open(f, BTC) is not None for f in feeds)
            # each stream is polled on its own instance: neither instance feeds the other's bots
            assert first.admin.request_count(KLINES) == 1 and second.admin.request_count(KLINES) == 1
        finally:
            await runner.stop()


async def test_accounts_on_one_endpoint_share_one_stream_and_one_poll(simex: SimexServer,
                                                                      database_url: str) -> None:
    journal, ids = _seed(database_url, 3)
    opened: list[Venue] = []
    runner = await _polling_runner(journal, dict.fromkeys(ids, simex), opened)
    try:
        (feed,) = {acc.feed for acc in runner.accounts.values()}
        assert runner.hub.streams() == [(feed, BTC)] and runner.hub.subscriber_count(feed, BTC) == 3
        _advance(runner, simex)
        simex.admin.reset_requests()
        await runner.poll_feeds_once()
        assert runner.hub.last_open(feed, BTC) is not None
        assert simex.admin.request_count(KLINES) == 1  # one subscription for three accounts' bots
        # the account whose venue polled the stream stops: the others' bots keep the stream,
        # polled now through a venue still open
        first = runner.accounts[ids[0]].venue
        await runner.stop_account(ids[0])
        assert runner.hub.subscriber_count(feed, BTC) == 2
        assert all(source.venue is not first for source in runner.feeds.sources.values())
        await runner.poll_feeds_once()
        assert simex.admin.request_count(KLINES) == 2
    finally:
        await runner.stop()
