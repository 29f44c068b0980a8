"""ccxt's throttle stays on and is shaped like the exchange's own limit: a burst within
Binance's minute of request weight goes out at once, sustained overuse is paced.

ccxt's throttler runs on ``time()`` and ``asyncio.sleep`` of its own module; the fake
clock below replaces both there, so the pacing is checked to the millisecond without
waiting a real minute."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import ccxt.async_support as ccxt_async
import pytest
from ccxt.async_support.base import throttler as ccxt_throttler

from sealbot.engine.budgeted import BINANCE_WEIGHTS
from sealbot.simex import SimexServer
from sealbot.venues.ccxt_venue import CcxtVenue
from sealbot.venues.throttle import PUBLISHED_WEIGHT_PER_WINDOW, set_weight_per_window, window_capacity

from .conftest import FakeHandle, FakeSigner, FakeSignRequest

# ccxt's Binance costs: 0.2 per unit of Binance request weight (ccxt binance.py)
BALANCE_COST = 4.0  # GET /api/v3/account, weight 20
ORDER_COST = 0.2  # POST /api/v3/order, weight 1


class FakeTime:
    """Milliseconds that move only when ccxt's throttler sleeps."""

    def __init__(self) -> None:
        self.ms = 1_700_000_000_000.0

    def time(self) -> float:
        return self.ms / 1000

    async def sleep(self, seconds: float) -> None:
        self.ms += seconds * 1000
        await asyncio.sleep(0)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(ccxt_throttler, "time", fake.time)
    monkeypatch.setattr(ccxt_throttler, "asyncio", SimpleNamespace(
        Future=asyncio.Future, ensure_future=asyncio.ensure_future, sleep=fake.sleep))
    return fake


@pytest.fixture
def venue() -> Iterator[CcxtVenue]:
    signed = CcxtVenue("binance", signer=FakeSigner("key-id", "s3cret"), handle=FakeHandle("a"),
                       request_type=FakeSignRequest)
    yield signed


async def _release_times(exchange: Any, clock: FakeTime, costs: list[float]) -> list[float]:
    """Ask the throttle for ``costs`` at once; the fake ms at which each one is let through."""
    released: list[float] = []

    async def one(cost: float) -> None:
        await exchange.throttle(cost)
        released.append(clock.ms)

    await asyncio.gather(*(one(c) for c in costs))
    return released


def test_the_throttle_is_on_and_holds_binances_minute_of_request_weight(venue: CcxtVenue) -> None:
    exchange = venue.exchange
    assert exchange.enableRateLimit
    window_ms, units = window_capacity(exchange)
    assert window_ms == 60_000
    # ccxt's units are 0.2 weight: 1,200 units are Binance's 6,000 weight per minute
    assert units / ORDER_COST == PUBLISHED_WEIGHT_PER_WINDOW["binance"] == 6000
    # the unsigned (market data) venue is throttled the same way
    assert window_capacity(CcxtVenue("binance").exchange) == (60_000, 1200)
    assert window_capacity(CcxtVenue("kucoin").exchange) == (30_000, 4000)


def test_ccxt_prices_the_engines_requests_as_the_engine_budgets_them(venue: CcxtVenue) -> None:
    """Both limiters count the same weight: ccxt's cost is 0.2 x Binance's weight for the
    endpoints behind the engine's venue calls."""
    api = venue.exchange.describe()["api"]
    ccxt_cost = {
        "load_markets": api["public"]["get"]["exchangeInfo"]["cost"],
        "fetch_balances": api["private"]["get"]["account"]["cost"],
        "create_order": api["private"]["post"]["order"]["cost"],
        "fetch_order": api["private"]["get"]["order"]["cost"],
        "fetch_open_orders": api["private"]["get"]["openOrders"]["cost"],
        "fetch_open_orders_all": api["private"]["get"]["openOrders"]["noSymbol"],
        "fetch_my_trades": api["private"]["get"]["myTrades"]["cost"],
    }
    assert {what: round(cost * 5, 6) for what, cost in ccxt_cost.items()} == {
        what: BINANCE_WEIGHTS[what] for what in ccxt_cost}


async def test_a_burst_within_the_minute_is_not_delayed(venue: CcxtVenue, clock: FakeTime) -> None:
    start = clock.ms
    # 150 balance fetches and 2,995 orders: 3,000 + 2,995 of the minute's 6,000 weight
    # (ccxt adds the costs as floats: 3,000 x 0.2 comes out a hair above 600, so a burst
    # of exactly the whole minute may see its last request wait)
    released = await _release_times(venue.exchange, clock, [BALANCE_COST] * 150 + [ORDER_COST] * 2995)
    assert len(released) == 3145
    assert max(released) == start
    # and the next balance fetch does not fit: it waits for the window to move on
    assert await _release_times(venue.exchange, clock, [BALANCE_COST]) == [pytest.approx(start + 60_000)]


