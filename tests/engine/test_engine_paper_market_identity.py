"""A paper venue takes its market data from a data venue: it shares that venue's identity
for candles and reference prices (one stream, one ticker fetch, whoever asks), and
nothing else: its orders, fills and balances stay its own."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from sealbot.domain import MarketRules, Pair
from sealbot.engine.budget import Budget
from sealbot.engine.budgeted import BudgetedVenue
from sealbot.engine.candles import feed_key
from sealbot.engine.journal import AccountRecord
from sealbot.engine.market import venue_key
from sealbot.engine.runner import InProcessRunner, RunnerSettings
from sealbot.simex import SimexServer
from sealbot.venues.base import Venue
from sealbot.venues.ccxt_venue import CcxtVenue
from sealbot.venues.paper import PaperVenue

from .simex_env import SimexTime, simex_venue
from .test_engine_shared_prices import _seed

BTC = Pair("BTC", "USDT")
RULES = {BTC: MarketRules(BTC, Decimal("0.01"), Decimal("0.00001"), min_notional=Decimal(5))}
KLINES, TICKER = "/api/v3/klines", "/api/v3/ticker/bookTicker"


def _data(url: str) -> CcxtVenue:
    return CcxtVenue("binance", urls={"api_base": url})


def _paper(url: str | None, **kw: object) -> PaperVenue:
    return PaperVenue(dict(RULES), {"USDT": Decimal(10_000)}, data_venue=_data(url) if url else None, **kw)  # type: ignore[arg-type]


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=0) as sx:
        yield sx


def test_a_paper_venue_has_its_data_venues_identity() -> None:
    live = _data("http://127.0.0.1:1")
    on_live, also_on_live, elsewhere = _paper("http://127.0.0.1:1"), _paper("http://127.0.0.1:1"), _paper(
        "http://127.0.0.1:2")
    for candles in (False, True):
        assert venue_key(on_live, candles=candles) == venue_key(live, candles=candles) == "binance@http://127.0.0.1:1"
        assert venue_key(also_on_live, candles=candles) == venue_key(on_live, candles=candles)
        assert venue_key(elsewhere, candles=candles) != venue_key(on_live, candles=candles)
    # looked through the engine's budget wrapper too
    assert venue_key(BudgetedVenue(on_live, Budget(1000, 60))) == venue_key(live)
    assert feed_key("paper", on_live, by_venue=True) == venue_key(live)


def test_a_paper_venue_with_prices_of_its_own_shares_only_the_candles() -> None:
    async def price(_pair: Pair) -> Decimal:
        return Decimal(1)

    own_prices = _paper("http://127.0.0.1:1", price_source=price)
    assert venue_key(own_prices, candles=True) == "binance@http://127.0.0.1:1"
    assert venue_key(own_prices) != "binance@http://127.0.0.1:1"  # its prices are its own function's
    alone_a, alone_b = _paper(None, price_source=price), _paper(None, price_source=price)
    assert venue_key(alone_a) != venue_key(alone_b)  # no data venue: shares with no one
    assert venue_key(alone_a, candles=True) != venue_key(alone_b, candles=True)


async def test_paper_and_live_accounts_on_one_endpoint_share_market_data_and_nothing_else(
        simex: SimexServer, database_url: str) -> None:
    journal, ids = _seed(database_url, 3)  # three "binance" accounts with a DCA bot on BTC/USDT each
    on_simex = simex.admin.create_account("live", {"USDT": "10000"})
    key = simex.admin.create_key(on_simex["id"])
    papers: dict[str, PaperVenue] = {}

    async def factory(account: AccountRecord) -> Venue:
        if account.id == ids[0]:
            return simex_venue(simex.base_url, str(key["key"]), str(key["secret"]))
        papers[account.id] = _paper(simex.base_url)
        return papers[account.id]

    clock = SimexTime(simex.admin.clock()["now_ms"])
    runner = InProcessRunner(journal, factory, clock=clock,
                             settings=RunnerSettings(background=False, poll_feeds=True, market_ttl=30))
    try:
        for account_id in ids:
            await runner.start_account(account_id)
        accs = [runner.accounts[i] for i in ids]
        feed = f"binance@{simex.base_url}"
        assert [a.feed for a in accs] == [feed] * 3 and [a.market.key for a in accs] == [feed] * 3
        assert runner.hub.streams() == [(feed, BTC)] and runner.hub.subscriber_count(feed, BTC) == 3
        assert runner.prices.fetches == 1  # one reference price for the live and the two paper accounts
        now_ms = simex.admin.set_clock(advance_seconds=120)["now_ms"]
        clock.ms = now_ms
        simex.admin.reset_requests()
        await runner.poll_feeds_once()
        assert simex.admin.request_count(KLINES) == 1  # one stream polled once for all three
        for acc in accs:
            await acc.drain()
        # each paper account's base order is on its own book, with its own funds, never on simex
        a, b = (papers[i] for i in ids[1:])
        assert len(a._fills) == 1 and len(b._fills) == 1 and a._fills[0].client_id != b._fills[0].client_id
        assert all(f.client_id.bot != b._fills[0].client_id.bot for f in a._fills)
        for venue in (a, b):  # each paid for its own fill only
            usdt = (await venue.fetch_balances())["USDT"]
            fill = venue._fills[0]
            assert usdt.free + usdt.used == Decimal(10_000) - fill.price * fill.amount
        assert {o["account_id"] for o in simex.admin.orders()} <= {on_simex["id"]}
    finally:
        await runner.stop()
