"""The embedded engine follows what users change through the web tier, through the
database only: a bot started later joins, a stopped bot stays stopped (the engine never
writes its old status back), a re-configured bot restarts with its new settings, a
webhook signal waiting in the inbox becomes an order on the exchange, and a revoked
account's runner stops. It is the scale-out worker on the in-process transport: it
claims partitions, and records each signal in the partition ledger under its epoch."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from sealbot.custody.secrets import ApiCredentials
from sealbot.domain import CloseAtMarket, EditExits, Refused
from sealbot.engine.app import EngineOptions
from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.runner import RunnerSettings
from sealbot.engine.scaleout.fence import CURRENT, Scope
from sealbot.engine.scaleout.partitions import PartitionStore
from sealbot.services import inbox
from sealbot.services.accounts import link_account, register_user
from sealbot.services.bot_manage import edit_bot
from sealbot.services.bots import create_bot, set_bot_status
from sealbot.services.demo import AcceleratedClock
from sealbot.services.engine_host import EngineHost
from sealbot.services.kill_switch import kill_switch
from sealbot.services.platform import Platform
from sealbot.services.webhooks import SignalGate, new_webhook_secret
from sealbot.simex import SimexServer
from sealbot.store.models import EngineMessage
from sealbot.store.repositories.web import InboxRepository

MARKET = {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"}
DCA = {"markets": [MARKET], "base_order_volume": "20", "safety_order_volume": "20", "max_safety_orders": 2,
       "safety_order_step_percentage": "2", "take_profit": "5", "base_order_type": "market"}
SIGNAL = {"markets": [MARKET], "amount": "25"}
SPEED = 120.0  # simulated seconds per real second: a 1m candle closes every half second


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=SPEED) as server:
        yield server


def _options() -> EngineOptions:
    return EngineOptions(runner=RunnerSettings(poll_interval=0.1, feed_interval=0.1, market_ttl=0),
                         guard=GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0))), watchdog_interval=3600)


async def _wait_for_order(simex: SimexServer, account: int, prefix: str, timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if any(o["client_id"].startswith(prefix) for o in simex.admin.orders(account)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no order {prefix}* on simex: {simex.admin.orders(account)}")


def _enter_long(secret: str, bot_id: int) -> bytes:
    """A TradingView signal-bot body, as the webhook receives it."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"secret": secret, "max_lag": "300", "timestamp": stamp,
                       "trigger_price": "50000", "tv_exchange": "BINANCE", "tv_instrument": "BTCUSDT",
                       "action": "enter_long", "bot_uuid": str(bot_id)}).encode()


def _stored_status(platform: Platform, owner: int, bot: int) -> str:
    with platform.uow() as uow:
        return str(uow.bots.get(owner, bot).status)


async def test_the_engine_follows_the_database(platform: Platform, simex: SimexServer) -> None:
    exchange_account = simex.admin.create_account("host", {"USDT": "5000"})
    created = simex.admin.create_key(int(exchange_account["id"]), ip_whitelist=["127.0.0.1"])
    user = register_user(platform, "host@example.org", "correct horse battery")
    account = await link_account(platform, user, "binance", "main", ApiCredentials(created["key"], created["secret"]))
    dca = create_bot(platform, user, account.id, "dca", "later", DCA)
    signal = create_bot(platform, user, account.id, "signal", "tv", SIGNAL, start=True)
    sim_id = int(exchange_account["id"])

    clock = AcceleratedClock(datetime.fromtimestamp(simex.admin.clock()["now_ms"] / 1000, UTC), SPEED)
    host = EngineHost(platform, options=_options(), clock=clock, sync_interval=0.1)
    report = await host.start()
    try:
        assert report.started_accounts == [str(account.id)]
        runner = host.runner.accounts[str(account.id)]
        assert set(runner.bots) == {str(signal.id)}  # the DCA bot was never started

        secret = new_webhook_secret(platform, user, signal.id)
        SignalGate(platform).receive(_enter_long(secret, signal.id), "127.0.0.1")
        assert (await host.sync_once()).delivered == 1
        await _wait_for_order(simex, sim_id, f"sb{signal.id}-")
        assert (await host.sync_once()).delivered == 0  # delivered once, not again

        set_bot_status(platform, user, dca.id, "running")
        report = await host.sync_once()
        assert (str(dca.id), "running") in report.status_changes
        await _wait_for_order(simex, sim_id, f"sb{dca.id}-")

        set_bot_status(platform, user, dca.id, "stopped")
        # before the engine's next pass, the bot still runs in memory and takes a step (the user edits its exits):
        # the step adopts the stored status instead of writing "running" back; like every write of the
        # engine, it runs under the account's partition and epoch (the worker's fence)
        partition = host.worker.store.partition_of(str(account.id))
        scope = CURRENT.set(Scope(partition, host.worker.owned[partition]))
        try:
            await runner.deliver(str(dca.id), EditExits(1, clock.now(), take_profit_pct=Decimal("5")))
        finally:
            CURRENT.reset(scope)
        assert _stored_status(platform, user, dca.id) == "stopped"
        live = runner.bots.get(str(dca.id))  # or already unloaded by the upkeep's own pass
        assert live is None or live.record.status == "stopped"
        await host.sync_once()
        assert _stored_status(platform, user, dca.id) == "stopped"
        assert str(dca.id) not in runner.bots  # a stopped bot is unloaded: its pairs are no longer waited for

        edit_bot(platform, user, dca.id, config={**DCA, "take_profit": "7"})
        await host.sync_once()
        assert str(dca.id) not in runner.bots
        set_bot_status(platform, user, dca.id, "running")
        await host.sync_once()
        assert runner.bots[str(dca.id)].config.take_profit == Decimal("7")

        with platform.uow() as uow:
            uow.accounts.set_status(user, account.id, "revoked")
        report = await host.sync_once()
        assert report.stopped_accounts == [str(account.id)] and not host.runner.accounts
    finally:
        await host.stop()


