"""Reference prices and 24h volumes for the guard: one shared source per venue, read by
every account.

The guard is pure and synchronous; ``ReferencePrices`` is what feeds it. Reference
prices are market data, not account data: a thousand accounts trading BTC/USDT on one
exchange must not each ask for its ticker (Binance counts the request weight per IP:
1,000 accounts polling a ticker and 24 hourly candles every 30 s spend about 8,000 of
the 6,000 a minute allowed). So the source keeps one entry per (venue, pair) and
fetches it at most once per ``ttl``, however many accounts ask; accounts asking while a
fetch is under way wait for that one fetch.

What "the same venue" means: the exchange *and* the endpoint it is reached at
(``venue_key``), so two simex instances, or a testnet and the real exchange, never
share a price. A paper venue whose prices are its data venue's ticker shares that
venue's identity (``market_venue``); one with no endpoint to tell (fed by a price
function) shares with no one. Under ``sealbot ingest`` the prices come from the broker
(``set``, under the venue identity the ingestor names in each ticker, so an account
reads only its own endpoint's) and the source never fetches (``fetch=False``).

A price is fetched from the venue's ticker (bid/ask/last); the 24 h quote volume from
the last 24 hourly candles, since ccxt's ticker volume fields differ between
exchanges. The candle feed deliberately does not move it: a single trade on an
illiquid pair makes a candle, and the guard must judge against the book, not against
what the bot saw.

Staleness is explicit: an entry older than ``max_age`` (a refresh kept failing, the
ingestor went quiet) is handed to the guard without prices, marked with its age, and
the guard refuses every order on that pair (rule ``reference_price``) until a fresh
price arrives. An account whose pairs have no fresh price keeps reconciling
(``AccountRunner.reconcile``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast
from urllib.parse import urlsplit

from sealbot.domain import Pair
from sealbot.engine.clock import Clock, SystemClock
from sealbot.engine.guard import MarketSnapshot
from sealbot.venues.base import Venue
from sealbot.venues.errors import VenueError

log = logging.getLogger(__name__)

MIN_MAX_AGE = 60.0  # seconds: the default staleness limit is never shorter than this


def default_max_age(ttl: float) -> float:
    """Four refresh intervals (three refreshes may fail in a row), at least a minute."""
    return max(4 * ttl, MIN_MAX_AGE)


def _hosts(node: Any) -> set[str]:
    """Every ``scheme://host:port`` among the URLs of a ccxt ``urls['api']`` tree."""
    if isinstance(node, str):
        parts = urlsplit(node)
        host = parts.netloc.rsplit("@", 1)[-1]  # never a user:password in an identity that is logged
        return {f"{parts.scheme}://{host}"} if host else set()
    if isinstance(node, dict):
        return set().union(*(_hosts(v) for v in node.values())) if node else set()
    return set()


def market_venue(venue: Venue, *, candles: bool = False) -> Venue:
    """The venue ``venue``'s tickers (or, with ``candles``, its candles) really come from:
    budget wrappers are looked through, and so is a paper venue that takes them from a
    data venue (``PaperVenue.price_venue`` / ``data_venue``). Only market data follows
    this: a paper venue's orders and balances stay its own."""
    inner: Any = venue
    while True:
        while hasattr(inner, "inner"):  # BudgetedVenue and the like
            inner = inner.inner
        source = getattr(inner, "data_venue" if candles else "price_venue", None)
        if source is None:
            return cast(Venue, inner)
        inner = source


def venue_key(venue: Venue, *, candles: bool = False) -> str:
    """The identity prices (with ``candles``: candle streams) are shared under: the
    exchange's name and the endpoints its public market data comes from
    (``binance@https://api.binance.com``), found through ``market_venue`` (a paper venue
    on a data venue shares that venue's identity). A venue without endpoints (paper on a
    price function) gets a key of its own, so it shares with nobody."""
    inner: Any = market_venue(venue, candles=candles)
    exchange = getattr(inner, "exchange", None)
    urls = getattr(exchange, "urls", None)
    hosts = _hosts(urls.get("api")) if isinstance(urls, dict) else set()
    hostname = getattr(exchange, "hostname", None)  # ccxt fills "{hostname}" (OKX, Bybit) at request time
    if isinstance(hostname, str) and hostname:
        hosts = {h.replace("{hostname}", hostname) for h in hosts}
    if not hosts:
        return f"{inner.name}@instance:{id(inner):x}"
    return f"{inner.name}@{','.join(sorted(hosts))}"


async def fetch_snapshot(venue: Venue, pair: Pair) -> MarketSnapshot:
    """The pair's ticker and 24 h quote volume (sum of close x volume of the last 24
    hourly candles), as the guard judges by; raises ``VenueError``."""
    ticker = await venue.fetch_ticker(pair)
    hours = await venue.fetch_candles(pair, "1h", limit=24)
    volume = sum((c.close * c.volume for c in hours), Decimal(0))
    return MarketSnapshot(pair, ticker.bid, ticker.ask, ticker.last, volume)


@dataclass(frozen=True, slots=True)
class _Entry:
    snapshot: MarketSnapshot
    at: float  # clock.monotonic() when fetched or received


