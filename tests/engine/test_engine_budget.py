"""Budgets wait instead of overshooting, and obey the exchange when it says stop."""

from __future__ import annotations

import asyncio

import pytest

from sealbot.engine.budget import BAN_BACKOFF_START, Budget, Budgets, RateLimit
from sealbot.engine.clock import FakeClock


def fresh_clock() -> FakeClock:
    return FakeClock(start=600.0)  # aligned on a minute: windows start at 600


async def test_fifty_orders_per_ten_seconds_then_the_51st_waits_for_the_next_window() -> None:
    clock = fresh_clock()
    budget = Budgets(clock, margin=1.0).for_account("acc")
    for _ in range(50):
        assert await budget.acquire() == 0.0
    assert await budget.acquire() == pytest.approx(10.0)
    assert clock.monotonic() == pytest.approx(610.0)


async def test_the_daily_order_limit_holds_across_ten_second_windows() -> None:
    clock = fresh_clock()
    budget = Budget("acc", [RateLimit(5, 10.0), RateLimit(12, 86_400.0)], clock)
    for _ in range(12):
        await budget.acquire()
    start = clock.monotonic()
    await budget.acquire()
    # 13th order waits for the next day, not for the next 10 s window
    assert clock.monotonic() == pytest.approx(86_400.0)
    assert clock.monotonic() - start > 80_000


