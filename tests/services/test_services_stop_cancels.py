"""Stopping one bot (``POST /bots/{id}/stop``, the dashboard's *Stop*) or cancelling a
smart trade cancels its open orders on the exchange, as the kill switch does: a stopped
bot is no longer run, so an order it left resting would trade with nothing to follow it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from scaleout.platform_env import until  # tests/ is on sys.path
from sealbot.custody.secrets import ApiCredentials
from sealbot.engine.app import EngineOptions
from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.runner import RunnerSettings
from sealbot.services.accounts import link_account, register_user
from sealbot.services.bots import create_bot, owner_action
from sealbot.services.demo import AcceleratedClock
from sealbot.services.engine_host import EngineHost
from sealbot.services.platform import Platform
from sealbot.services.smart_trades import cancel_smart_trade
from sealbot.simex import SimexServer

MARKET = {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"}
GRID = {"market": MARKET, "lower_price": "30000", "upper_price": "40000", "grids_quantity": 5,
        "investment": "200"}  # every line far below the market: four resting buys
SMART = {"market": MARKET, "amount": "0.001", "entry_type": "limit", "entry_price": "30000",
         "take_profit_steps": [{"amount_percentage": "100", "profit_percentage": "2"}]}
DCA = {"markets": [MARKET], "base_order_volume": "20", "safety_order_volume": "20", "max_safety_orders": 2,
       "safety_order_step_percentage": "2", "take_profit": "5", "base_order_type": "market"}
SPEED = 120.0


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=SPEED) as server:
        yield server


@pytest.mark.parametrize("kind", ["grid", "smart"])
async def test_stopping_a_bot_or_cancelling_a_trade_cancels_its_resting_orders(
        platform: Platform, simex: SimexServer, kind: str) -> None:
    exchange_account = simex.admin.create_account("stopper", {"USDT": "5000"})
    sim_id = int(exchange_account["id"])
    created = simex.admin.create_key(sim_id, ip_whitelist=["127.0.0.1"])
    user = register_user(platform, "stopper@example.org", "correct horse battery")
    account = await link_account(platform, user, "binance", "main", ApiCredentials(created["key"], created["secret"]))
    bot = create_bot(platform, user, account.id, kind, "resting", GRID if kind == "grid" else SMART, start=True)
    options = EngineOptions(runner=RunnerSettings(poll_interval=0.1, feed_interval=0.1, market_ttl=0),
                            guard=GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0))))
    clock = AcceleratedClock(datetime.fromtimestamp(simex.admin.clock()["now_ms"] / 1000, UTC), SPEED)
    host = EngineHost(platform, options=options, clock=clock, sync_interval=0.1)

    def resting() -> list[str]:
        return [o["client_id"] for o in simex.admin.orders(sim_id) if o["status"] == "NEW"]

    await host.start()
    try:
        assert await until(lambda: len(resting()) == (4 if kind == "grid" else 1), 15), simex.admin.orders(sim_id)
        if kind == "grid":
            owner_action(platform, user, bot.id, "stop")
        else:
            cancel_smart_trade(platform, user, bot.id)
        assert await until(lambda: not resting(), 10), resting()
    finally:
        await host.stop()


@pytest.mark.parametrize("kind", ["dca", "grid"])
async def test_a_bot_started_again_after_a_stop_places_its_orders_again(
        platform: Platform, simex: SimexServer, kind: str) -> None:
    # The stop cancelled the deal's take profit and safety order (the grid's lines);
    # started again, the bot places them again (fresh ids) instead of running on without.
    exchange_account = simex.admin.create_account("restarter", {"USDT": "5000"})
    sim_id = int(exchange_account["id"])
    created = simex.admin.create_key(sim_id, ip_whitelist=["127.0.0.1"])
    user = register_user(platform, "restarter@example.org", "correct horse battery")
    account = await link_account(platform, user, "binance", "main", ApiCredentials(created["key"], created["secret"]))
    price = Decimal(str(next(m for m in simex.admin.markets() if m["symbol"] == "BTCUSDT")["price"]))
    grid = {**GRID, "lower_price": str(round(price * Decimal("0.96"))),
            "upper_price": str(round(price * Decimal("1.04")))}
    bot = create_bot(platform, user, account.id, kind, "restarted", DCA if kind == "dca" else grid, start=True)
    options = EngineOptions(runner=RunnerSettings(poll_interval=0.1, feed_interval=0.1, market_ttl=0),
                            guard=GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0))))
    clock = AcceleratedClock(datetime.fromtimestamp(simex.admin.clock()["now_ms"] / 1000, UTC), SPEED)
    host = EngineHost(platform, options=options, clock=clock, sync_interval=0.1)

    def resting() -> list[str]:
        return sorted(o["client_id"] for o in simex.admin.orders(sim_id) if o["status"] == "NEW")

    await host.start()
    try:
        assert await until(lambda: len(resting()) >= 2, 15), simex.admin.orders(sim_id)
        before = resting()
        owner_action(platform, user, bot.id, "stop")
        assert await until(lambda: not resting(), 10), resting()
        owner_action(platform, user, bot.id, "start")
        assert await until(lambda: len(resting()) >= len(before), 10), (before, resting())
        assert not set(resting()) & set(before)  # placed again under new ids
    finally:
        await host.stop()
