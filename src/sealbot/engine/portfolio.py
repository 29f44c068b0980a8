"""Portfolio refresher: every linked account's balances, valued in its owner's currency.

The arithmetic is pure and separate from the I/O, so it can be tested exhaustively:

* ``candidate_routes(asset, currency, pairs)`` lists the ways an asset can be priced in
  the currency with the exchange's own markets: the asset itself, a direct pair (either
  way round), or up to three legs through bridge assets (``USDT``, ``BTC``, ``ETH``, ...).
  Shorter routes come first.
* ``ticker_price(ticker)`` is the order book mid when both sides are quoted, else the
  last trade, else ``None``.
* ``value_balances(balances, currency, candidates, prices)`` values each asset by its
  first route whose every leg has a price; an asset with none is listed as *unvalued*,
  never guessed (a USD price is not a USDT price).

``PortfolioRefresher`` is the imperative shell: per account, fetch balances and only the
tickers the routes need (through the ``Venue`` interface, so the request budget and
simex apply), value, and hand the result to a ``PortfolioStore``. One pass uses one
timestamp for every account, so the history of all accounts lines up.

Tickers are market data, not account data: within one pass they are shared per venue
identity (``engine.market.venue_key``: the exchange and its endpoint) by
``RoundTickers``, so 1,000 accounts on one exchange holding BTC cost one BTC/USDT ticker
request per pass, not 1,000; two endpoints (two simex instances, a testnet) never share.
A reference price the guard's ``ReferencePrices`` fetched for the same venue less than
its ``ttl`` ago is used instead of a request. An account whose
exchange fails is skipped for that pass (logged), the others are still refreshed. Once a
day, snapshots older than ``full_history_days`` are thinned to one per account per day.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Context, Decimal, localcontext
from typing import Final, Protocol

from sqlalchemy.orm import Session, sessionmaker

from sealbot.domain import Pair
from sealbot.domain.errors import SealbotError
from sealbot.domain.money import ZERO
from sealbot.engine.clock import Clock, SystemClock
from sealbot.engine.journal import AccountRecord
from sealbot.engine.market import ReferencePrices, venue_key
from sealbot.store import UnitOfWork
from sealbot.store.repositories.portfolio import PortfolioRepository, SnapshotLine
from sealbot.venues.base import Balance, Ticker, Venue
from sealbot.venues.errors import VenueError

log = logging.getLogger(__name__)

# Assets tried, in this order, as the middle of a two-leg route.
DEFAULT_BRIDGES: Final = ("USDT", "BTC", "USDC", "ETH", "BNB", "EUR", "USD")
VALUE_QUANTUM: Final = Decimal("1E-10")  # values are kept to 10 places of the valuation currency
PRECISION: Final = 60  # significant digits for valuation arithmetic (the default 28 cannot quantize big values)
PRICE_CONTEXT: Final = Context(prec=28)  # a route's price is kept to 28 significant digits


@dataclass(frozen=True, slots=True)
class Leg:
    """One ticker of a route: ``pair``'s price converts base into quote; ``invert`` walks
    it the other way (quote into base, i.e. divide by the price)."""

    pair: Pair
    invert: bool = False

    def __str__(self) -> str:
        return f"1/{self.pair.symbol}" if self.invert else self.pair.symbol


Route = tuple[Leg, ...]  # empty: the asset is the valuation currency itself


def route_text(route: Route) -> str:
    return ">".join(str(leg) for leg in route) if route else "="


def _leg(src: str, dst: str, pairs: frozenset[Pair]) -> Leg | None:
    """A ticker that converts ``src`` into ``dst``, if the exchange lists one."""
    try:
        direct, inverse = Pair(src, dst), Pair(dst, src)
    except ValueError:  # not an asset symbol a Pair can hold: no market can exist
        return None
    if direct in pairs:
        return Leg(direct)
    if inverse in pairs:
        return Leg(inverse, invert=True)
    return None


def candidate_routes(asset: str, currency: str, pairs: Iterable[Pair],
                     bridges: Sequence[str] = DEFAULT_BRIDGES, max_legs: int = 3) -> list[Route]:
    """Every route from ``asset`` to ``currency`` of at most ``max_legs`` tickers whose
    intermediate assets are ``bridges``, best first: fewer legs first, then in
    ``bridges`` order (e.g. ``XRP/ETH>ETH/BTC>BTC/USDT`` when only those markets exist)."""
    if asset == currency:
        return [()]
    listed = frozenset(pairs)
    routes: list[Route] = []

    def walk(at: str, path: Route, seen: frozenset[str]) -> None:
        if len(path) >= max_legs:
            return
        last = _leg(at, currency, listed)
        if last is not None:
            routes.append((*path, last))
        for bridge in bridges:
            if bridge in seen or bridge == currency:
                continue
            leg = _leg(at, bridge, listed)
            if leg is not None:
                walk(bridge, (*path, leg), seen | {bridge})

    walk(asset, (), frozenset({asset}))
    routes.sort(key=len)  # stable: within one length, bridge preference is kept
    return routes


def ticker_price(ticker: Ticker) -> Decimal | None:
    """Order book mid when both sides are quoted, else the last trade; None when neither."""
    if ticker.bid is not None and ticker.ask is not None and ticker.bid > 0 and ticker.ask > 0:
        return (ticker.bid + ticker.ask) / 2
    if ticker.last is not None and ticker.last > 0:
        return ticker.last
    return None


def route_price(route: Route, prices: Mapping[Pair, Decimal]) -> Decimal | None:
    """The price of one unit of the route's start asset in its end asset; None when a
    leg's price is unknown (or not positive)."""
    price = Decimal(1)
    with localcontext() as ctx:
        ctx.prec = PRECISION
        for leg in route:
            p = prices.get(leg.pair)
            if p is None or p <= 0:
                return None
            price = price / p if leg.invert else price * p
    return PRICE_CONTEXT.plus(price)  # 28 significant digits: the value is computed from exactly this price


