"""An order request is signed with the time its attempt was journalled, so the exchange
itself refuses a send that comes too late: the paused-worker duplicate cannot happen.

simex checks a signed request's time against the real wall clock, as Binance and KuCoin
do; the engine's side of time is a ``FakeClock`` where a test needs to say "this attempt
was journalled seconds ago".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from sealbot.domain import ClientOrderId, Order, OrderStatus, OrderType, Pair, Side
from sealbot.engine.budget import Budget, RateLimit
from sealbot.engine.clock import FakeClock, SystemClock
from sealbot.engine.journal import AccountRecord, MemoryJournal
from sealbot.engine.orders import OrderManager, Rejection
from sealbot.simex import SimexServer
from sealbot.venues.ccxt_venue import CcxtVenue
from sealbot.venues.errors import RequestExpired, VenueError
from sealbot.venues.signing import create_signed_exchange, pinned_time

from .fakes import T0, FakeVenue
from .simex_env import Handle, HmacSigner, KucoinHmacSigner, dca, seed, simex_venue

BTC = Pair("BTC", "USDT")


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=0) as sx:
        yield sx


def _key(simex: SimexServer, **key_args: Any) -> tuple[int, dict[str, Any]]:
    account = simex.admin.create_account("alice", {"USDT": "100000", "BTC": "1"})
    return int(account["id"]), simex.admin.create_key(account["id"], **key_args)


def _venue(simex: SimexServer, key: dict[str, Any], recv_window_ms: int) -> CcxtVenue:
    venue = simex_venue(simex.base_url, key["key"], key["secret"])
    venue.exchange.options["recvWindow"] = recv_window_ms
    return venue


def _market_buy(bot: str = "b1") -> Order:
    return Order(ClientOrderId(bot, 1, "b"), BTC, Side.BUY, OrderType.MARKET, Decimal("0.001"))


def _orders_on(simex: SimexServer, account_id: int, client_id: ClientOrderId) -> list[dict[str, Any]]:
    return [o for o in simex.admin.orders(account_id) if o["client_id"] == client_id.text]


# -- the signature carries the pinned time, on the exchange's clock ------------------------
@pytest.mark.parametrize("exchange_id", ["binance", "kucoin"])
async def test_a_pinned_request_is_stamped_with_its_attempt_time_on_the_exchanges_clock(exchange_id: str) -> None:
    exchange = create_signed_exchange(exchange_id, KucoinHmacSigner("k", "s", "p"), Handle("1"),
                                      request_type=lambda **kw: kw)
    try:
        exchange.options["timeDifference"] = 1_500  # ccxt measured this host 1.5 s ahead of the exchange
        with pinned_time(1_700_000_000_000):
            assert exchange.nonce() == 1_700_000_000_000 - 1_500
        assert abs(exchange.nonce() - (time.time() * 1000 - 1_500)) < 1_000  # unpinned: signed at send time
    finally:
        await exchange.close()


def test_a_binance_receive_window_the_exchange_would_refuse_is_an_error_naming_the_option() -> None:
    with pytest.raises(VenueError, match=r"options\.recvWindow"):
        CcxtVenue("binance", signer=HmacSigner("k", "s"), handle=Handle("1"), options={"recvWindow": 61_000})


# -- (1) an attempt sent after its window is refused and not placed ------------------------
async def test_an_attempt_sent_after_its_window_is_refused_by_simex_and_the_order_is_not_placed(
        simex: SimexServer) -> None:
    account_id, key = _key(simex)
    venue = _venue(simex, key, recv_window_ms=2_000)
    journal = MemoryJournal()
    account = AccountRecord("1", "alice", "binance")
    pause = 3.0  # longer than the 2 s window, shorter than window + margin (4 s)
    clock = FakeClock(start=time.time() - pause)
    manager = OrderManager(account, venue, journal, clock=clock)
    assert manager.in_flight_window == 2.0 + manager.clock_skew_margin
    order = _market_buy()
    try:
        with journal.transaction() as tx:
            manager.journal_new(tx, "b1", order)  # the intent is committed ...
        clock.advance(pause)  # ... then the worker is paused past the attempt's window
        assert await manager.send(order.client_id) == []
        assert _orders_on(simex, account_id, order.client_id) == []  # simex refused it (-1021)
        with journal.transaction() as tx:
            entry = tx.get_order(order.client_id)
        # a dead attempt, not a rejected order: the deal goes on, the account reconciles
        assert entry is not None and entry.order.status is OrderStatus.PENDING and entry.reason is None
        assert manager.unsettled

        # once no attempt can arrive, a re-send (a new attempt time) places it, once
        await asyncio.sleep(manager.in_flight_window - pause + 0.2)
        clock.t = time.time()
        found = await manager.reconcile()
        assert [o.client_id for o in found if not isinstance(o, Rejection)][:1] == [order.client_id]
        assert len(_orders_on(simex, account_id, order.client_id)) == 1
        with journal.transaction() as tx:
            entry = tx.get_order(order.client_id)
        assert entry is not None and entry.attempted_at is not None
        assert entry.attempted_at >= datetime.fromtimestamp(clock.t, UTC) - timedelta(seconds=1)
    finally:
        await venue.close()


async def test_kucoin_refuses_an_order_signed_more_than_5_s_before_it_arrives(simex: SimexServer) -> None:
    account_id, key = _key(simex, passphrase="correct horse")
    venue = CcxtVenue("kucoin", signer=KucoinHmacSigner(key["key"], key["secret"], "correct horse"), handle=Handle("1"),
                      urls={"api_base": simex.base_url})
    try:
        assert venue.send_window() == 5.0
        order = _market_buy()
        with pytest.raises(RequestExpired):
            await venue.create_order(order, datetime.now(UTC) - timedelta(seconds=6))
        assert _orders_on(simex, account_id, order.client_id) == []
        placed = await venue.create_order(order, datetime.now(UTC) - timedelta(seconds=1))
        assert placed.client_id == order.client_id
        assert len(_orders_on(simex, account_id, order.client_id)) == 1
    finally:
        await venue.close()


# -- (2) the paused-worker race, deterministically -------------------------------------------
async def test_a_paused_worker_that_sends_after_the_new_owner_re_sent_places_nothing(
        simex: SimexServer, database_url: str) -> None:
    """Worker A commits the intent and is paused before its request leaves; worker B takes
    the account over, reconciles, waits until A's attempt can no longer arrive and re-sends
    (same client id: a market order, filled at once, so the exchange would accept the id
    again). A wakes and sends: the exchange refuses A's request for its time."""
    account_id, key = _key(simex)
    journal, account, bots = seed(database_url, [dca()])
    record = AccountRecord(account, "1", "binance")
    venue_a, venue_b = _venue(simex, key, 1_000), _venue(simex, key, 1_000)
    a = OrderManager(record, venue_a, journal, clock=SystemClock(), clock_skew_margin=0.5)
    b = OrderManager(record, venue_b, journal, clock=SystemClock(), clock_skew_margin=0.5)
    order = _market_buy(bots[0])
    paused = asyncio.Event()
    resume = asyncio.Event()
    send_a = venue_a.create_order

    async def paused_send(o: Order, attempt_at: datetime | None = None) -> Order:
        paused.set()
        await resume.wait()  # SIGSTOP between the commit and the request
        return await send_a(o, attempt_at)

    venue_a.create_order = paused_send  # type: ignore[method-assign]
    try:
        with journal.transaction() as tx:
            a.journal_new(tx, bots[0], order)
        worker_a = asyncio.create_task(a.send(order.client_id))
        await paused.wait()

        assert await b.reconcile() == []  # not found, but A's attempt may still arrive
        assert b.unsettled and _orders_on(simex, account_id, order.client_id) == []
        await asyncio.sleep(b.in_flight_window)
        b.unsettled = False
        observed = await b.reconcile()  # now it cannot: B re-sends
        assert order.client_id in [o.client_id for o in observed]
        assert len(_orders_on(simex, account_id, order.client_id)) == 1

        resume.set()  # A wakes and sends its request, signed with its journalled attempt time
        late = await worker_a
        assert not any(isinstance(o, Rejection) for o in late)  # refused as late, not a rejected order
        on_simex = _orders_on(simex, account_id, order.client_id)
        assert len(on_simex) == 1, on_simex
        assert len(simex.admin.orders(account_id)) == 1
        with journal.transaction() as tx:
            entry = tx.get_order(order.client_id)
        assert entry is not None and entry.order.status is not OrderStatus.REJECTED and entry.reason is None
    finally:
        resume.set()
        await venue_a.close()
        await venue_b.close()