async def test_many_bots_sharing_one_ip_never_exceed_the_weight_per_minute() -> None:
    clock = fresh_clock()
    budget = Budgets(clock).for_ip("10.0.0.1")
    spent: dict[float, int] = {}

    async def bot() -> None:
        for _ in range(20):
            await budget.acquire(20)
            window = (clock.monotonic() // 60) * 60
            spent[window] = spent.get(window, 0) + 20

    await asyncio.gather(*(bot() for _ in range(30)))  # 12,000 weight wanted
    assert sum(spent.values()) == 12_000
    assert max(spent.values()) <= 5400  # 6000 with a 10 % margin
    assert len(spent) >= 3


async def test_a_429_blocks_for_retry_after() -> None:
    clock = fresh_clock()
    budget = Budgets(clock).for_ip("ip")
    budget.rate_limited(retry_after=7.0)
    assert not budget.try_acquire()
    assert await budget.acquire() == pytest.approx(7.0)


async def test_a_418_backs_off_hard_and_doubles_on_a_repeat() -> None:
    clock = fresh_clock()
    budget = Budgets(clock).for_ip("ip")
    budget.banned(retry_after=None)
    assert await budget.acquire() == pytest.approx(BAN_BACKOFF_START)
    budget.banned(retry_after=5.0)
    assert await budget.acquire() == pytest.approx(2 * BAN_BACKOFF_START)
    budget.banned(retry_after=10_000.0)  # the exchange's own figure wins when longer
    assert await budget.acquire() == pytest.approx(10_000.0)


async def test_the_exchanges_used_weight_header_is_adopted() -> None:
    clock = fresh_clock()
    budget = Budget("ip", [RateLimit(100, 60.0)], clock, wall=clock.monotonic)  # the test clock is the wall
    clock.advance(5.0)
    budget.observe_used(95)
    assert budget.try_acquire(5)
    assert not budget.try_acquire(1)


async def test_on_a_replay_clock_the_exchanges_wall_minute_count_is_not_adopted() -> None:
    """A replayed or simulated clock's windows are not the exchange's minutes: adopting
    its count would wait for a window end the replay may never reach (it hung parity)."""
    clock = fresh_clock()
    budget = Budget("ip", [RateLimit(100, 60.0)], clock)
    clock.advance(5.0)
    budget.observe_used(95)
    assert budget.try_acquire(100)


async def test_a_count_read_just_after_the_window_turned_is_not_carried_into_it() -> None:
    """An answer read in the new window's first seconds may count the old window."""
    clock = fresh_clock()
    budget = Budget("ip", [RateLimit(100, 60.0)], clock, wall=clock.monotonic)
    clock.advance(60.5)  # 0.5 s into the next minute
    budget.observe_used(95)
    assert budget.try_acquire(100)


async def test_a_request_larger_than_any_window_is_refused_rather_than_waiting_forever() -> None:
    budget = Budget("ip", [RateLimit(10, 60.0)], fresh_clock())
    with pytest.raises(ValueError, match="never fit"):
        await budget.acquire(11)


def test_budgets_are_shared_per_ip_and_per_account_and_separate_between_them() -> None:
    budgets = Budgets(fresh_clock(), margin=1.0, orders_per_10s=2)
    assert budgets.for_account("a") is budgets.for_account("a")
    assert budgets.for_account("a") is not budgets.for_account("b")
    a = budgets.for_account("a")
    assert a.try_acquire() and a.try_acquire() and not a.try_acquire()
    assert budgets.for_account("b").try_acquire()


async def test_a_429_without_retry_after_waits_for_the_short_window_not_the_day() -> None:
    clock = fresh_clock()
    budget = Budgets(clock).for_account("acc")
    assert budget.try_acquire()
    clock.advance(3.0)
    budget.rate_limited(retry_after=None)
    assert await budget.acquire() == pytest.approx(7.0)


async def test_every_venue_call_draws_its_weight_and_a_429_blocks_the_whole_ip() -> None:
    from sealbot.domain import Pair
    from sealbot.engine.budgeted import BINANCE_WEIGHTS, BudgetedVenue
    from sealbot.venues.errors import RateLimited

    from .fakes import FakeVenue

    clock = fresh_clock()
    budget = Budget("ip", [RateLimit(50, 60.0)], clock)
    inner = FakeVenue()
    inner.name = "binance"
    venue = BudgetedVenue(inner, budget)
    btc = Pair("BTC", "USDT")
    await venue.fetch_my_trades(btc)  # 20
    await venue.fetch_my_trades(btc)  # 40
    assert clock.slept == []
    await venue.fetch_my_trades(btc)  # 60 > 50: waits for the next minute
    assert clock.slept == [pytest.approx(60.0)]
    assert budget.limits[0].used == BINANCE_WEIGHTS["fetch_my_trades"]

    async def limited(_pair: Pair) -> object:
        raise RateLimited("binance", "rate limited by the exchange; slow down")

    inner.fetch_ticker = limited  # type: ignore[assignment,method-assign]
    with pytest.raises(RateLimited):
        await venue.fetch_ticker(btc)
    assert budget.blocked_until > clock.monotonic()


class BootClock(FakeClock):
    """Like the process's real clocks: monotonic time counts from boot (here 31 s off the
    minute boundaries), the exchange counts its minutes on wall time (``wall_seconds``)."""

    def monotonic(self) -> float:
        return self.t + 31.0

    def wall_seconds(self) -> float:
        return self.t


async def test_windows_follow_the_exchanges_wall_clock_minutes_not_the_monotonic_clock() -> None:
    clock = BootClock(start=661.0)  # wall time 1 s into the exchange minute 660-720
    budget = Budget("ip", [RateLimit(5400, 60.0)], clock, wall=clock.wall_seconds)
    spent: dict[float, int] = {}

    async def request(weight: int) -> None:
        await budget.acquire(weight)
        minute = (clock.wall_seconds() // 60) * 60
        spent[minute] = spent.get(minute, 0) + weight

    for _ in range(270):  # the minute's whole budget at wall 661
        await request(20)
    # 30 s later the monotonic clock is past a minute boundary (661 + 31 + 30 = 722), the
    # exchange's minute is not: what is asked now waits for wall 720, not granted at once
    clock.advance(30.0)
    await request(20)
    assert clock.wall_seconds() == pytest.approx(720.0)
    assert spent == {660.0: 5400, 720.0: 20}


def test_the_engines_system_clock_budgets_count_on_wall_time() -> None:
    import time

    from sealbot.engine.budget import wall_time_of
    from sealbot.engine.clock import SystemClock

    assert wall_time_of(SystemClock()) is time.time
    fake = FakeClock()
    assert wall_time_of(fake) == fake.monotonic
    budget = Budgets().for_ip("ip")  # the engine's default clock
    before = time.time()
    assert budget.try_acquire(20)
    after = time.time()
    assert budget.limits[0].start in {(before // 60) * 60, (after // 60) * 60}


async def test_the_budget_adopts_the_exchanges_count_and_its_retry_after() -> None:
    from sealbot.engine.budgeted import BudgetedVenue
    from sealbot.venues.ccxt_venue import RateReport
    from sealbot.venues.errors import RateLimited

    from .fakes import FakeVenue

    class Reporting(FakeVenue):
        report = RateReport(None, None)

        def rate_report(self) -> RateReport:
            return self.report

    clock = fresh_clock()
    clock.advance(5.0)
    budget = Budget("ip", [RateLimit(1000, 60.0)], clock, wall=clock.monotonic)  # the test clock is the wall
    inner = Reporting()
    inner.name = "binance"
    venue = BudgetedVenue(inner, budget)
    inner.report = RateReport(700, None)  # other clients on the IP used 700 this minute
    await venue.fetch_balances()
    assert budget.limits[0].used == 700

    async def limited() -> object:
        inner.report = RateReport(1003, 17.0)
        raise RateLimited("binance", "rate limited by the exchange; slow down")

    inner.fetch_balances = limited  # type: ignore[assignment,method-assign]
    with pytest.raises(RateLimited):
        await venue.fetch_balances()
    assert budget.limits[0].used == 1003
    assert budget.blocked_until == pytest.approx(60.0 + 600.0)  # a 429: the rest of the minute

    async def banned() -> object:
        inner.report = RateReport(1003, 7200.0)
        raise RateLimited("binance", "banned by the exchange (418)")

    inner.fetch_balances = banned  # type: ignore[assignment,method-assign]
    with pytest.raises(RateLimited):
        await venue.fetch_balances()
    # a 418: the ban's length as the exchange gave it, not the budget's 2 minutes
    assert budget.blocked_until == pytest.approx(clock.monotonic() + 7200.0)


async def test_on_simex_the_ip_count_reaches_the_budget_and_a_429_blocks_the_minute() -> None:
    """Over HTTP: simex's X-MBX-USED-WEIGHT-1M becomes the budget's count, and its 429
    blocks until its Retry-After, the minute's end. Simex counts on wall-clock minutes like the budget; the test
    starts a few seconds into one so that both stay in the same minute."""
    import time

    from sealbot.engine.budgeted import BudgetedVenue
    from sealbot.engine.clock import SystemClock
    from sealbot.simex import SimexServer
    from sealbot.venues.errors import RateLimited

    from .simex_env import simex_venue

    second = time.time() % 60
    if not 3 <= second <= 45:
        await asyncio.sleep((63 - second) % 60)
    with SimexServer(speed=0, weight_limit=50) as sx:
        account = sx.admin.create_account("budget", {"USDT": "1000"})
        key = sx.admin.create_key(int(account["id"]))
        budget = Budget("ip", [RateLimit(5400, 60.0)], SystemClock())
        venue = BudgetedVenue(simex_venue(sx.base_url, key["key"], key["secret"]), budget)
        try:
            await venue.load_markets()  # 20, simex's count
            budget.limits[0].used = 0  # forget our own count: what remains is simex's
            await venue.fetch_balances()  # 40 in all
            assert budget.limits[0].used == 40
            with pytest.raises(RateLimited):
                await venue.fetch_balances()  # 60 > 50: 429 until the minute's end
        finally:
            await venue.close()
    retry_after = 60 - int(time.time() % 60) + 1  # simex's Retry-After: the rest of the minute, rounded up
    assert budget.blocked_until - time.time() == pytest.approx(retry_after, abs=2.0)
    assert budget.limits[0].used >= 60
