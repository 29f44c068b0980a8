"""The portfolio refresher's tickers are market data shared per venue within a pass:
N accounts on one simex holding the same assets cost one ticker request per pair per
pass, not N; two simex instances (both called "binance") do not share; a fresh
reference price the guard already holds for the same venue saves the request."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import pytest

from sealbot.domain import Pair
from sealbot.engine.clock import FakeClock
from sealbot.engine.journal import AccountRecord
from sealbot.engine.market import ReferencePrices, venue_key
from sealbot.engine.portfolio import PortfolioRefresher, Valuation
from sealbot.simex import SimexServer
from sealbot.venues.base import Venue

from .simex_env import simex_venue, ticker_requests

BTC = Pair("BTC", "USDT")
HOLDINGS = {"USDT": "10", "BTC": "0.1", "ETH": "2", "XRP": "300"}  # BTC/USDT, ETH/BTC, XRP/ETH: 3 tickers


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=0) as sx:
        yield sx


class _Snapshots:
    """A ``PortfolioStore`` in memory: every account values in USDT."""

    def __init__(self) -> None:
        self.saved: list[tuple[str, Valuation]] = []

    def currency_of(self, user: str) -> str:
        return "USDT"

    def save(self, account: AccountRecord, taken_at: datetime, valuation: Valuation) -> None:
        self.saved.append((account.id, valuation))

    def thin(self, before: datetime) -> int:
        return 0


def _accounts(instances: list[SimexServer]) -> tuple[list[AccountRecord], dict[str, Venue]]:
    """One "binance" account per instance given, holding ``HOLDINGS`` there."""
    accounts, venues = [], {}
    for i, sx in enumerate(instances):
        on_simex = sx.admin.create_account(f"pf{i}", HOLDINGS)
        key = sx.admin.create_key(on_simex["id"])
        accounts.append(AccountRecord(str(i), "1", "binance"))
        venues[str(i)] = simex_venue(sx.base_url, str(key["key"]), str(key["secret"]))
    return accounts, venues


def _refresher(accounts: list[AccountRecord], venues: dict[str, Venue], store: _Snapshots,
               prices: ReferencePrices | None = None) -> PortfolioRefresher:
    async def venue_for(account: AccountRecord) -> Venue:
        return venues[account.id]

    return PortfolioRefresher(lambda: accounts, venue_for, store, clock=FakeClock(), full_history_days=None,
                              prices=prices)


async def _close(venues: dict[str, Venue]) -> None:
    for venue in venues.values():
        await venue.close()


async def test_n_accounts_on_one_simex_cost_one_ticker_request_per_pair_per_pass(simex: SimexServer) -> None:
    n = 5
    accounts, venues = _accounts([simex] * n)
    store = _Snapshots()
    refresher = _refresher(accounts, venues, store)
    try:
        for load in range(n):  # markets are loaded once per venue, not counted here
            await venues[str(load)].load_markets()
        simex.admin.reset_requests()
        done = await refresher.refresh_once()
        assert len(done) == n and ticker_requests(simex) == 3  # was 3 x n
        await refresher.refresh_once()
        assert ticker_requests(simex) == 6  # shared within a pass, fetched again the next one
        assert refresher.tickers_fetched == 6 and refresher.tickers_reused == 0
    finally:
        await _close(venues)
    totals = {valuation.total for _account, valuation in store.saved}
    assert len(store.saved) == 2 * n and len(totals) == 1 and all(not v.unvalued for _a, v in store.saved)
    assert totals.pop() > Decimal(10)


async def test_accounts_on_two_simulator_instances_named_alike_do_not_share_tickers() -> None:
    with SimexServer(speed=0) as first, SimexServer(speed=0) as second:
        accounts, venues = _accounts([first, second, first, second])
        refresher = _refresher(accounts, venues, _Snapshots())
        try:
            first.admin.reset_requests()
            second.admin.reset_requests()
            assert len(await refresher.refresh_once()) == 4
            assert ticker_requests(first) == 3 and ticker_requests(second) == 3
        finally:
            await _close(venues)


async def test_a_fresh_reference_price_of_the_same_venue_saves_its_ticker_request(simex: SimexServer) -> None:
    accounts, venues = _accounts([simex, simex])
    clock = FakeClock()
    prices = ReferencePrices(clock, ttl=30)
    refresher = _refresher(accounts, venues, _Snapshots(), prices)
    try:
        await prices.refresh(venue_key(venues["0"]), venues["0"], [BTC])  # what the guard fetched
        simex.admin.reset_requests()
        await refresher.refresh_once()
        assert ticker_requests(simex) == 2  # ETH/BTC and XRP/ETH; BTC/USDT was held
        assert refresher.tickers_reused == 1 and refresher.tickers_fetched == 2
        clock.advance(30)  # no longer fresh: asked again
        await refresher.refresh_once()
        assert ticker_requests(simex) == 5 and refresher.tickers_reused == 1
    finally:
        await _close(venues)