async def test_an_order_right_after_a_balance_fetch_goes_out_at_once(venue: CcxtVenue, clock: FakeTime) -> None:
    """The signal path: balances, then the order. ccxt's default bucket (capacity 1) held
    the order until the balance fetch's 4 units had leaked out, 200 ms."""
    start = clock.ms
    assert await _release_times(venue.exchange, clock, [BALANCE_COST, ORDER_COST]) == [start, start]

    default = ccxt_async.binance({"enableRateLimit": True})  # what CcxtVenue built before
    try:
        released = await _release_times(default, clock, [BALANCE_COST, ORDER_COST])
        assert released[1] - released[0] >= 4 * default.rateLimit == 200
    finally:
        await default.close()


async def test_sustained_overuse_is_paced_to_the_published_weight_per_minute(
        venue: CcxtVenue, clock: FakeTime) -> None:
    start = clock.ms
    # three minutes' worth of balance fetches at once: 900 x 20 = 18,000 weight
    released = await _release_times(venue.exchange, clock, [BALANCE_COST] * 900)
    assert released == sorted(released)
    # the first minute's weight at once, then each request waits for the one 300 before it
    # (of the same cost) to leave the window
    assert released[299] == start
    assert released[300] == pytest.approx(start + 60_000)
    assert released[600] == pytest.approx(start + 120_000)
    # in no 60-second window more than 6,000 weight (300 requests of 20)
    for i in range(len(released) - 300):
        assert released[i + 300] - released[i] >= 60_000 - 1e-6


def test_another_limit_scales_the_window_and_is_not_compounded(venue: CcxtVenue) -> None:
    set_weight_per_window(venue.exchange, 12_000)
    set_weight_per_window(venue.exchange, 12_000)
    assert window_capacity(venue.exchange) == (60_000, pytest.approx(2400))
    assert window_capacity(CcxtVenue("binance", weight_per_window=3000).exchange) == (60_000, pytest.approx(600))
    with pytest.raises(ValueError, match="positive"):
        set_weight_per_window(venue.exchange, 0)
    with pytest.raises(ValueError, match="no published request window"):
        set_weight_per_window(CcxtVenue("bybit").exchange, 1000)


def test_exchanges_without_one_window_keep_ccxts_default_bucket() -> None:
    for exchange_id in ("bybit", "okx"):
        exchange = CcxtVenue(exchange_id).exchange
        assert exchange.enableRateLimit
        assert exchange.throttler.config["algorithm"] == "leakyBucket"


async def test_a_burst_on_simex_passes_the_throttle_without_waiting() -> None:
    """End to end over HTTP: 20 balance fetches and 20 orders from one account. ccxt's
    default bucket would have held them at least 20 x 200 ms + 20 x 10 ms = 4.2 s; the
    throttle is consulted for every request (its window records them) and waits for none.
    Measured on the shared 2-core machine: about 1 ms in the throttle for all 40."""
    from decimal import Decimal

    from sealbot.domain import ClientOrderId, Order, OrderType, Pair, Side

    with SimexServer(speed=0) as sx:
        account = sx.admin.create_account("throttle", {"USDT": "100000"})
        key = sx.admin.create_key(int(account["id"]))
        venue = CcxtVenue("binance", signer=FakeSigner(key["key"], key["secret"]), handle=FakeHandle("a"),
                          request_type=FakeSignRequest, urls={"api_base": sx.base_url})
        exchange = venue.exchange
        waited: list[float] = []
        original = exchange.throttle

        async def timed(cost: Any = None) -> Any:
            t0 = time.perf_counter()
            try:
                return await original(cost)
            finally:
                waited.append(time.perf_counter() - t0)

        exchange.throttle = timed
        try:
            await venue.load_markets()
            waited.clear()
            exchange.throttler.timestamps.clear()
            btc = Pair("BTC", "USDT")
            for i in range(20):
                await venue.fetch_balances()
                await venue.create_order(Order(ClientOrderId("T1", 1, f"b{i}"), btc, Side.BUY, OrderType.MARKET,
                                               Decimal("0.0002")))
        finally:
            await venue.close()
    costs = [entry["cost"] for entry in exchange.throttler.timestamps]
    assert costs == [BALANCE_COST, ORDER_COST] * 20
    assert len(waited) == 40
    assert sum(waited) < 1.0  # vs >= 4.2 s with ccxt's default bucket


def test_the_venue_reports_the_exchanges_count_and_retry_after() -> None:
    from sealbot.venues.ccxt_venue import RateReport

    binance = CcxtVenue("binance")
    assert binance.rate_report() == RateReport(None, None)  # no answer yet
    binance.exchange.last_response_headers = {"X-MBX-USED-WEIGHT-1M": "1234", "Retry-After": "17"}
    assert binance.rate_report() == RateReport(1234, 17.0)
    binance.exchange.last_response_headers = {"x-mbx-used-weight-1m": "40"}  # HTTP/2 sends lower case
    assert binance.rate_report() == RateReport(40, None)
    kucoin = CcxtVenue("kucoin")
    kucoin.exchange.last_response_headers = {"X-MBX-USED-WEIGHT-1M": "40", "Retry-After": "x"}
    assert kucoin.rate_report() == RateReport(None, None)
