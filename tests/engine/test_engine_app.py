"""The Engine object wires runner, watchdog and alerts over the database."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import sqlalchemy as sa

from sealbot.domain import Pair
from sealbot.engine import Engine, EngineOptions, GuardLimits, GuardPolicy, Notifier, RunnerSettings
from sealbot.engine.journal import AccountRecord, AlertRecord
from sealbot.store.models import AlertRow, Bot
from sealbot.venues.base import Venue

from .fakes import FakeVenue
from .test_engine_store_journal import make_db


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.alerts: list[AlertRecord] = []

    async def send(self, alert: AlertRecord) -> None:
        self.alerts.append(alert)


async def test_the_engine_starts_accounts_runs_the_watchdog_and_delivers_alerts(database_url: str) -> None:
    journal, account_id = make_db(database_url)
    venue = FakeVenue()
    venue.place_foreign(Pair("PUMP", "USDT"), "web_abc123")  # already on the account: a leaked key at work

    async def factory(_a: AccountRecord) -> Venue:
        return venue

    recorder = Recorder()
    notifier = Notifier(journal)
    with journal.session_factory() as s:
        user = str(s.scalar(sa.select(Bot.owner_id)))
    notifier.add(user, recorder)
    options = EngineOptions(runner=RunnerSettings(background=False, poll_feeds=False), watchdog_interval=3600,
                            guard=GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0))))
    engine = Engine(journal.session_factory, factory, options=options, notifier=notifier)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run_until(stop))
    for _ in range(100):
        await asyncio.sleep(0.02)
        if recorder.alerts:
            break
    stop.set()
    await task
    assert list(engine.runner.accounts) == []  # stopped cleanly
    assert [a.code for a in recorder.alerts] == ["watchdog.foreign_order"]
    with journal.session_factory() as s:
        assert s.scalar(sa.select(Bot.status)) == "paused"
        assert s.scalar(sa.select(AlertRow.code)) == "watchdog.foreign_order"
    assert account_id in {a.id for a in engine.journal.accounts()}
