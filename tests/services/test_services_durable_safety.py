"""The embedded engine's safety decisions survive a restart.

A kill switch taken while the engine is down (the limit of "before its next sync pass
saw it") still cancels the bots' open orders on the exchange: the kill journalled the
cancels, and the restarted engine's reconcile sends them. And the watchdog of a
restarted engine does not report a foreign order that is still open a second time
(its flags are in the database), while it does report a new one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from engine.attacker import foreign_order_alerts, thief_order
from scaleout.platform_env import until  # tests/ is on sys.path
from sealbot.custody.secrets import ApiCredentials
from sealbot.engine.app import EngineOptions
from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.runner import RunnerSettings
from sealbot.services.accounts import link_account, register_user
from sealbot.services.bots import create_bot
from sealbot.services.demo import AcceleratedClock
from sealbot.services.engine_host import EngineHost
from sealbot.services.kill_switch import KILL_REASON, kill_switch
from sealbot.services.platform import Platform
from sealbot.simex import SimexServer
from sealbot.store.models import Bot, ExchangeAccount, WatchdogFlag

MARKET = {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"}
DCA = {"markets": [MARKET], "base_order_volume": "20", "safety_order_volume": "20", "max_safety_orders": 2,
       "safety_order_step_percentage": "2", "take_profit": "5", "base_order_type": "market"}
SPEED = 120.0  # simulated seconds per real second


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=SPEED) as server:
        yield server


def _host(platform: Platform, simex: SimexServer, watchdog_interval: float = 3600) -> EngineHost:
    options = EngineOptions(runner=RunnerSettings(poll_interval=0.1, feed_interval=0.1, market_ttl=0),
                            guard=GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0))),
                            watchdog_interval=watchdog_interval)
    clock = AcceleratedClock(datetime.fromtimestamp(simex.admin.clock()["now_ms"] / 1000, UTC), SPEED)
    return EngineHost(platform, options=options, clock=clock, sync_interval=0.1)


async def _linked(platform: Platform, simex: SimexServer, name: str) -> tuple[int, int, int, str, str]:
    """(user, account, simex account, key, secret)"""
    exchange_account = simex.admin.create_account(name, {"USDT": "5000"})
    created = simex.admin.create_key(int(exchange_account["id"]), ip_whitelist=["127.0.0.1"])
    user = register_user(platform, f"{name}@example.org", "correct horse battery")
    account = await link_account(platform, user, "binance", "main", ApiCredentials(created["key"], created["secret"]))
    return user, account.id, int(exchange_account["id"]), created["key"], created["secret"]


def _resting(simex: SimexServer, sim_id: int) -> list[dict[str, Any]]:
    return [o for o in simex.admin.orders(sim_id) if o["status"] == "NEW"]


async def test_a_kill_the_engine_never_saw_is_carried_out_by_the_restarted_engine(
        platform: Platform, simex: SimexServer) -> None:
    user, account, sim_id, _key, _secret = await _linked(platform, simex, "restart")
    dca = create_bot(platform, user, account, "dca", "resting orders", DCA, start=True)
    first = _host(platform, simex)
    await first.start()
    try:
        assert await until(lambda: _resting(simex, sim_id), 15), simex.admin.orders(sim_id)
    finally:
        await first.stop()
    resting = _resting(simex, sim_id)
    assert resting and all(o["client_id"].startswith(f"sb{dca.id}-") for o in resting)

    result = kill_switch(platform, user, owner_id=user, account_id=account)  # no engine runs to see it
    assert result.stopped_bots == [dca.id] and result.cancel_requested >= len(resting)
    assert _resting(simex, sim_id) == resting

    second = _host(platform, simex)
    await second.start()  # loads the bot stopped: only the journalled cancels can reach the exchange
    try:
        assert await until(lambda: not _resting(simex, sim_id), 10), _resting(simex, sim_id)
    finally:
        await second.stop()
    with platform.uow() as uow:
        assert uow.session.scalar(sa.select(Bot.pause_reason).where(Bot.id == dca.id)) == KILL_REASON


def _checked_at(platform: Platform, account: int) -> object:
    with platform.uow() as uow:
        return uow.session.scalar(sa.select(ExchangeAccount.permission_checked_at)
                                  .where(ExchangeAccount.id == account))


async def test_a_restarted_engine_does_not_flag_a_still_open_foreign_order_again(
        platform: Platform, simex: SimexServer) -> None:
    interval = 1.0  # not shorter: each check costs request weight (open orders of every pair: 40 on Binance)
    user, account, sim_id, key, secret = await _linked(platform, simex, "dog")
    create_bot(platform, user, account, "dca", "watched", {**DCA, "base_order_type": "limit"}, start=True)
    await thief_order(simex, key, secret, "thief-1")
    first = _host(platform, simex, watchdog_interval=interval)
    await first.start()
    try:
        assert await until(lambda: foreign_order_alerts(platform), 10)
    finally:
        await first.stop()
    assert any(o["client_id"] == "thief-1" and o["status"] == "NEW" for o in simex.admin.orders(sim_id))

    second = _host(platform, simex, watchdog_interval=interval)
    before = _checked_at(platform, account)
    await second.start()
    try:
        # several checks of the restarted engine, each seeing thief-1 still open
        assert await until(lambda: _checked_at(platform, account) != before, 10)
        await asyncio.sleep(2.5 * interval)
        assert len(foreign_order_alerts(platform)) == 1
        await thief_order(simex, key, secret, "thief-2")  # a new one is reported
        assert await until(lambda: len(foreign_order_alerts(platform)) == 2, 30)
    finally:
        await second.stop()
    first_alert, second_alert = foreign_order_alerts(platform)
    assert "thief-1" in first_alert and "thief-2" in second_alert and "thief-1" not in second_alert
    with platform.uow() as uow:
        refs = set(uow.session.scalars(sa.select(WatchdogFlag.ref)))
    assert len(refs) == 2 and all(r.startswith("order:BTC/USDT:") for r in refs)