@dataclass(frozen=True, slots=True)
class ValuedBalance:
    asset: str
    free: Decimal
    used: Decimal
    total: Decimal
    price: Decimal | None  # one unit of ``asset`` in the valuation currency
    value: Decimal | None  # ``total * price``, to ``VALUE_QUANTUM``; None = could not be valued
    route: str | None  # e.g. ``ETH/BTC>BTC/USDT``; ``=`` for the currency itself


@dataclass(frozen=True, slots=True)
class Valuation:
    """One account's holdings in ``currency``. ``total`` sums the valued lines only;
    ``unvalued`` names the assets that could not be priced, so a total is never
    silently incomplete."""

    currency: str
    lines: tuple[ValuedBalance, ...]
    total: Decimal
    unvalued: tuple[str, ...]


def value_balances(balances: Iterable[Balance], currency: str, candidates: Mapping[str, Sequence[Route]],
                   prices: Mapping[Pair, Decimal]) -> Valuation:
    """Value every balance by its first route with all prices known. Assets holding
    nothing are left out; an asset with no usable route is listed in ``unvalued``."""
    lines: list[ValuedBalance] = []
    total, unvalued = ZERO, []
    for b in sorted(balances, key=lambda x: x.asset):
        if b.total == 0:
            continue
        price: Decimal | None = None
        used_route: Route | None = None
        for route in candidates.get(b.asset, ()):
            price = route_price(route, prices)
            if price is not None:
                used_route = route
                break
        if price is None or used_route is None:
            unvalued.append(b.asset)
            lines.append(ValuedBalance(b.asset, b.free, b.used, b.total, None, None, None))
            continue
        with localcontext() as ctx:
            ctx.prec = PRECISION
            value = (b.total * price).quantize(VALUE_QUANTUM)
            total += value
        lines.append(ValuedBalance(b.asset, b.free, b.used, b.total, price, value, route_text(used_route)))
    return Valuation(currency, tuple(lines), total, tuple(unvalued))


