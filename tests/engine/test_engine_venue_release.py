"""An account that fails to start, or to stop, gives its venue back: the ccxt session it
opened is closed.

A venue left open is closed by nobody: ccxt warns "requires to release all resources"
when it is collected, maybe in another event loop, and its aiohttp session and connector
are never released (``Engine.start`` logs a failed account and goes on, so every failed
start would leak one)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from sealbot.engine.journal import AccountRecord
from sealbot.engine.runner import AccountRunner, InProcessRunner, RunnerSettings
from sealbot.simex import SimexServer
from sealbot.venues.base import Venue
from sealbot.venues.ccxt_venue import CcxtVenue

from .simex_env import SimexTime, dca, seed, simex_venue


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=0) as sx:
        yield sx


def _released(venue: CcxtVenue) -> bool:
    session = venue.exchange.session
    return session is None or session.closed


def _engine(simex: SimexServer, sqlite_url: str, venues: list[CcxtVenue]) -> tuple[InProcessRunner, str]:
    """A runner for one seeded account with a DCA bot on simex; every venue it makes lands in ``venues``."""
    account = simex.admin.create_account("alice", {"USDT": "10000"})
    key = simex.admin.create_key(account["id"])
    journal, account_id, _ = seed(sqlite_url, [dca()])

    async def factory(_a: AccountRecord) -> Venue:
        venues.append(simex_venue(simex.base_url, key["key"], key["secret"]))
        return venues[-1]

    runner = InProcessRunner(journal, factory, clock=SimexTime(simex.admin.clock()["now_ms"]),
                             settings=RunnerSettings(background=False, market_ttl=0))
    return runner, account_id


@pytest.mark.parametrize("failure", ["error", "cancel"])
async def test_an_account_that_fails_to_start_closes_its_venue(
        simex: SimexServer, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    venues: list[CcxtVenue] = []
    runner, account_id = _engine(simex, sqlite_url, venues)
    reconciling = asyncio.Event()

    async def failing_reconcile(self: AccountRunner) -> None:
        assert not _released(venues[-1])  # the market refresh went over HTTP: a session is open
        reconciling.set()
        if failure == "error":
            raise RuntimeError("the journal failed")  # not a VenueError: start gives up
        await asyncio.Event().wait()  # until cancelled (the engine stopping meanwhile)

    monkeypatch.setattr(AccountRunner, "reconcile", failing_reconcile)
    start = asyncio.ensure_future(runner.start_account(account_id))
    await reconciling.wait()
    if failure == "cancel":
        start.cancel()
    with pytest.raises(RuntimeError if failure == "error" else asyncio.CancelledError):
        await start
    assert account_id not in runner.accounts
    assert len(venues) == 1 and _released(venues[0])
    await runner.stop()


async def test_an_account_whose_stop_fails_still_closes_its_venue(
        simex: SimexServer, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    venues: list[CcxtVenue] = []
    runner, account_id = _engine(simex, sqlite_url, venues)
    await runner.start_account(account_id)
    assert not _released(venues[0])

    async def failing_stop(self: AccountRunner) -> None:
        raise RuntimeError("a task died with an error")

    monkeypatch.setattr(AccountRunner, "stop", failing_stop)
    with pytest.raises(RuntimeError):
        await runner.stop_account(account_id)
    assert account_id not in runner.accounts and _released(venues[0])
    await runner.stop()


async def test_an_engine_whose_start_fails_part_way_closes_the_accounts_it_started(
        simex: SimexServer, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from sealbot.engine.app import Engine, EngineOptions
    from sealbot.store import UnitOfWork
    from sealbot.store.models import ExchangeAccount

    account = simex.admin.create_account("alice", {"USDT": "10000"})
    key = simex.admin.create_key(account["id"])
    journal, first, _ = seed(sqlite_url, [dca()])
    with UnitOfWork(journal.session_factory) as uow:  # a second account of the same user, one bot
        owner = uow.session.scalar(sa.select(ExchangeAccount.owner_id).where(ExchangeAccount.id == int(first)))
        second = uow.accounts.add(owner, "binance", "simex 2")
        bot = uow.bots.add(owner, "dca", "dca b", dca(), account_id=second.id)
        uow.bots.set_status(owner, bot.id, "running")
    venues: list[CcxtVenue] = []
    real_reconcile = AccountRunner.reconcile

    async def factory(_a: AccountRecord) -> Venue:
        venues.append(simex_venue(simex.base_url, key["key"], key["secret"]))
        return venues[-1]

    async def second_fails(self: AccountRunner) -> None:
        if len(venues) > 1:
            raise RuntimeError("the journal failed")
        await real_reconcile(self)

    monkeypatch.setattr(AccountRunner, "reconcile", second_fails)
    options = EngineOptions(runner=RunnerSettings(background=False, poll_feeds=False, market_ttl=0),
                            watchdog_interval=3600, portfolio_interval=None)
    engine = Engine(journal.session_factory, factory, options=options, clock=SimexTime(simex.admin.clock()["now_ms"]))
    with pytest.raises(RuntimeError):
        await engine.run_until(asyncio.Event())
    assert len(venues) == 2 and all(_released(v) for v in venues)


async def test_a_user_stream_stopped_while_it_closes_a_dropped_session_still_releases_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The account stops (its stream task is cancelled) while the watcher closes the
    ccxt.pro object of a session that dropped: the close must finish anyway. Seen in the
    scale-out chaos test's workers, whose streams drop and whose accounts stop often."""
    import ccxt
    import ccxt.pro as ccxt_pro

    from sealbot.engine import user_stream

    exchange = ccxt_pro.binance()
    exchange.open()  # the session a subscription opened
    closing = asyncio.Event()

    async def slow_ws_close() -> None:  # a close handshake with a peer slow to answer
        closing.set()
        await asyncio.sleep(0.2)

    async def dropped(_self: user_stream.UserStreamWatcher, _exchange: object) -> None:
        raise ccxt.NetworkError("connection closed by remote server")

    monkeypatch.setattr(exchange, "close_ws_clients", slow_ws_close)
    monkeypatch.setattr(user_stream.UserStreamWatcher, "_session", dropped)
    factory = iter([exchange])
    watcher = user_stream.UserStreamWatcher("7", lambda: next(factory), lambda: None)
    task = asyncio.ensure_future(watcher.run())
    await closing.wait()
    task.cancel()  # the account stops
    with pytest.raises(asyncio.CancelledError):
        await task
    assert exchange.session is None
