"""End to end: the Engine's portfolio refresher values a simex account's balances from
simex's own tickers over HTTP (ccxt's Binance client), routing assets with no direct
USDT market through ETH/BTC and BTC/USDT, and keeps a snapshot per pass."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa

from sealbot.engine import Engine, EngineOptions, RunnerSettings
from sealbot.engine.journal import AccountRecord
from sealbot.simex import SimexServer
from sealbot.store.models import BalanceSnapshot, PortfolioSnapshot
from sealbot.venues.base import Venue

from .simex_env import seed, simex_venue


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=0) as sx:
        yield sx


def _mid(simex: SimexServer, symbol: str) -> Decimal:
    m = next(m for m in simex.admin.markets() if m["symbol"] == symbol)
    return (Decimal(m["bid"]) + Decimal(m["ask"])) / 2


async def test_the_engine_snapshots_simex_balances_valued_from_its_tickers(simex: SimexServer,
                                                                           database_url: str) -> None:
    account = simex.admin.create_account("pf", {"USDT": "2500", "BTC": "0.25", "ETH": "3", "XRP": "1000"})
    key = simex.admin.create_key(account["id"])
    journal, account_id, _ = seed(database_url, [])
    venues: list[Venue] = []

    async def factory(_a: AccountRecord) -> Venue:
        venues.append(simex_venue(simex.base_url, key["key"], key["secret"]))
        return venues[-1]

    options = EngineOptions(runner=RunnerSettings(background=False, poll_feeds=False), watchdog_interval=3600,
                            portfolio_interval=3600)
    engine = Engine(journal.session_factory, factory, options=options)
    assert engine.portfolio.prices is engine.runner.prices  # fresh guard prices save portfolio tickers
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run_until(stop))
    for _ in range(500):
        await asyncio.sleep(0.02)
        if engine.portfolio.passes:
            break
    stop.set()
    await task
    assert engine.portfolio.passes >= 1
    btc, eth, xrp = _mid(simex, "BTCUSDT"), _mid(simex, "ETHBTC"), _mid(simex, "XRPETH")
    with journal.session_factory() as s:
        head = s.scalars(sa.select(PortfolioSnapshot)).one()
        rows = s.scalars(sa.select(BalanceSnapshot).where(BalanceSnapshot.snapshot_id == head.id))
        lines = {x.asset: x for x in rows}
    assert str(head.account_id) == account_id and head.currency == "USDT" and head.unvalued == []
    q = Decimal("1E-10")
    expected = {"USDT": Decimal(2500), "BTC": (Decimal("0.25") * btc).quantize(q),
                "ETH": (3 * eth * btc).quantize(q), "XRP": (1000 * xrp * eth * btc).quantize(q)}
    assert {a: x.value for a, x in lines.items()} == expected
    assert lines["XRP"].route == "XRP/ETH>ETH/BTC>BTC/USDT" and lines["USDT"].free == Decimal(2500)
    assert head.total_value == sum(expected.values())
