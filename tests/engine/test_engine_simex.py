"""The engine on simex: ccxt's Binance client, HTTP, signed requests, real matching."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa

from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.journal import AccountRecord
from sealbot.engine.runner import InProcessRunner, RunnerSettings
from sealbot.engine.store_journal import StoreJournal
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
    journal, account_id, _ = seed(sqlite_url, [dca()])
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


def delivered(journal: StoreJournal) -> bool:
    """The watchdog's alert is stored with its webhook delivery recorded."""
    from sealbot.store.models import AlertRow

    with journal.session_factory() as s:
        alert = s.scalars(sa.select(AlertRow).where(AlertRow.code == "watchdog.foreign_order")).first()
        return alert is not None and (alert.deliveries or {}).get("webhook") == {"ok": True}


async def test_an_order_placed_with_a_leaked_key_is_flagged_within_one_interval_and_alerted(
        simex: SimexServer, sqlite_url: str) -> None:
    import asyncio
    import json
    import time

    import ccxt.async_support as ccxt_async

    from sealbot.engine.clock import SystemClock
    from sealbot.engine.notify import SIGNATURE_HEADER, TIMESTAMP_HEADER, Notifier, WebhookChannel, verify_webhook
    from sealbot.engine.watchdog import Watchdog
    from sealbot.store.models import AlertRow, Bot

    from .receivers import WebhookReceiver

    account = simex.admin.create_account("alice", {"USDT": "10000"})
    key = simex.admin.create_key(account["id"])
    journal, account_id, (bot_id,) = seed(sqlite_url, [dca(base_order_type="limit")])

    async def factory(_a: AccountRecord) -> Venue:
        return simex_venue(simex.base_url, key["key"], key["secret"])

    runner = InProcessRunner(journal, factory, guard=GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0))),
                             settings=RunnerSettings(background=False))
    await runner.start_account(account_id)
    with WebhookReceiver() as receiver:
        notifier = Notifier(journal)
        notifier.add("1", WebhookChannel(receiver.url, "hook-secret"))

        async def deliver(alert: object) -> None:
            await notifier.deliver(alert)  # type: ignore[arg-type]

        async def venue_for(_a: AccountRecord) -> Venue:
            return runner.accounts[account_id].venue

        interval = 2.0
        dog = Watchdog(journal, venue_for, runner.pause_account, alert_sink=deliver, clock=SystemClock(),
                       interval=interval)
        started = time.monotonic()
        assert await dog.check_all() == []  # a clean account: nothing flagged
        one_pass = time.monotonic() - started
        dog.start()
        # the attacker: plain ccxt with the stolen key, a forged sealbot-looking client id
        thief = ccxt_async.binance({"apiKey": key["key"], "secret": key["secret"],
                                    "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}})
        thief.urls["api"] = {k: v.replace("https://api.binance.com", simex.base_url)
                             for k, v in thief.urls["api"].items() if isinstance(v, str)}
        try:
            await thief.create_order("BTC/USDT", "limit", "buy", 0.002, 40000,
                                     {"newClientOrderId": f"sb{bot_id}-42-b"})
        finally:
            await thief.close()
        placed = time.monotonic()
        while not receiver.received and time.monotonic() - placed < 5 * interval:
            await asyncio.sleep(0.05)
        flagged_after = time.monotonic() - placed
        # the receiver has the request; the notifier records the delivery once the answer
        # is back: stopping the watchdog before then would cut that short
        while not delivered(journal) and time.monotonic() - placed < 10 * interval:
            await asyncio.sleep(0.05)
        await dog.stop()
    await runner.stop()
    assert receiver.received, "no alert reached the webhook receiver"
    # flagged by the next pass: at most one interval of waiting plus the pass itself
    assert flagged_after <= interval + 2 * one_pass + 0.5, (flagged_after, one_pass)
    headers, body = receiver.received[0]
    payload = json.loads(body)
    assert payload["code"] == "watchdog.foreign_order" and f"sb{bot_id}-42-b" in payload["message"]
    assert verify_webhook("hook-secret", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER],
                          now=time.time())
    with journal.session_factory() as s:
        assert s.scalar(sa.select(Bot.status)) == "paused"
        alert = s.scalars(sa.select(AlertRow).where(AlertRow.code == "watchdog.foreign_order")).one()
        assert alert.level == "critical" and (alert.deliveries or {}).get("webhook") == {"ok": True}