def needed_pairs(candidates: Mapping[str, Sequence[Route]], prices: Mapping[Pair, Decimal | None],
                 tried: set[Pair]) -> set[Pair]:
    """The pairs still to fetch: for each asset not yet priceable, the untried legs of its
    first route that is not already known to fail."""
    want: set[Pair] = set()
    for routes in candidates.values():
        for route in routes:
            legs = [leg.pair for leg in route]
            if any(p in tried and prices.get(p) is None for p in legs):
                continue  # this route is dead: try the next one
            missing = [p for p in legs if p not in tried]
            want.update(missing)
            break  # the first live route is enough (if its legs are all known, nothing to fetch)
    return want


class PortfolioStore(Protocol):
    def currency_of(self, user: str) -> str: ...

    def save(self, account: AccountRecord, taken_at: datetime, valuation: Valuation) -> None: ...

    def thin(self, before: datetime) -> int:
        """Keep one snapshot per account per day before ``before``; how many were deleted."""


class StorePortfolio:
    """``PortfolioStore`` on sealbot's database: one transaction per account snapshot."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def currency_of(self, user: str) -> str:
        with UnitOfWork(self.session_factory) as uow:
            return PortfolioRepository(uow.session).currency(int(user))

    def save(self, account: AccountRecord, taken_at: datetime, valuation: Valuation) -> None:
        lines = [SnapshotLine(x.asset, x.free, x.used, x.total, x.price, x.value, x.route) for x in valuation.lines]
        with UnitOfWork(self.session_factory) as uow:
            PortfolioRepository(uow.session).add_snapshot(int(account.user), int(account.id), taken_at,
                                                          valuation.currency, valuation.total, valuation.unvalued,
                                                          lines)

    def thin(self, before: datetime) -> int:
        with UnitOfWork(self.session_factory) as uow:
            return PortfolioRepository(uow.session).thin(before)


PriceOf = Callable[[Pair], Awaitable[Decimal | None]]
"""A pair's price (``ticker_price``) or None when it has none or the exchange refused it."""


async def fetch_price(venue: Venue, pair: Pair) -> Decimal | None:
    """``pair``'s ticker price through ``venue``; a refused ticker has no price."""
    try:
        return ticker_price(await venue.fetch_ticker(pair))
    except VenueError as exc:
        log.info("portfolio: no ticker for %s (%s)", pair, type(exc).__name__)
        return None


class RoundTickers:
    """The ticker prices of one refresh pass, shared per venue identity: each (venue,
    pair) is asked for at most once per pass, whichever account's venue asks (a refused
    ticker too: it counts as no price for every account of the pass). With ``prices``,
    a reference price of the same venue younger than its ``ttl`` is used instead.

    ``fetched`` counts the ticker requests made, ``reused`` the reference prices used.
    A pass values its accounts one after the other, so a plain dict is enough."""

    def __init__(self, prices: ReferencePrices | None = None) -> None:
        self.prices = prices
        self.fetched = 0
        self.reused = 0
        self._known: dict[tuple[str, Pair], Decimal | None] = {}

    def price_of(self, venue: Venue) -> PriceOf:
        """What ``value_account`` asks for prices through, for an account on ``venue``."""
        key = venue_key(venue)

        async def price(pair: Pair) -> Decimal | None:
            slot = (key, pair)
            if slot not in self._known:
                self._known[slot] = await self._price(key, venue, pair)
            return self._known[slot]

        return price

    async def _price(self, key: str, venue: Venue, pair: Pair) -> Decimal | None:
        held = self.prices.fresh(key, pair) if self.prices is not None else None
        if held is not None and held.reference_price is not None:
            self.reused += 1
            return held.reference_price
        self.fetched += 1
        return await fetch_price(venue, pair)