# -- an attempt waits for the budget while another process places the order -----------------
class HeldBudget(Budget):
    """A budget whose ``acquire`` waits until the test lets it through."""

    def __init__(self) -> None:
        super().__init__("held", [RateLimit(1_000, 60.0)])
        self.waiting, self.gate = asyncio.Event(), asyncio.Event()

    def try_acquire(self, units: int = 1) -> bool:
        return False  # no room now: a sender must wait in ``acquire``

    async def acquire(self, units: int = 1) -> float:
        self.waiting.set()
        await self.gate.wait()
        return 0.0


async def test_an_attempt_held_by_the_budget_is_not_sent_once_another_process_placed_the_order() -> None:
    clock = FakeClock(T0.timestamp())
    venue, journal, budget = FakeVenue(now=clock.now), MemoryJournal(), HeldBudget()
    account = AccountRecord("acc1", "alice", "fake")
    a = OrderManager(account, venue, journal, clock=clock, budget=budget)
    b = OrderManager(account, venue, journal, clock=clock)
    order = Order(ClientOrderId("b1", 1, "b"), BTC, Side.BUY, OrderType.LIMIT, Decimal(1), Decimal(100))
    requests: list[Order] = []
    venue.on_create = requests.append
    with journal.transaction() as tx:
        a.journal_new(tx, "b1", order)
    worker_a = asyncio.create_task(a.send(order.client_id))
    await budget.waiting.wait()  # A read the order as pending and waits for the budget
    await b.send(order.client_id)  # meanwhile B places it and records the answer
    budget.gate.set()
    assert await worker_a == []
    assert len(requests) == 1
