"""A user's stored guard limits reach the running engine: stored while it runs, they
judge its next order without a restart, the daily total counts every one of the user's
accounts, and another user is not touched by them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from sealbot.custody.secrets import ApiCredentials
from sealbot.domain.errors import InvalidConfig, NotFound
from sealbot.engine.app import EngineOptions
from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.runner import RunnerSettings
from sealbot.services import guard_limits
from sealbot.services.accounts import link_account, register_user
from sealbot.services.bots import create_bot
from sealbot.services.demo import AcceleratedClock
from sealbot.services.engine_host import EngineHost
from sealbot.services.platform import Platform
from sealbot.services.webhooks import SignalGate, new_webhook_secret
from sealbot.simex import SimexServer

MARKET = {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"}
SIGNAL = {"markets": [MARKET], "amount": "25"}  # 25 USDT a signal
SPEED = 120.0


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=SPEED) as server:
        yield server


async def _signal_bot(platform: Platform, simex: SimexServer, user: int, label: str) -> tuple[int, int, str]:
    """(bot id, simex account id, webhook secret) of a running signal bot on a new account."""
    sim = simex.admin.create_account(label, {"USDT": "5000"})
    key = simex.admin.create_key(int(sim["id"]), ip_whitelist=["127.0.0.1"])
    account = await link_account(platform, user, "binance", label, ApiCredentials(key["key"], key["secret"]))
    bot = create_bot(platform, user, account.id, "signal", label, SIGNAL, start=True)
    return bot.id, int(sim["id"]), new_webhook_secret(platform, user, bot.id)


def _enter_long(secret: str, bot_id: int) -> bytes:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"secret": secret, "max_lag": "300", "timestamp": stamp, "trigger_price": "50000",
                       "tv_exchange": "BINANCE", "tv_instrument": "BTCUSDT", "action": "enter_long",
                       "bot_uuid": str(bot_id)}).encode()


async def _until(predicate: object, what: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _bot(platform: Platform, owner: int, bot_id: int) -> tuple[str, str | None]:
    with platform.uow() as uow:
        bot = uow.bots.get(owner, bot_id)
        return str(bot.status), bot.pause_reason


async def test_limits_stored_while_the_engine_runs_judge_its_next_order_across_the_users_accounts(
        platform: Platform, simex: SimexServer) -> None:
    alice = register_user(platform, "limits-alice@example.org", "correct horse battery")
    bob = register_user(platform, "limits-bob@example.org", "correct horse battery")
    (a1, s1, k1), (a2, s2, k2) = [await _signal_bot(platform, simex, alice, f"alice{i}") for i in (1, 2)]
    b1, sb, kb = await _signal_bot(platform, simex, bob, "bob")
    clock = AcceleratedClock(datetime.fromtimestamp(simex.admin.clock()["now_ms"] / 1000, UTC), SPEED)
    options = EngineOptions(runner=RunnerSettings(poll_interval=0.1, feed_interval=0.1, market_ttl=0),
                            guard=GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0))), watchdog_interval=3600)
    host = EngineHost(platform, options=options, clock=clock, sync_interval=0.1)
    await host.start()
    try:
        # stored while the engine runs: 40 USDT a day over all of Alice's accounts
        guard_limits.set_user_guard_limits(platform, alice, {"max_daily_notional": "40"})
        await host.sync_once()
        gate = SignalGate(platform)
        gate.receive(_enter_long(k1, a1), "127.0.0.1")  # 25 of Alice's 40
        await host.sync_once()
        await _until(lambda: simex.admin.orders(s1), "Alice's first order")
        gate.receive(_enter_long(k2, a2), "127.0.0.1")  # another 25 on her other account: 50 > 40
        gate.receive(_enter_long(kb, b1), "127.0.0.1")  # Bob has no limits of his own
        await host.sync_once()
        await _until(lambda: _bot(platform, alice, a2)[0] == "paused", "Alice's second bot paused")
        await _until(lambda: simex.admin.orders(sb), "Bob's order")
    finally:
        await host.stop()
    status, reason = _bot(platform, alice, a2)
    assert status == "paused"
    assert "daily_notional" in (reason or ""), reason
    assert simex.admin.orders(s2) == []  # refused before it reached the exchange
    assert [_bot(platform, alice, a1)[0], _bot(platform, bob, b1)[0]] == ["running", "running"]
    assert [Decimal(o["qty"]) for o in simex.admin.orders(sb)] == [Decimal("0.0005")]  # 25 USDT at 50,000


def test_user_limits_are_validated_field_by_field_and_kept_apart(platform: Platform) -> None:
    alice = register_user(platform, "v-alice@example.org", "correct horse battery")
    bob = register_user(platform, "v-bob@example.org", "correct horse battery")
    assert guard_limits.set_user_guard_limits(platform, alice, {"max_order_notional": 100}) == {
        "max_order_notional": "100"}
    for bad, field in (({"max_order_notional": "-1"}, "limits.max_order_notional"),
                       ({"max_order_notional": "NaN"}, "limits.max_order_notional"),
                       ({"max_order_notional": True}, "limits.max_order_notional"),
                       ({"allowed_pairs": "BTC/USDT"}, "limits.allowed_pairs"),
                       ({"max_deviation_pct": None}, "limits.max_deviation_pct"),
                       ({"max_oder_notional": "1"}, "limits.max_oder_notional")):
        with pytest.raises(InvalidConfig) as err:
            guard_limits.set_user_guard_limits(platform, alice, bad)
        assert err.value.field == field, bad
    assert guard_limits.user_guard_limits(platform, alice) == {"max_order_notional": "100"}  # nothing half-written
    assert guard_limits.user_guard_limits(platform, bob) is None
    with pytest.raises(NotFound):
        guard_limits.clear_user_guard_limits(platform, bob)
    guard_limits.clear_user_guard_limits(platform, alice)
    assert guard_limits.user_guard_limits(platform, alice) is None