class ReferencePrices:
    """The guard's market data for every account of one process, shared per venue.

    ``fetches`` counts the ticker fetches made (one per (venue, pair) per ``ttl`` at
    most), ``received`` the snapshots set from outside (the broker)."""

    def __init__(self, clock: Clock | None = None, *, ttl: float = 30.0, max_age: float | None = None,
                 fetch: bool = True) -> None:
        if ttl < 0:
            raise ValueError("market_ttl: must not be negative")
        if max_age is not None and max_age <= 0:
            raise ValueError("market_max_age: must be positive")
        self.clock: Clock = clock or SystemClock()
        self.ttl = ttl
        self.max_age = default_max_age(ttl) if max_age is None else max_age
        self.fetch = fetch
        self.fetches = 0
        self.received = 0
        self._entries: dict[tuple[str, Pair], _Entry] = {}
        self._inflight: dict[tuple[str, Pair], asyncio.Task[None]] = {}

    def key_for(self, exchange: str, venue: Venue) -> str:
        """What an account on ``exchange`` through ``venue`` reads prices under: the
        venue's identity, whether this source fetches or ``sealbot ingest`` publishes the
        prices (it names the venue identity it polled; ``exchange`` is not enough: a
        testnet and the live exchange share a name)."""
        return venue_key(venue)

    # -- reading ---------------------------------------------------------------------
    def snapshot(self, key: str, pair: Pair) -> MarketSnapshot:
        """The pair's snapshot; without prices (and with ``stale_age`` set) when older
        than ``max_age``, so the guard refuses rather than judge by an old price."""
        entry = self._entries.get((key, pair))
        if entry is None:
            return MarketSnapshot(pair)
        age = self.clock.monotonic() - entry.at
        if age > self.max_age:
            return MarketSnapshot(pair, stale_age=age)
        return entry.snapshot

    def fresh(self, key: str, pair: Pair) -> MarketSnapshot | None:
        """The pair's snapshot while it is younger than ``ttl`` (what a refresh would not
        fetch again), else None: for other readers of the same venue's tickers (the
        portfolio refresher) that would otherwise ask the exchange themselves."""
        entry = self._entries.get((key, pair))
        if entry is None or self.clock.monotonic() - entry.at >= self.ttl:
            return None
        return entry.snapshot

    # -- writing ---------------------------------------------------------------------
    def set(self, key: str, snapshot: MarketSnapshot, *, age: float = 0.0) -> None:
        """Adopt a snapshot received from elsewhere (the ingestor's ticker, a test);
        ``age``: how old it already is (seconds since the ingestor fetched it)."""
        self._entries[(key, snapshot.pair)] = _Entry(snapshot, self.clock.monotonic() - max(age, 0.0))
        self.received += 1

    async def refresh(self, key: str, venue: Venue, pairs: Iterable[Pair], *, force: bool = False) -> None:
        """Fetch the pairs whose entry is older than ``ttl`` (all of them with ``force``)
        through ``venue``; a fetch of the same (key, pair) already under way is joined,
        not repeated. A failed fetch is logged and leaves the old entry (which goes
        stale in time). Nothing is fetched when the prices come from the broker."""
        if not self.fetch:
            return
        now = self.clock.monotonic()
        waiting: list[asyncio.Task[None]] = []
        for pair in pairs:
            slot = (key, pair)
            task = self._inflight.get(slot)
            if task is None or task.done():
                entry = self._entries.get(slot)
                if not force and entry is not None and now - entry.at < self.ttl:
                    continue
                task = asyncio.ensure_future(self._fetch(slot, venue))
                self._inflight[slot] = task
                task.add_done_callback(self._forget)
            waiting.append(task)
        for task in waiting:
            # shielded: an account cancelled while it waits (stopped) must not cancel
            # the fetch the other accounts wait for
            await asyncio.shield(task)

    def _forget(self, task: asyncio.Task[None]) -> None:
        for slot in [s for s, t in self._inflight.items() if t is task]:
            del self._inflight[slot]

    async def _fetch(self, slot: tuple[str, Pair], venue: Venue) -> None:
        key, pair = slot
        self.fetches += 1
        try:
            snapshot = await fetch_snapshot(venue, pair)
        except VenueError as exc:
            log.warning("market data %s %s: %s", key.split("@", 1)[0], pair, exc)
            return
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # close(): the runner stops
            # not this fetch's cancel: the venue's account stopped mid-request and ccxt
            # cancelled a future it shares (load_markets); the accounts that joined this
            # fetch must not die of it. Retried at their next poll.
            log.warning("market data %s %s: the request was cancelled under it", key.split("@", 1)[0], pair)
            return
        self._entries[slot] = _Entry(snapshot, self.clock.monotonic())

    async def close(self) -> None:
        """Cancel the fetches still under way (the runner stops)."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class MarketData:
    """One account's view of the shared source: its venue, and the key it reads under.

    Without ``prices`` the view has a source of its own (a lone account, a test)."""

    def __init__(self, venue: Venue, clock: Clock | None = None, ttl: float = 30.0, *,
                 prices: ReferencePrices | None = None, exchange: str | None = None) -> None:
        self.venue = venue
        self.prices = prices or ReferencePrices(clock, ttl=ttl)
        self.key = self.prices.key_for(exchange or venue.name, venue)

    async def refresh(self, pairs: Iterable[Pair], *, force: bool = False) -> None:
        await self.prices.refresh(self.key, self.venue, pairs, force=force)

    def set(self, snapshot: MarketSnapshot) -> None:
        self.prices.set(self.key, snapshot)

    def snapshot(self, pair: Pair) -> MarketSnapshot:
        return self.prices.snapshot(self.key, pair)


__all__ = ["MarketData", "ReferencePrices", "default_max_age", "fetch_snapshot", "market_venue", "venue_key"]