async def test_a_close_request_queued_before_its_bot_stopped_is_told_to_its_user_not_dropped(
        platform: Platform, simex: SimexServer) -> None:
    """The API refuses a close for a stopped bot; one it accepted while the bot ran, and
    the engine takes only after the bot stopped, finds no bot to carry it out: its user
    gets an alert saying so (silence would read as done), and nothing is sent."""
    exchange_account = simex.admin.create_account("late", {"USDT": "5000"})
    created = simex.admin.create_key(int(exchange_account["id"]), ip_whitelist=["127.0.0.1"])
    user = register_user(platform, "late@example.org", "correct horse battery")
    account = await link_account(platform, user, "binance", "main", ApiCredentials(created["key"], created["secret"]))
    dca = create_bot(platform, user, account.id, "dca", "stopped meanwhile", DCA)
    with platform.uow() as uow:  # accepted while the bot ran; the user stopped it before the engine took it
        inbox.post(uow, user, dca.id, CloseAtMarket(deal=3, at=datetime.now(UTC)))
    clock = AcceleratedClock(datetime.fromtimestamp(simex.admin.clock()["now_ms"] / 1000, UTC), SPEED)
    host = EngineHost(platform, options=_options(), clock=clock, sync_interval=0.1)
    await host.start()
    try:
        for _ in range(100):
            with platform.uow() as uow:
                alerts = [a for a in uow.alerts.list(user) if a.code == "request.not_carried_out"]
            if alerts:
                break
            await asyncio.sleep(0.05)
        assert len(alerts) == 1, "the user was never told"
        assert alerts[0].level == "warning" and alerts[0].bot_id == dca.id
        assert "close at market of deal 3 was not carried out: the bot was stopped" in alerts[0].message
        assert (await host.sync_once()).delivered == 0  # taken once, not again
        with platform.uow() as uow:
            assert len([a for a in uow.alerts.list(user) if a.code == "request.not_carried_out"]) == 1
        assert simex.admin.orders(int(exchange_account["id"])) == []
    finally:
        await host.stop()


async def test_a_kill_switch_stops_the_bots_and_cancels_their_open_orders(
        platform: Platform, simex: SimexServer) -> None:
    exchange_account = simex.admin.create_account("kill", {"USDT": "5000"})
    created = simex.admin.create_key(int(exchange_account["id"]), ip_whitelist=["127.0.0.1"])
    user = register_user(platform, "kill@example.org", "correct horse battery")
    account = await link_account(platform, user, "binance", "main", ApiCredentials(created["key"], created["secret"]))
    dca = create_bot(platform, user, account.id, "dca", "resting safety orders", DCA, start=True)
    sim_id = int(exchange_account["id"])
    clock = AcceleratedClock(datetime.fromtimestamp(simex.admin.clock()["now_ms"] / 1000, UTC), SPEED)
    host = EngineHost(platform, options=_options(), clock=clock, sync_interval=0.1)
    await host.start()
    try:
        for _ in range(300):  # the base order fills, then take-profit and safety orders rest
            if any(o["status"] == "NEW" for o in simex.admin.orders(sim_id)):
                break
            await asyncio.sleep(0.05)
        resting = [o for o in simex.admin.orders(sim_id) if o["status"] == "NEW"]
        assert resting and all(o["client_id"].startswith(f"sb{dca.id}-") for o in resting)

        result = kill_switch(platform, user, owner_id=user, account_id=account.id)
        assert result.stopped_bots == [dca.id]
        await host.sync_once()
        # cancelled by the pass that adopts the kill, or by the account's poller first (the kill
        # marked them CANCEL_REQUESTED in its own transaction): either way, before long
        for _ in range(100):
            if not [o for o in simex.admin.orders(sim_id) if o["status"] == "NEW"]:
                break
            await asyncio.sleep(0.05)
        final = {o["client_id"]: o["status"] for o in simex.admin.orders(sim_id)}
        assert "NEW" not in final.values(), final  # neither the resting ones nor any the bot placed since
        assert any(final[o["client_id"]] == "CANCELED" for o in resting), final  # (one may have filled meanwhile)
        assert _stored_status(platform, user, dca.id) == "stopped"
        assert (await host.sync_once()).cancelled_orders == 0  # once
    finally:
        await host.stop()


