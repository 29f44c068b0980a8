"""The engine on simex: ccxt's Binance client, HTTP, signed requests, real matching."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa

from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.journal import AccountRecord
from sealbot.engine.runner import InProcessRunner, RunnerSettings
from sealbot.simex import SimexServer
from sealbot.store.models import DealRow, FillRow, OrderRow
from sealbot.venues.base import Venue

from .simex_env import SimexTime, dca, seed, simex_venue


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=0) as sx:
        yield sx


async def test_a_dca_bot_on_simex_opens_and_closes_a_deal(simex: SimexServer, sqlite_url: str) -> None:
    account = simex.admin.create_account("alice", {"USDT": "10000"})
    key = simex.admin.create_key(account["id"])
    journal, account_id, (bot_id,) = seed(sqlite_url, [dca()])
    clock = SimexTime(simex.admin.clock()["now_ms"])
    venues: list[Venue] = []

    async def factory(_a: AccountRecord) -> Venue:
        venues.append(simex_venue(simex.base_url, key["key"], key["secret"]))
        return venues[-1]

    guard = GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0)))
    runner = InProcessRunner(journal, factory, guard=guard, clock=clock,
                             settings=RunnerSettings(background=False, market_ttl=0))
    await runner.start_account(account_id)
    acc = runner.accounts[account_id]
    closed = 0
    for _minute in range(240):
        clock.ms = simex.admin.set_clock(advance_seconds=60)["now_ms"]
        await runner.poll_feeds_once()
        await acc.drain()
        await acc.poll_once()
        await acc.drain()
        with journal.session_factory() as s:
            closed = s.scalar(sa.select(sa.func.count()).select_from(DealRow).where(DealRow.status == "closed"))
        if closed:
            break
    await runner.stop()
    assert closed >= 1
    on_simex = simex.admin.orders(account["id"])
    client_ids = [o["client_id"] for o in on_simex]
    assert len(client_ids) == len(set(client_ids))
    with journal.session_factory() as s:
        journalled = set(s.scalars(sa.select(OrderRow.client_order_id)))
        assert set(client_ids) <= journalled
        fills = s.scalar(sa.select(sa.func.count()).select_from(FillRow))
    assert fills >= 2