async def value_account(venue: Venue, currency: str, bridges: Sequence[str] = DEFAULT_BRIDGES,
                        max_rounds: int = 4, *, price_of: PriceOf | None = None) -> Valuation:
    """Fetch ``venue``'s balances and the tickers needed to value them in ``currency``.

    Only the first live route of each asset is fetched; when a ticker has no price the
    next route is tried (at most ``max_rounds`` rounds). A ticker the exchange refuses
    counts as having no price. Prices come through ``price_of`` when given (a pass's
    ``RoundTickers``), else each from ``venue``'s ticker."""
    balances = [b for b in (await venue.fetch_balances()).values() if b.total != 0]
    if not balances:
        return Valuation(currency, (), ZERO, ())
    pairs = (await venue.load_markets()).keys()
    candidates = {b.asset: candidate_routes(b.asset, currency, pairs, bridges) for b in balances}
    prices: dict[Pair, Decimal | None] = {}
    tried: set[Pair] = set()
    for _ in range(max_rounds):
        want = needed_pairs(candidates, prices, tried)
        if not want:
            break
        for pair in sorted(want, key=lambda p: p.symbol):
            tried.add(pair)
            prices[pair] = await price_of(pair) if price_of is not None else await fetch_price(venue, pair)
    known = {p: v for p, v in prices.items() if v is not None}
    return value_balances(balances, currency, candidates, known)


class PortfolioRefresher:
    """Refresh every account's snapshot every ``interval`` seconds (see module docstring).

    ``prices``: the runner's reference prices, whose fresh entries save ticker requests.
    ``tickers_fetched`` / ``tickers_reused`` count over all passes (``RoundTickers``)."""

    def __init__(self, accounts: Callable[[], list[AccountRecord]],
                 venue_for: Callable[[AccountRecord], Awaitable[Venue]], store: PortfolioStore, *,
                 interval: float = 300.0, clock: Clock | None = None,
                 bridges: Sequence[str] = DEFAULT_BRIDGES, full_history_days: int | None = 30,
                 prices: ReferencePrices | None = None) -> None:
        self.accounts, self.venue_for, self.store, self.prices = accounts, venue_for, store, prices
        self.interval, self.clock, self.bridges = interval, clock or SystemClock(), tuple(bridges)
        self.full_history_days = full_history_days
        self._task: asyncio.Task[None] | None = None
        self._thinned_on: date | None = None
        self.passes = 0
        self.tickers_fetched = 0
        self.tickers_reused = 0

    async def refresh_account(self, account: AccountRecord, taken_at: datetime,
                              tickers: RoundTickers | None = None) -> Valuation:
        currency = self.store.currency_of(account.user)
        venue = await self.venue_for(account)
        price_of = tickers.price_of(venue) if tickers is not None else None
        valuation = await value_account(venue, currency, self.bridges, price_of=price_of)
        self.store.save(account, taken_at, valuation)
        return valuation

    async def refresh_once(self) -> dict[str, Valuation]:
        """One pass over every account; the valuations written, by account id."""
        taken_at = self.clock.now()
        tickers = RoundTickers(self.prices)  # this pass's tickers, shared per venue
        done: dict[str, Valuation] = {}
        for account in self.accounts():
            try:
                done[account.id] = await self.refresh_account(account, taken_at, tickers)
            except SealbotError as exc:  # exchange down, key revoked meanwhile, ...: the others still go
                log.warning("portfolio: account %s not refreshed: %s", account.id, exc)
        self.passes += 1
        self.tickers_fetched += tickers.fetched
        self.tickers_reused += tickers.reused
        self._thin_daily(taken_at)
        return done

    def _thin_daily(self, now: datetime) -> None:
        """Once a day: snapshots older than ``full_history_days`` thinned to one per day."""
        if self.full_history_days is None or self._thinned_on == now.date():
            return
        self._thinned_on = now.date()
        deleted = self.store.thin(now - timedelta(days=self.full_history_days))
        if deleted:
            log.info("portfolio: %d old snapshots thinned to one per day", deleted)

    async def run(self) -> None:
        while True:
            try:
                await self.refresh_once()
            except Exception:  # a bad pass must not end the refresher for good; it is logged, not hidden
                log.exception("portfolio: refresh pass failed")
            await self.clock.sleep(self.interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="portfolio")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