async def test_a_percent_of_balance_signal_is_sized_from_the_exchanges_balance(
        platform: Platform, simex: SimexServer) -> None:
    exchange_account = simex.admin.create_account("pct", {"USDT": "4000"})
    created = simex.admin.create_key(int(exchange_account["id"]), ip_whitelist=["127.0.0.1"])
    user = register_user(platform, "pct@example.org", "correct horse battery")
    account = await link_account(platform, user, "binance", "main", ApiCredentials(created["key"], created["secret"]))
    bot = create_bot(platform, user, account.id, "signal", "a tenth", {
        "markets": [MARKET], "amount": "10", "amount_type": "percent_of_balance", "use_signal_amount": False},
        start=True)
    clock = AcceleratedClock(datetime.fromtimestamp(simex.admin.clock()["now_ms"] / 1000, UTC), SPEED)
    host = EngineHost(platform, options=_options(), clock=clock, sync_interval=0.1)
    await host.start()
    try:
        secret = new_webhook_secret(platform, user, bot.id)
        SignalGate(platform).receive(_enter_long(secret, bot.id), "127.0.0.1")
        await host.sync_once()
        await _wait_for_order(simex, int(exchange_account["id"]), f"sb{bot.id}-")
    finally:
        await host.stop()
    [order] = simex.admin.orders(int(exchange_account["id"]))
    # 10 % of the 4000 USDT the exchange reported, at the signal's trigger price: 400 / 50000
    assert Decimal(order["qty"]) == Decimal("0.008"), order


async def test_one_embedded_engine_per_database(platform: Platform) -> None:
    first = EngineHost(platform, options=_options())
    await first.start()
    try:
        second = EngineHost(platform, options=_options())
        with pytest.raises(Refused, match="another sealbot engine"):
            await second.start()
        await second.stop()  # releases nothing it does not hold
        with pytest.raises(Refused):
            await EngineHost(platform, options=_options()).start()
    finally:
        await first.stop()
    again = EngineHost(platform, options=_options())
    await again.start()  # the lock went with the first engine
    await again.stop()


async def test_the_embedded_engine_applies_a_signal_like_a_worker_and_at_once(
        platform: Platform, simex: SimexServer) -> None:
    """The embedded engine is the scale-out worker on the in-process transport: a webhook
    signal is recorded in the partition ledger under the epoch this engine claimed, and,
    posted in this process, it is applied without waiting for the next poll."""
    exchange_account = simex.admin.create_account("ledger", {"USDT": "5000"})
    created = simex.admin.create_key(int(exchange_account["id"]), ip_whitelist=["127.0.0.1"])
    user = register_user(platform, "ledger@example.org", "correct horse battery")
    account = await link_account(platform, user, "binance", "main", ApiCredentials(created["key"], created["secret"]))
    bot = create_bot(platform, user, account.id, "signal", "tv", SIGNAL, start=True)
    clock = AcceleratedClock(datetime.fromtimestamp(simex.admin.clock()["now_ms"] / 1000, UTC), SPEED)
    host = EngineHost(platform, options=_options(), clock=clock, sync_interval=60)  # no poll during the test
    partitions = PartitionStore(platform.session_factory, platform.settings.engine_partitions)
    partition = partitions.partition_of(str(account.id))
    await host.start()
    try:
        epoch = host.worker.owned[partition]
        assert partitions.owners()[partition] == (epoch, host.worker.id)  # claimed like a worker claims
        secret = new_webhook_secret(platform, user, bot.id)
        accepted = SignalGate(platform).receive(_enter_long(secret, bot.id), "127.0.0.1")
        loop = asyncio.get_running_loop()
        posted = loop.time()
        while not _ledger(platform) and loop.time() - posted < 5:
            await asyncio.sleep(0.01)
        woken = loop.time() - posted
        [row] = _ledger(platform)
        assert (row.message_id, row.partition, row.epoch, row.worker, row.account_id, row.kind) == (
            f"inbox-{accepted.inbox_id}", partition, epoch, host.worker.id, str(account.id), "signal")
        assert woken < 1.0, f"applied {woken:.2f} s after it was posted (the poll is every 60 s)"
        for _ in range(100):  # acknowledged (marked delivered) right after the commit
            with platform.uow() as uow:
                [item] = InboxRepository(uow.session).for_bot(user, bot.id)
                if item.delivered_at is not None:
                    break
            await asyncio.sleep(0.01)
        assert item.delivered_at is not None
        await _wait_for_order(simex, int(exchange_account["id"]), f"sb{bot.id}-")
    finally:
        await host.stop()
    assert partitions.owners()[partition] == (epoch, None)  # released cleanly on stop


def _ledger(platform: Platform) -> list[EngineMessage]:
    with platform.session_factory() as session:
        return list(session.scalars(sa.select(EngineMessage)))
