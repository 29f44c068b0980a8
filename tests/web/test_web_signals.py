"""The signal webhook: a valid TradingView body is recorded and queued for the engine;
wrong secret, unknown bot, stale, replayed, malformed, oversize, wrong source and too
many are refused with their status and recorded (without the secret), and none of
them changes any bot."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from sealbot.domain import SignalAction, SignalReceived
from sealbot.services import inbox
from sealbot.services.platform import Platform
from sealbot.simex import SimexServer

from .webkit import DCA_CONFIG, SIGNAL_CONFIG, Clients, User, linked_simex_account, signup


async def _bot(http: Clients, platform: Platform, simex: SimexServer, user: User, kind: str = "signal",
               start: bool = True) -> tuple[int, str]:
    """A bot on a linked simex account (a bot without one cannot be started)."""
    account = await linked_simex_account(platform, simex, http.leaks, user.user_id)
    config = SIGNAL_CONFIG if kind == "signal" else {**DCA_CONFIG, "start_condition": "signal"}
    r = await user.client.post("/api/v1/bots", json={"kind": kind, "name": kind, "config": config, "start": start,
                                                     "account_id": account})
    assert r.status_code == 201, r.text
    bot_id = r.json()["id"]
    secret = (await user.client.post(f"/api/v1/bots/{bot_id}/webhook-secret")).json()["secret"]
    return bot_id, secret


def _tv(bot_id: int, secret: str, *, action: str = "enter_long", at: datetime | None = None,
        **extra: Any) -> dict[str, Any]:
    """A 3Commas-style signal-bot body as pasted into a TradingView alert."""
    stamp = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"secret": secret, "max_lag": "300", "timestamp": stamp, "trigger_price": "50000",
            "tv_exchange": "BINANCE", "tv_instrument": "BTCUSDT", "action": action, "bot_uuid": str(bot_id),
            **extra}


def _state(platform: Platform) -> list[tuple[Any, ...]]:
    with platform.session_factory() as session:
        return [tuple(r) for r in session.execute(sa.text("select id, status, state, version from bots order by id"))]


def _refusals(platform: Platform) -> list[dict[str, Any]]:
    with platform.session_factory() as session:
        rows = session.scalars(sa.text("select details from audit_log where action = 'signal.refused' order by seq"))
        return [json.loads(d) for d in rows]


async def test_a_valid_signal_is_recorded_and_queued_for_the_bot(
        http: Clients, platform: Platform, simex: SimexServer) -> None:
    user = await signup(http, "tv@example.org", two_factor=False)
    bot_id, secret = await _bot(http, platform, simex, user)
    http.leaks.once.add(secret)
    r = await http.new().post("/api/v1/signals", json=_tv(bot_id, secret))
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "accepted" and r.json()["action"] == "enter_long"
    [item] = inbox.pending(platform, bot_ids=[bot_id])
    assert isinstance(item.event, SignalReceived) and item.event.action is SignalAction.ENTER_LONG
    assert item.event.signal_id == r.json()["signal_id"]
    delivered: list[tuple[str, object]] = []

    async def deliver(bot: str, event: object) -> int:
        delivered.append((bot, event))
        return 0

    assert await inbox.deliver_pending(platform, deliver) == 1
    assert delivered == [(str(bot_id), item.event)] and inbox.pending(platform) == []
    with platform.session_factory() as session:
        assert session.scalar(sa.text("select status from signals")) == "accepted"


async def test_a_dca_start_signal_reaches_a_dca_bot(
        http: Clients, platform: Platform, simex: SimexServer) -> None:
    user = await signup(http, "dca@example.org", two_factor=False)
    bot_id, secret = await _bot(http, platform, simex, user, "dca")
    http.leaks.once.add(secret)
    body = {"message_type": "bot", "bot_id": bot_id, "email_token": secret, "delay_seconds": 0, "pair": "USDT_BTC"}
    r = await http.new().post("/api/v1/signals", json=body)
    assert r.status_code == 202, r.text
    [item] = inbox.pending(platform, bot_ids=[bot_id])
    assert isinstance(item.event, SignalReceived) and item.event.action is SignalAction.START_DEAL
    # a pair the bot does not trade: refused, naming it, rather than accepted and dropped by the engine
    r = await http.new().post("/api/v1/signals", json={**body, "pair": "USDT_DOGE"})
    assert r.status_code == 422 and r.json()["field"] == "pair", r.text
    assert r.json()["reason"] == "not a pair this bot trades (it trades BTC/USDT)", r.json()
    assert len(inbox.pending(platform, bot_ids=[bot_id])) == 1


async def test_bad_signals_are_refused_recorded_without_secret_and_change_nothing(
        http: Clients, platform: Platform, simex: SimexServer) -> None:
    user = await signup(http, "bad@example.org", two_factor=False)
    bot_id, secret = await _bot(http, platform, simex, user)
    http.leaks.once.add(secret)
    caller = http.new()
    good = _tv(bot_id, secret)
    assert (await caller.post("/api/v1/signals", json=good)).status_code == 202
    before = _state(platform)
    queued = len(inbox.pending(platform))
    wrong_secret = await caller.post("/api/v1/signals", json=_tv(bot_id, "not-the-secret-at-all"))
    unknown_bot = await caller.post("/api/v1/signals", json=_tv(999_999, secret))
    non_numeric = await caller.post("/api/v1/signals", json=_tv(bot_id, secret, bot_uuid="abc"))
    assert wrong_secret.status_code == unknown_bot.status_code == non_numeric.status_code == 401
    assert wrong_secret.json() == unknown_bot.json() == non_numeric.json()  # existence is not revealed
    stale = await caller.post("/api/v1/signals", json=_tv(bot_id, secret, at=datetime.now(UTC) - timedelta(hours=1)))
    assert stale.status_code == 422 and stale.json()["kind"] == "stale"
    replay = await caller.post("/api/v1/signals", json=good)
    assert replay.status_code == 409 and replay.json()["kind"] == "duplicate"
    malformed = await caller.post("/api/v1/signals", content=b'{"secret": "x", bot_uuid',
                                  headers={"content-type": "application/json"})
    assert malformed.status_code == 422 and malformed.json()["kind"] == "malformed"
    missing = await caller.post("/api/v1/signals", json={"secret": secret, "action": "enter_long"})
    assert missing.status_code == 422 and missing.json()["field"] == "bot_uuid"
    oversize = await caller.post("/api/v1/signals", json=_tv(bot_id, secret, note="x" * 20_000))
    assert oversize.status_code == 413
    assert _state(platform) == before and len(inbox.pending(platform)) == queued
    refusals = _refusals(platform)
    assert [r["kind"] for r in refusals] == ["unauthorized", "unauthorized", "unauthorized", "stale", "duplicate",
                                             "malformed", "malformed", "too_large"]
    with platform.session_factory() as session:
        everything = " ".join(session.scalars(sa.text("select details from audit_log")))
    assert secret not in everything and "not-the-secret-at-all" not in everything


async def test_allow_list_rate_limit_and_stopped_bots(
        http: Clients, platform: Platform, simex: SimexServer) -> None:
    user = await signup(http, "ips@example.org", two_factor=False)
    bot_id, secret = await _bot(http, platform, simex, user)
    http.leaks.once.add(secret)
    r = await user.client.put(f"/api/v1/bots/{bot_id}/webhook-policy",
                              json={"allowed_ips": ["tradingview"], "max_per_minute": 2})
    assert r.status_code == 200 and "52.89.214.238" in r.json()["allowed_ips"]
    caller = http.new()
    t0 = datetime.now(UTC)
    r = await caller.post("/api/v1/signals", json=_tv(bot_id, secret))
    assert r.status_code == 403 and r.json()["kind"] == "forbidden"  # the test client is 127.0.0.1
    await user.client.put(f"/api/v1/bots/{bot_id}/webhook-policy",
                          json={"allowed_ips": ["127.0.0.0/8"], "max_per_minute": 2})
    codes = [(await caller.post("/api/v1/signals", json=_tv(bot_id, secret, at=t0 - timedelta(seconds=i)))).status_code
             for i in range(3)]
    assert codes == [202, 202, 429]
    await user.client.post(f"/api/v1/bots/{bot_id}/stop")
    r = await caller.post("/api/v1/signals", json=_tv(bot_id, secret, at=t0 - timedelta(seconds=9)))
    assert r.status_code == 409 and r.json()["kind"] == "not_running"
    r = await user.client.put(f"/api/v1/bots/{bot_id}/webhook-policy", json={"allowed_ips": ["nope"]})
    assert r.status_code == 422 and r.json()["field"] == "allowed_ips.0"


async def test_a_new_secret_replaces_the_old_and_only_its_hash_is_stored(
        http: Clients, platform: Platform, simex: SimexServer) -> None:
    user = await signup(http, "rot@example.org", two_factor=False)
    bot_id, old = await _bot(http, platform, simex, user)
    new = (await user.client.post(f"/api/v1/bots/{bot_id}/webhook-secret")).json()["secret"]
    http.leaks.once.update({old, new})
    assert len(new) >= 32  # 192 bits, URL-safe base64
    assert (await http.new().post("/api/v1/signals", json=_tv(bot_id, old))).status_code == 401
    assert (await http.new().post("/api/v1/signals", json=_tv(bot_id, new))).status_code == 202
    with platform.session_factory() as session:
        stored = session.scalar(sa.text("select webhook_secret_hash from bots"))
    assert stored.startswith("sha256:") and new not in stored
