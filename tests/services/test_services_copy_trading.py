"""Copy trading: one signal reaches every member account of a copy set with that
account's size, each account's own guard limits apply independently (one refuses, the
others trade on simex), and a set can only hold the owner's own accounts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealbot.custody.secrets import ApiCredentials
from sealbot.domain import AmountType, Event, SignalAction, SignalReceived
from sealbot.domain.errors import InvalidConfig, NotFound
from sealbot.engine.app import Engine, EngineOptions
from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.runner import RunnerSettings
from sealbot.services import copy_trading, guard_limits, inbox
from sealbot.services.accounts import link_account, register_user
from sealbot.services.copy_trading import MemberSpec, member_signal, sized_config
from sealbot.services.platform import Platform
from sealbot.services.webhooks import SignalGate, WebhookRefused
from sealbot.simex import SimexServer

MARKET = {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"}
SIGNAL = {"markets": [MARKET], "amount": "25", "max_position": "100"}
DCA = {"markets": [MARKET], "base_order_volume": "20", "safety_order_volume": "40", "max_safety_orders": 2,
       "safety_order_step_percentage": "2", "take_profit": "5", "base_order_type": "market"}


# --- sizing (pure) ---


def test_a_multiplier_scales_every_size_of_a_signal_and_a_dca_config() -> None:
    s = sized_config("signal", SIGNAL, multiplier=Decimal("2.5"))
    assert (s["amount"], s["max_position"]) == ("62.50000000", "250.00000000")
    d = sized_config("dca", {**DCA, "custom_safety_steps": [{"price_deviation": "1", "volume": "30"}],
                             "max_safety_orders": 1}, multiplier=Decimal("0.5"))
    assert (d["base_order_volume"], d["safety_order_volume"]) == ("10.00000000", "20.00000000")
    assert d["custom_safety_steps"][0]["volume"] == "15.00000000"
    assert sized_config("signal", SIGNAL) == {**SIGNAL, "amount": "25.00000000", "max_position": "100.00000000"}


def test_a_base_size_fixes_the_entry_and_keeps_the_ladder_shape() -> None:
    d = sized_config("dca", DCA, base_size=Decimal("30"))
    assert d["base_order_volume"] == "30" and d["safety_order_volume"] == "60.00000000"
    s = sized_config("signal", SIGNAL, base_size=Decimal("10"))
    assert s["amount"] == "10" and s["max_position"] == "40.00000000"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"multiplier": Decimal(0)}, "members.0.multiplier"),
    ({"multiplier": Decimal(1001)}, "members.0.multiplier"),
    ({"base_size": Decimal(-1)}, "members.0.base_size"),
    ({"multiplier": Decimal(2), "base_size": Decimal(5)}, "members.0"),
    ({"multiplier": Decimal("1E-12")}, "config.amount"),
])
def test_bad_sizing_names_its_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidConfig) as err:
        sized_config("signal", SIGNAL, field="members.0", **kwargs)
    assert err.value.field == field


@given(amount=st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal(10**9), places=8),
       factor=st.decimals(min_value=Decimal("0.001"), max_value=Decimal(1000), places=3))
def test_a_members_signal_amount_is_scaled_down_never_up(amount: Decimal, factor: Decimal) -> None:
    signal = SignalReceived("s1", SignalAction.ENTER_LONG, datetime(2026, 1, 1, tzinfo=UTC), amount=amount,
                            amount_type=AmountType.QUOTE)
    scaled = member_signal(signal, factor).amount
    assert scaled is not None and scaled <= amount * factor < scaled + Decimal("1E-8")
    percent = SignalReceived("s2", SignalAction.ENTER_LONG, signal.at, amount=Decimal(10),
                             amount_type=AmountType.PERCENT_OF_BALANCE)
    assert member_signal(percent, factor) == percent


@given(volume=st.decimals(min_value=Decimal(5), max_value=Decimal(10**6), places=8),
       factor=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(1000), places=2))
def test_scaled_sizes_never_exceed_the_factor_and_differ_by_less_than_one_unit_of_rounding(
        volume: Decimal, factor: Decimal) -> None:
    d = sized_config("dca", {**DCA, "base_order_volume": str(volume), "safety_order_volume": str(volume * 2)},
                     multiplier=factor)
    for key, original in (("base_order_volume", volume), ("safety_order_volume", volume * 2)):
        scaled = Decimal(d[key])
        assert scaled <= original * factor < scaled + Decimal("1E-8")


# --- on simex, through the webhook and the engine ---


@pytest.fixture(scope="module")
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=0) as server:
        yield server


async def _link(platform: Platform, simex: SimexServer, user: int, label: str) -> tuple[int, int]:
    """(sealbot account id, simex account id) with 5,000 USDT."""
    sim = simex.admin.create_account(label, {"USDT": "5000"})
    key = simex.admin.create_key(int(sim["id"]), ip_whitelist=["127.0.0.1"])
    account = await link_account(platform, user, "binance", label, ApiCredentials(key["key"], key["secret"]))
    return account.id, int(sim["id"])


def _body(secret: str, route: str) -> bytes:
    return json.dumps({"secret": secret, "max_lag": "300",
                       "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "trigger_price": "50000",
                       "tv_exchange": "BINANCE", "tv_instrument": "BTCUSDT", "action": "enter_long",
                       "bot_uuid": route}).encode()


async def test_one_signal_trades_on_every_account_with_its_size_under_its_own_guard(
        platform: Platform, simex: SimexServer) -> None:
    user = register_user(platform, "copy@example.org", "correct horse battery")
    (a1, s1), (a2, s2), (a3, s3) = [await _link(platform, simex, user, f"acc{i}") for i in range(3)]
    # account 2 may not place an order above 40 USDT; the others keep the engine's limits
    stored = guard_limits.set_account_guard_limits(platform, user, a2, {"max_order_notional": "40"})
    assert stored == {"max_order_notional": "40"}
    view = copy_trading.create_copy_set(platform, user, "signal", "tv copy", SIGNAL,
                                        [MemberSpec(a1), MemberSpec(a2, multiplier=Decimal(2)),
                                         MemberSpec(a3, base_size=Decimal(75))], start=True)
    bots = {m.account_id: m.bot_id for m in view.members}
    assert {m.account_id: m.config["amount"] for m in view.members} == {a1: "25.00000000", a2: "50.00000000",
                                                                          a3: "75"}
    secret = copy_trading.new_copy_set_webhook_secret(platform, user, view.id)

    options = EngineOptions(runner=RunnerSettings(background=False, poll_feeds=False, market_ttl=0),
                            guard=GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0))),
                            watchdog_interval=3600, portfolio_interval=None)
    engine = Engine(platform.session_factory, platform.venue_for, options=options)
    await engine.start()
    try:
        assert set(engine.options.guard.accounts) == {str(a2)}
        assert engine.options.guard.accounts[str(a2)].min_quote_volume_24h == 0  # unset: the engine's default
        accepted = SignalGate(platform).receive(_body(secret, view.webhook_route), "127.0.0.1")
        assert sorted(accepted.members) == sorted(bots.values())

        async def deliver(bot_id: str, event: Event) -> None:
            for runner in engine.runner.accounts.values():
                if bot_id in runner.bots:
                    await runner.deliver(bot_id, event)
                    await runner.drain()

        assert await inbox.deliver_pending(platform, deliver) == 3
    finally:
        await engine.stop()

    placed = {sim: simex.admin.orders(sim) for sim in (s1, s2, s3)}
    assert [o["client_id"].split("-")[0] for o in placed[s1]] == [f"sb{bots[a1]}"]
    assert [o["client_id"].split("-")[0] for o in placed[s3]] == [f"sb{bots[a3]}"]
    assert placed[s2] == []  # refused by account 2's own limit: nothing reached the exchange
    with platform.uow() as uow:
        b1, b2, b3 = (uow.bots.get(user, bots[a]) for a in (a1, a2, a3))
        assert (b1.status, b3.status) == ("running", "running")
        assert b2.status == "paused" and "order_notional" in (b2.pause_reason or "")
    # market buys sized 25 and 75 USDT at the signal's trigger price (50,000)
    assert [Decimal(placed[sim][0]["qty"]) for sim in (s1, s3)] == [Decimal("0.0005"), Decimal("0.0015")]


async def test_a_copy_set_cannot_hold_another_users_account_and_its_webhook_needs_its_secret(
        platform: Platform, simex: SimexServer) -> None:
    alice = register_user(platform, "alice-copy@example.org", "correct horse battery")
    bob = register_user(platform, "bob-copy@example.org", "correct horse battery")
    (mine, _), (theirs, _) = await _link(platform, simex, alice, "a"), await _link(platform, simex, bob, "b")
    with pytest.raises(NotFound):
        copy_trading.create_copy_set(platform, alice, "signal", "x", SIGNAL, [MemberSpec(mine), MemberSpec(theirs)])
    assert copy_trading.list_copy_sets(platform, alice) == []  # all or nothing
    with pytest.raises(InvalidConfig) as err:
        copy_trading.create_copy_set(platform, alice, "signal", "x", SIGNAL, [MemberSpec(mine), MemberSpec(mine)])
    assert err.value.field == "members.1.account_id"
    with pytest.raises(InvalidConfig) as err:
        copy_trading.create_copy_set(platform, alice, "grid", "x", SIGNAL, [MemberSpec(mine)])
    assert err.value.field == "kind"
    view = copy_trading.create_copy_set(platform, alice, "signal", "x", SIGNAL, [MemberSpec(mine)])
    with pytest.raises(NotFound):
        copy_trading.get_copy_set(platform, bob, view.id)
    with pytest.raises(NotFound):
        copy_trading.add_member(platform, bob, view.id, MemberSpec(theirs))
    with pytest.raises(NotFound):
        copy_trading.add_member(platform, alice, view.id, MemberSpec(theirs))
    with pytest.raises(NotFound):
        guard_limits.set_account_guard_limits(platform, alice, theirs, {"max_order_notional": "1"})
    with pytest.raises(InvalidConfig) as err:
        guard_limits.set_account_guard_limits(platform, alice, mine, {"max_order_notional": "-1"})
    assert err.value.field == "limits.max_order_notional"
    with pytest.raises(InvalidConfig) as err:
        guard_limits.set_account_guard_limits(platform, alice, mine, {"max_oder_notional": "1"})
    assert err.value.field == "limits.max_oder_notional"

    gate = SignalGate(platform)
    with pytest.raises(WebhookRefused) as refused:
        gate.receive(_body("no secret set yet", view.webhook_route), "127.0.0.1")
    assert refused.value.kind == "unauthorized"
    secret = copy_trading.new_copy_set_webhook_secret(platform, alice, view.id)
    with pytest.raises(WebhookRefused) as refused:
        gate.receive(_body(secret + "x", view.webhook_route), "127.0.0.1")
    assert refused.value.kind == "unauthorized"
    with pytest.raises(WebhookRefused) as refused:
        gate.receive(_body(secret, view.webhook_route), "127.0.0.1")
    assert refused.value.kind == "not_running"
    copy_trading.set_copy_set_status(platform, alice, view.id, "running")
    body = _body(secret, view.webhook_route)
    assert len(gate.receive(body, "127.0.0.1").members) == 1
    with pytest.raises(WebhookRefused) as refused:
        gate.receive(body, "127.0.0.1")
    assert refused.value.kind == "duplicate"
    with pytest.raises(InvalidConfig):
        copy_trading.delete_copy_set(platform, alice, view.id)
    copy_trading.set_copy_set_status(platform, alice, view.id, "stopped")
    copy_trading.delete_copy_set(platform, alice, view.id)
    with platform.uow() as uow:
        assert uow.bots.list(alice) == []


async def test_a_dca_copy_set_takes_the_dca_body_and_refuses_the_signal_body(platform: Platform,
                                                                            simex: SimexServer) -> None:
    user = register_user(platform, "dca-copy@example.org", "correct horse battery")
    (a1, _), (a2, _) = await _link(platform, simex, user, "d1"), await _link(platform, simex, user, "d2")
    view = copy_trading.create_copy_set(platform, user, "dca", "dca copy", DCA,
                                        [MemberSpec(a1), MemberSpec(a2, base_size=Decimal(50))], start=True)
    assert [m.config["safety_order_volume"] for m in view.members] == ["40.00000000", "100.00000000"]
    secret = copy_trading.new_copy_set_webhook_secret(platform, user, view.id)
    gate = SignalGate(platform)
    with pytest.raises(WebhookRefused) as refused:
        gate.receive(_body(secret, view.webhook_route), "127.0.0.1")
    assert refused.value.kind == "malformed"
    body = json.dumps({"message_type": "bot", "bot_id": view.webhook_route, "email_token": secret,
                       "delay_seconds": 0, "pair": "USDT_BTC"}).encode()
    accepted = gate.receive(body, "127.0.0.1")
    assert sorted(accepted.members) == sorted(m.bot_id for m in view.members)
    events = [i.event for i in inbox.pending(platform)]
    assert len(events) == 2 and all(isinstance(e, SignalReceived) for e in events)
