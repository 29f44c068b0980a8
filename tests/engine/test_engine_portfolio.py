"""Portfolio valuation: routes through the exchange's markets, exact Decimal values,
unvalued assets named (never guessed), and the refresher writing snapshots."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, localcontext

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from sealbot.custody.errors import CustodyError
from sealbot.domain import MarketRules, Pair
from sealbot.engine.clock import FakeClock
from sealbot.engine.journal import AccountRecord
from sealbot.engine.portfolio import (
    PRECISION,
    VALUE_QUANTUM,
    Leg,
    PortfolioRefresher,
    StorePortfolio,
    Valuation,
    candidate_routes,
    route_price,
    route_text,
    ticker_price,
    value_account,
    value_balances,
)
from sealbot.store import UnitOfWork, make_session_factory, upgrade
from sealbot.store.models import BalanceSnapshot, PortfolioSnapshot
from sealbot.store.repositories.portfolio import PortfolioRepository
from sealbot.venues.base import Balance, Ticker
from sealbot.venues.errors import ExchangeUnavailable, UnknownMarket

from .fakes import FakeVenue

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BTC_USDT, ETH_BTC, XRP_ETH = Pair("BTC", "USDT"), Pair("ETH", "BTC"), Pair("XRP", "ETH")
SIMEX_PAIRS = {BTC_USDT, ETH_BTC, XRP_ETH}

amounts = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1000000"), places=8)
prices = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1000000"), places=8)


def test_the_currency_itself_direct_and_inverse_pairs_are_routes() -> None:
    assert candidate_routes("USDT", "USDT", SIMEX_PAIRS) == [()]
    assert candidate_routes("BTC", "USDT", SIMEX_PAIRS) == [(Leg(BTC_USDT),)]
    assert candidate_routes("USDT", "BTC", SIMEX_PAIRS) == [(Leg(BTC_USDT, invert=True),)]


def test_an_asset_with_no_direct_pair_is_routed_through_bridges_shortest_first() -> None:
    routes = candidate_routes("XRP", "USDT", SIMEX_PAIRS)
    assert [route_text(r) for r in routes] == ["XRP/ETH>ETH/BTC>BTC/USDT"]
    both = candidate_routes("ETH", "USDT", SIMEX_PAIRS | {Pair("ETH", "USDT")})
    assert [route_text(r) for r in both] == ["ETH/USDT", "ETH/BTC>BTC/USDT"]


def test_no_route_when_the_exchange_lists_no_path_or_only_too_long_ones() -> None:
    assert candidate_routes("XRP", "EUR", SIMEX_PAIRS) == []
    assert candidate_routes("XRP", "USDT", SIMEX_PAIRS, max_legs=2) == []
    assert candidate_routes("weird-asset", "USDT", SIMEX_PAIRS) == []


def test_ticker_price_is_the_mid_else_the_last_else_unknown() -> None:
    def t(bid: str | None, ask: str | None, last: str | None) -> Ticker:
        return Ticker(BTC_USDT, *(Decimal(x) if x else None for x in (bid, ask, last)), T0)  # type: ignore[arg-type]

    assert ticker_price(t("99", "101", "150")) == Decimal(100)
    assert ticker_price(t(None, "101", "150")) == Decimal(150)
    assert ticker_price(t("0", "101", "0")) is None
    assert ticker_price(t(None, None, None)) is None


@given(amount=amounts, price=prices)
def test_a_direct_value_is_amount_times_price_exactly(amount: Decimal, price: Decimal) -> None:
    v = value_balances([Balance("BTC", amount, Decimal(0))], "USDT", {"BTC": [(Leg(BTC_USDT),)]}, {BTC_USDT: price})
    assert v.lines[0].price == price
    assert v.lines[0].value == (amount * price).quantize(VALUE_QUANTUM)
    assert v.total == v.lines[0].value and v.unvalued == ()


@given(free=amounts, used=amounts, p1=prices, p2=prices)
def test_a_routed_value_multiplies_and_divides_along_the_legs(free: Decimal, used: Decimal, p1: Decimal,
                                                              p2: Decimal) -> None:
    route = (Leg(ETH_BTC), Leg(Pair("BTC", "EUR"), invert=False))
    v = value_balances([Balance("ETH", free, used)], "EUR", {"ETH": [route]}, {ETH_BTC: p1, Pair("BTC", "EUR"): p2})
    line = v.lines[0]
    assert line.total == free + used
    assert line.price == p1 * p2
    with localcontext() as ctx:
        ctx.prec = 60  # big holdings at big prices need more than the default 28 digits
        assert line.value == ((free + used) * p1 * p2).quantize(VALUE_QUANTUM)
    inverse = value_balances([Balance("USDT", free, used)], "BTC", {"USDT": [(Leg(BTC_USDT, invert=True),)]},
                             {BTC_USDT: p1})
    assert inverse.lines[0].price == Decimal(1) / p1
    # walking the inverse leg back gives the amount again, to the quantum of the values
    assert abs(inverse.lines[0].price * p1 - 1) < Decimal("1E-20")


@given(balances=st.lists(st.tuples(st.sampled_from(["USDT", "BTC", "ETH", "XRP", "DOGE"]), amounts, amounts),
                         max_size=8, unique_by=lambda x: x[0]),
       btc=prices, eth=prices, xrp=prices)
def test_the_total_is_the_exact_sum_of_valued_lines_and_every_other_asset_is_named(
        balances: list[tuple[str, Decimal, Decimal]], btc: Decimal, eth: Decimal, xrp: Decimal) -> None:
    held = [Balance(a, f, u) for a, f, u in balances]
    candidates = {b.asset: candidate_routes(b.asset, "USDT", SIMEX_PAIRS) for b in held}
    v = value_balances(held, "USDT", candidates, {BTC_USDT: btc, ETH_BTC: eth, XRP_ETH: xrp})
    with localcontext() as ctx:  # summed as the valuation sums: Decimal's default 28 digits would round
        ctx.prec = PRECISION  # a value of 29 (1788228842384306299.3000756442, found by CI's run)
        assert v.total == sum((x.value for x in v.lines if x.value is not None), Decimal(0))
    assert set(v.unvalued) == {b.asset for b in held if b.asset == "DOGE"}
    assert all(x.value is None and x.price is None for x in v.lines if x.asset in v.unvalued)
    assert {x.asset for x in v.lines} == {b.asset for b in held}
    usdt = next((x for x in v.lines if x.asset == "USDT"), None)
    if usdt is not None:
        assert usdt.value == usdt.total.quantize(VALUE_QUANTUM) and usdt.route == "="


def test_a_route_with_an_unknown_leg_price_falls_back_to_the_next_route() -> None:
    routes = [(Leg(Pair("ETH", "USDT")),), (Leg(ETH_BTC), Leg(BTC_USDT))]
    assert route_price(routes[0], {}) is None
    v = value_balances([Balance("ETH", Decimal(2))], "USDT", {"ETH": routes},
                       {ETH_BTC: Decimal("0.05"), BTC_USDT: Decimal(40000)})
    assert v.lines[0].route == "ETH/BTC>BTC/USDT" and v.lines[0].value == Decimal(4000)


def test_empty_balances_are_left_out() -> None:
    v = value_balances([Balance("BTC"), Balance("USDT", Decimal(5))], "USDT", {"USDT": [()]}, {})
    assert [x.asset for x in v.lines] == ["USDT"] and v.total == Decimal(5)


class MarketVenue(FakeVenue):
    """A fake exchange listing a few markets with fixed prices."""

    def __init__(self, balances: dict[str, Balance], book: dict[Pair, Decimal | None],
                 failing: set[Pair] | None = None) -> None:
        super().__init__()
        self.balances, self.book, self.failing = balances, book, failing or set()
        self.fetched: list[Pair] = []

    async def load_markets(self) -> dict[Pair, MarketRules]:
        return {p: MarketRules(p, Decimal("0.01"), Decimal("0.0001")) for p in self.book}

    async def fetch_balances(self) -> dict[str, Balance]:
        return dict(self.balances)

    async def fetch_ticker(self, pair: Pair) -> Ticker:
        self.fetched.append(pair)
        if pair in self.failing:
            raise UnknownMarket(self.name, f"{pair} delisted")
        price = self.book[pair]
        return Ticker(pair, None, None, price, T0)


async def test_value_account_fetches_only_the_tickers_its_routes_need() -> None:
    venue = MarketVenue({"ETH": Balance("ETH", Decimal(2)), "USDT": Balance("USDT", Decimal(10))},
                        {BTC_USDT: Decimal(40000), ETH_BTC: Decimal("0.05"), XRP_ETH: Decimal("0.001"),
                         Pair("DOGE", "USDT"): Decimal("0.1")})
    v = await value_account(venue, "USDT")
    assert sorted(p.symbol for p in venue.fetched) == ["BTC/USDT", "ETH/BTC"]
    assert v.total == Decimal(4010) and v.unvalued == ()


async def test_a_failing_ticker_tries_the_next_route_and_an_asset_without_one_is_unvalued() -> None:
    eth_usdt = Pair("ETH", "USDT")
    venue = MarketVenue({"ETH": Balance("ETH", Decimal(1)), "XRP": Balance("XRP", Decimal(100))},
                        {eth_usdt: None, BTC_USDT: Decimal(40000), ETH_BTC: Decimal("0.05"), XRP_ETH: Decimal(1)},
                        failing={XRP_ETH})
    v = await value_account(venue, "USDT")
    eth = next(x for x in v.lines if x.asset == "ETH")
    assert eth.route == "ETH/BTC>BTC/USDT" and eth.value == Decimal(2000)
    assert v.unvalued == ("XRP",) and v.total == Decimal(2000)


@pytest.fixture
def session_factory(database_url: str):  # type: ignore[no-untyped-def]
    upgrade(database_url)
    factory = make_session_factory(database_url)
    yield factory
    factory.kw["bind"].dispose()


def _seed(factory, n: int) -> tuple[int, list[AccountRecord]]:  # type: ignore[no-untyped-def]
    with UnitOfWork(factory) as uow:
        user = uow.users.add("p@example.org", "x")
        PortfolioRepository(uow.session).set_currency(user.id, "BTC")
        accounts = [uow.accounts.add(user.id, "binance", f"a{i}") for i in range(n)]
        return user.id, [AccountRecord(str(a.id), str(user.id), "binance") for a in accounts]


async def test_the_refresher_writes_one_snapshot_per_account_per_pass_at_one_time(session_factory) -> None:  # type: ignore[no-untyped-def]
    _user, accounts = _seed(session_factory, 4)
    book = {BTC_USDT: Decimal(50000), ETH_BTC: Decimal("0.05")}
    venues = {accounts[0].id: MarketVenue({"USDT": Balance("USDT", Decimal(1000), Decimal(500))}, book),
              accounts[1].id: MarketVenue({"ETH": Balance("ETH", Decimal(3)), "ZZZ": Balance("ZZZ", Decimal(1))},
                                          book),
              accounts[2].id: MarketVenue({}, book)}
    broken = {accounts[2].id}

    async def venue_for(account: AccountRecord) -> MarketVenue:
        if account.id in broken:
            raise ExchangeUnavailable("fake", "down")
        if account.id == accounts[3].id:
            raise CustodyError("account 4: its key was destroyed")
        return venues[account.id]

    clock = FakeClock()
    refresher = PortfolioRefresher(lambda: accounts, venue_for, StorePortfolio(session_factory), interval=60,
                                   clock=clock)
    done = await refresher.refresh_once()
    assert set(done) == {accounts[0].id, accounts[1].id}
    assert done[accounts[0].id].total == Decimal("0.03")  # 1500 USDT at 50,000 USDT per BTC
    assert done[accounts[1].id].total == Decimal("0.15") and done[accounts[1].id].unvalued == ("ZZZ",)
    broken.clear()
    clock.advance(60)
    await refresher.refresh_once()
    with session_factory() as s:
        heads = list(s.scalars(sa.select(PortfolioSnapshot).order_by(PortfolioSnapshot.id)))
        lines = list(s.scalars(sa.select(BalanceSnapshot).where(BalanceSnapshot.snapshot_id == heads[1].id)))
    assert len(heads) == 5 and {h.currency for h in heads} == {"BTC"}
    assert heads[0].taken_at == heads[1].taken_at < heads[2].taken_at
    assert heads[1].unvalued == ["ZZZ"]
    assert {(x.asset, x.total, x.value) for x in lines} == {("ETH", Decimal(3), Decimal("0.15")),
                                                           ("ZZZ", Decimal(1), None)}


async def test_the_refresher_loop_keeps_running_at_its_interval(session_factory) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    _user, accounts = _seed(session_factory, 1)
    venue = MarketVenue({"USDT": Balance("USDT", Decimal(1))}, {BTC_USDT: Decimal(50000)})

    async def venue_for(_a: AccountRecord) -> MarketVenue:
        return venue

    clock = FakeClock()
    refresher = PortfolioRefresher(lambda: accounts, venue_for, StorePortfolio(session_factory), interval=120,
                                   clock=clock)
    refresher.start()
    for _ in range(200):
        if refresher.passes >= 3:
            break
        await asyncio.sleep(0)
    await refresher.stop()
    assert refresher.passes >= 3 and clock.slept[:2] == [120, 120]


def test_valuation_is_frozen() -> None:
    v = Valuation("USDT", (), Decimal(0), ())
    with pytest.raises(AttributeError):
        v.total = Decimal(1)  # type: ignore[misc]


def test_old_snapshots_are_thinned_to_the_last_of_each_day_per_account(session_factory) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from sealbot.store.repositories.portfolio import SnapshotLine

    user, accounts = _seed(session_factory, 2)
    line = SnapshotLine("USDT", Decimal(1), Decimal(0), Decimal(1), Decimal(1), Decimal(1), "=")
    day = datetime(2026, 1, 1, tzinfo=UTC)
    with UnitOfWork(session_factory) as uow:
        repo = PortfolioRepository(uow.session)
        for account in accounts:
            for hours in (1, 8, 23, 24 + 2, 24 + 20, 48 + 1, 48 + 5):
                repo.add_snapshot(user, int(account.id), day + timedelta(hours=hours), "BTC", Decimal(hours), [],
                                  [line])
    with UnitOfWork(session_factory) as uow:
        assert PortfolioRepository(uow.session).thin(day + timedelta(hours=48)) == 2 * 3
    with session_factory() as s:
        kept = [(h.account_id, h.total_value) for h in s.scalars(sa.select(PortfolioSnapshot)
                                                                  .order_by(PortfolioSnapshot.id))]
        orphans = s.scalar(sa.select(sa.func.count()).select_from(BalanceSnapshot)
                           .where(BalanceSnapshot.snapshot_id.not_in(sa.select(PortfolioSnapshot.id))))
    values = [Decimal(v) for v in (23, 44, 49, 53)]  # day 1's last, day 2's last, then everything recent
    assert kept == [(int(a.id), v) for a in accounts for v in values]
    assert orphans == 0


class CountingStore:
    def __init__(self) -> None:
        self.thinned: list[datetime] = []

    def currency_of(self, user: str) -> str:
        return "USDT"

    def save(self, account: AccountRecord, taken_at: datetime, valuation: Valuation) -> None:
        pass

    def thin(self, before: datetime) -> int:
        self.thinned.append(before)
        return 0


async def test_the_refresher_thins_once_a_day() -> None:
    from datetime import timedelta

    store = CountingStore()
    clock = FakeClock(start=T0.timestamp())
    refresher = PortfolioRefresher(lambda: [], lambda _a: None, store, clock=clock,  # type: ignore[arg-type,return-value]
                                   full_history_days=30)
    for _ in range(3):
        await refresher.refresh_once()
        clock.advance(3600)
    clock.advance(24 * 3600)
    await refresher.refresh_once()
    assert store.thinned == [T0 - timedelta(days=30), T0 + timedelta(hours=27) - timedelta(days=30)]
    off = PortfolioRefresher(lambda: [], lambda _a: None, store, clock=clock, full_history_days=None)  # type: ignore[arg-type,return-value]
    await off.refresh_once()
    assert len(store.thinned) == 2
