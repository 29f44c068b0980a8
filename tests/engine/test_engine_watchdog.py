"""The watchdog flags orders sealbot did not journal, pauses the bots and alerts."""

from __future__ import annotations

import json
from decimal import Decimal

from sealbot.domain import AlertLevel, ClientOrderId, Order, OrderType, Side
from sealbot.domain.evolve import evolve
from sealbot.engine.journal import AccountRecord, AlertRecord, BotStatus
from sealbot.engine.notify import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    EmailChannel,
    Notifier,
    WebhookChannel,
    verify_webhook,
)
from sealbot.engine.watchdog import Watchdog, WatchdogPolicy
from sealbot.venues.base import Venue

from .receivers import SmtpSink, WebhookReceiver
from .test_engine_runner import ACCOUNT, BTC, setup, started, step_market

SECRET = "whsec-test-0123456789"


async def test_a_foreign_order_is_flagged_bots_paused_and_the_alert_delivered_to_a_webhook() -> None:
    journal, venue, clock = setup()
    with WebhookReceiver() as receiver:
        notifier = Notifier(journal)
        notifier.add("alice", WebhookChannel(receiver.url, SECRET, clock=clock))
        runner, acc = await started(journal, venue, clock)
        await step_market(runner, acc, venue, 0, "100")  # sealbot's own orders: not flagged

        async def venue_for(_account: AccountRecord) -> Venue:
            return venue

        async def deliver(alert: object) -> None:
            await notifier.deliver(alert)  # type: ignore[arg-type]

        dog = Watchdog(journal, venue_for, runner.pause_account, alert_sink=deliver, clock=clock)
        assert await dog.check(ACCOUNT) == []
        # the attacker forges a sealbot-looking client id: the journal, not the prefix, decides
        venue.place_foreign(BTC, "sb7-99-b")
        findings = await dog.check(ACCOUNT)
        assert [f.kind for f in findings] == ["foreign_order"]
        assert journal.data.bots["7"].status == BotStatus.PAUSED
        alert = journal.data.alerts[-1]
        assert alert.level is AlertLevel.CRITICAL and alert.code == "watchdog.foreign_order"
        assert "sb7-99-b" in alert.message and alert.delivered == ("webhook",)
        headers, body = receiver.received[-1]
        assert json.loads(body)["code"] == "watchdog.foreign_order"
        assert verify_webhook(SECRET, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER],
                              now=clock.now().timestamp())
        assert not verify_webhook("wrong", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER],
                                  now=clock.now().timestamp())
        assert not verify_webhook(SECRET, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER],
                                  now=clock.now().timestamp() + 3600)
        # the same order is not reported again on the next pass
        assert await dog.check(ACCOUNT) == []
        await runner.stop()


async def test_a_foreign_trade_on_a_bot_pair_is_flagged_and_the_key_revoked_by_policy() -> None:
    journal, venue, clock = setup()
    revoked: list[str] = []

    async def venue_for(_account: AccountRecord) -> Venue:
        return venue

    async def pause(account: str, _reason: str) -> list[str]:
        return ["7"]

    async def revoke(account: AccountRecord, _reason: str) -> None:
        revoked.append(account.id)

    foreign = Order(ClientOrderId("x", 1, "b"), BTC, Side.BUY, OrderType.MARKET, Decimal(1))
    venue.orders["thief1"] = evolve(foreign, client_id=foreign.client_id)
    venue.fill("thief1", Decimal(1), Decimal(300))
    del venue.orders["thief1"]  # filled and gone from the open orders
    dog = Watchdog(journal, venue_for, pause, revoke=revoke, policy=WatchdogPolicy(revoke_on_leak=True),
                   clock=clock)
    findings = await dog.check(ACCOUNT)
    assert [f.kind for f in findings] == ["foreign_trade"] and revoked == ["1"]


async def test_permission_drift_alerts_and_withdrawals_pause() -> None:
    journal, venue, clock = setup()
    paused: list[str] = []

    async def venue_for(_account: AccountRecord) -> Venue:
        return venue

    async def pause(account: str, _reason: str) -> list[str]:
        paused.append(account)
        return []

    dog = Watchdog(journal, venue_for, pause, clock=clock)
    assert await dog.check(ACCOUNT) == []  # first report: the baseline
    venue.permission_report = evolve(venue.permission_report, ip_restricted=False)
    drift = await dog.check(ACCOUNT)
    assert [f.detail for f in drift] == ["the key's IP restriction was removed"] and paused == []
    assert journal.data.alerts[-1].level is AlertLevel.WARNING
    venue.permission_report = evolve(venue.permission_report, can_withdraw=True)
    drift = await dog.check(ACCOUNT)
    assert "withdrawals were enabled" in drift[0].detail and paused == ["1"]
    assert journal.data.alerts[-1].level is AlertLevel.CRITICAL


async def test_alerts_go_out_by_email_and_a_dead_channel_does_not_stop_the_others() -> None:
    journal, _venue, clock = setup()
    with SmtpSink() as sink, WebhookReceiver() as receiver:
        notifier = Notifier(journal)
        notifier.add("alice", WebhookChannel("http://127.0.0.1:9/nothing-listens", SECRET, timeout=1, clock=clock))
        notifier.add("alice", EmailChannel("127.0.0.1", sink.port, "bot@sealbot.local", ["alice@example.org"],
                                           starttls=False))
        notifier.add("alice", WebhookChannel(receiver.url, SECRET, clock=clock), AlertLevel.CRITICAL)
        with journal.transaction() as tx:
            alert = tx.add_alert(AlertRecord("alice", AlertLevel.WARNING, "test.alert", "hello", clock.now()))
        assert await notifier.deliver(alert) == ["email"]  # the warning is below the 2nd webhook's level
        assert "Subject: [sealbot warning] test.alert" in sink.messages[0] and receiver.received == []
        assert journal.data.alerts[-1].delivered == ("email",)
        assert await notifier.deliver(evolve(alert, user="bob")) == []


def test_channel_secrets_never_show_in_a_repr() -> None:
    assert SECRET not in repr(WebhookChannel("http://x", SECRET))
    assert "hunter2" not in repr(EmailChannel("h", 25, "a@b", ["c@d"], "u", "hunter2"))

