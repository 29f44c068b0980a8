"""The guard's reference prices are market data shared per venue: N accounts on one pair
cost the exchange one ticker request per refresh interval, not N; two simulator
instances never share a price; a price too old to judge by is refused, and the
account waits (reconciling) for a fresh one instead of pausing its bots."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import pytest

from sealbot.domain import ClientOrderId, Order, OrderType, Pair, Side
from sealbot.engine.clock import FakeClock
from sealbot.engine.guard import GuardLimits, MarketSnapshot, check
from sealbot.engine.journal import AccountRecord, BotStatus
from sealbot.engine.market import ReferencePrices, venue_key
from sealbot.engine.runner import InProcessRunner, RunnerSettings
from sealbot.engine.store_journal import StoreJournal
from sealbot.simex import SimexServer
from sealbot.store import UnitOfWork, make_session_factory, upgrade
from sealbot.venues.base import Ticker, Venue
from sealbot.venues.errors import ExchangeUnavailable

from .fakes import FakeVenue
from .simex_env import SimexTime, dca, simex_venue, ticker_requests
from .test_engine_reference_on_start import FlakyTicker
from .test_engine_runner import candle, setup, started

BTC = Pair("BTC", "USDT")
TTL = 30.0


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=0) as sx:
        yield sx


def _seed(url: str, accounts: int) -> tuple[StoreJournal, list[str]]:
    """``accounts`` accounts of one user, each with a DCA bot on BTC/USDT."""
    upgrade(url)
    factory = make_session_factory(url)
    ids: list[str] = []
    with UnitOfWork(factory) as uow:
        user = uow.users.add("many@example.org", "x")
        for i in range(accounts):
            account = uow.accounts.add(user.id, "binance", f"simex {i}")
            bot = uow.bots.add(user.id, "dca", f"dca {i}", dca(), account_id=account.id)
            uow.bots.set_status(user.id, bot.id, "running")
            ids.append(str(account.id))
    return StoreJournal(factory), ids


async def _run(journal: StoreJournal, venues: dict[str, tuple[SimexServer, dict[str, object]]],
               clock: SimexTime) -> InProcessRunner:
    async def factory(account: AccountRecord) -> Venue:
        sx, key = venues[account.id]
        return simex_venue(sx.base_url, str(key["key"]), str(key["secret"]))

    runner = InProcessRunner(journal, factory, clock=clock,
                             settings=RunnerSettings(background=False, poll_feeds=False, market_ttl=TTL))
    for account_id in venues:
        await runner.start_account(account_id)
    return runner


async def test_n_accounts_on_one_pair_cost_simex_one_ticker_request_per_interval(
        simex: SimexServer, database_url: str) -> None:
    accounts = 6
    journal, ids = _seed(database_url, accounts)
    keys = {}
    for account_id in ids:
        on_simex = simex.admin.create_account(f"a{account_id}", {"USDT": "1000"})
        keys[account_id] = (simex, simex.admin.create_key(on_simex["id"]))
    clock = SimexTime(simex.admin.clock()["now_ms"])
    simex.admin.reset_requests()
    runner = await _run(journal, keys, clock)
    try:
        assert ticker_requests(simex) == 1  # every start needed a price; one fetch served all
        runs = list(runner.accounts.values())
        assert all(not acc.needs_reconcile for acc in runs)
        await asyncio.gather(*(acc.poll_once() for acc in runs))
        assert ticker_requests(simex) == 1  # still fresh: nobody asks
        for interval in range(2, 5):
            clock.ms += int(TTL * 1000)
            await asyncio.gather(*(acc.poll_once() for acc in runs))  # all at once: they join one fetch
            await asyncio.gather(*(acc.poll_once() for acc in runs))  # and again within the interval
            assert ticker_requests(simex) == interval
        market = {str(m["symbol"]): m for m in simex.admin.markets()}["BTCUSDT"]
        snapshot = runs[-1].market.snapshot(BTC)
        assert snapshot.bid == Decimal(str(market["bid"])) and snapshot.ask == Decimal(str(market["ask"]))
        assert runner.prices.fetches == 4
    finally:
        await runner.stop()


async def test_accounts_on_two_simulator_instances_do_not_share_prices(database_url: str) -> None:
    journal, ids = _seed(database_url, 4)
    with SimexServer(speed=0) as first, SimexServer(speed=0) as second:
        venues = {}
        for i, account_id in enumerate(ids):
            sx = first if i % 2 == 0 else second
            on_simex = sx.admin.create_account(f"a{account_id}", {"USDT": "1000"})
            venues[account_id] = (sx, sx.admin.create_key(on_simex["id"]))
        first.admin.reset_requests()
        second.admin.reset_requests()
        runner = await _run(journal, venues, SimexTime(first.admin.clock()["now_ms"]))
        try:
            assert ticker_requests(first) == 1 and ticker_requests(second) == 1
            keys = {acc.market.key for acc in runner.accounts.values()}
            assert len(keys) == 2 and all(k.startswith("binance@http://127.0.0.1:") for k in keys)
        finally:
            await runner.stop()


class _SlowTicker(FakeVenue):
    def __init__(self) -> None:
        super().__init__()
        self.tickers = 0
        self.gate = asyncio.Event()

    async def fetch_ticker(self, pair: Pair) -> Ticker:
        self.tickers += 1
        await self.gate.wait()
        return await super().fetch_ticker(pair)


async def test_concurrent_askers_join_one_fetch_and_one_cancelled_asker_does_not_cancel_it() -> None:
    prices = ReferencePrices(FakeClock(), ttl=TTL)
    venue = _SlowTicker()
    key = venue_key(venue)
    askers = [asyncio.ensure_future(prices.refresh(key, venue, [BTC])) for _ in range(50)]
    await asyncio.sleep(0)
    askers[0].cancel()  # an account stopped while it waited
    await asyncio.sleep(0)
    venue.gate.set()
    results = await asyncio.gather(*askers, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError) and results[1:] == [None] * 49
    assert venue.tickers == 1 and prices.fetches == 1
    assert prices.snapshot(key, BTC).reference_price == Decimal(100)


class _CancelledUnderIt(FakeVenue):
    async def fetch_ticker(self, pair: Pair) -> Ticker:
        raise asyncio.CancelledError  # what ccxt raises when another task cancelled its load_markets


async def test_a_fetch_cancelled_under_it_fails_like_a_fault_for_the_accounts_that_joined_it() -> None:
    prices = ReferencePrices(FakeClock(), ttl=TTL)
    venue = _CancelledUnderIt()
    askers = [asyncio.ensure_future(prices.refresh(venue_key(venue), venue, [BTC])) for _ in range(3)]
    assert await asyncio.gather(*askers) == [None] * 3  # no CancelledError in a task nobody cancelled
    assert prices.snapshot(venue_key(venue), BTC).reference_price is None


def test_a_venue_without_an_endpoint_shares_with_nobody() -> None:
    assert venue_key(FakeVenue()) != venue_key(FakeVenue())


def test_a_price_older_than_max_age_is_stale_and_the_guard_refuses_it() -> None:
    clock = FakeClock()
    prices = ReferencePrices(clock, ttl=TTL, max_age=90)
    prices.set("binance", MarketSnapshot(BTC, Decimal(100), Decimal(101), Decimal(100), Decimal(10**9)))
    order = Order(ClientOrderId("b1", 1, "b"), BTC, Side.BUY, OrderType.LIMIT, Decimal("0.1"), Decimal(100))
    assert check(order, GuardLimits(), prices.snapshot("binance", BTC)).allowed
    clock.advance(91)
    stale = prices.snapshot("binance", BTC)
    assert stale.reference_price is None and stale.stale_age == pytest.approx(91)
    decision = check(order, GuardLimits(), stale, closing=True)  # an exit too: no price, no judgement
    assert not decision.allowed and decision.rule == "reference_price"
    assert "stale (91 s old)" in decision.reason


def test_a_received_price_keeps_its_age() -> None:
    clock = FakeClock()
    prices = ReferencePrices(clock, ttl=TTL, max_age=60)
    prices.set("binance", MarketSnapshot(BTC, last=Decimal(100)), age=75)  # sat in a queue
    assert prices.snapshot("binance", BTC).stale_age == pytest.approx(75)


async def test_a_stale_price_holds_the_bots_reconciling_instead_of_pausing_them() -> None:
    journal, _, clock = setup()
    venue = FlakyTicker(now=clock.now)
    runner, acc = await started(journal, venue, clock)
    assert not acc.needs_reconcile
    venue.failures = 10**6  # the ticker stops answering
    clock.advance(runner.prices.max_age + 1)
    await acc.poll_once()  # the refresh fails: the last price is now too old
    assert acc.market.snapshot(BTC).stale_age is not None
    assert acc.needs_reconcile
    runner.hub.publish("fake", candle(int(runner.prices.max_age // 60) + 2, "100"))
    with pytest.raises(ExchangeUnavailable, match="no reference price for BTC/USDT"):
        await acc.drain()  # the account reconciles first: no fresh price, so no bot acts
    assert not venue.created
    assert journal.data.bots["7"].status == BotStatus.RUNNING
    venue.failures = 0
    runner.hub.publish("fake", candle(int(runner.prices.max_age // 60) + 3, "100"))
    await acc.drain()
    assert venue.created, "the bot did not trade once a fresh price came"
    assert not [e for e in journal.data.orders.values() if e.reason and "guard" in e.reason]
    await runner.stop()


def test_the_default_staleness_limit_follows_the_refresh_interval() -> None:
    assert ReferencePrices(ttl=30).max_age == 120
    assert ReferencePrices(ttl=0).max_age == 60
    with pytest.raises(ValueError, match="market_max_age"):
        ReferencePrices(max_age=0)


