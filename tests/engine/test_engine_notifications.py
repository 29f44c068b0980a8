"""Alerts the engine raises reach the channels users stored: a signed webhook, e-mail and
Telegram, each at or above its minimum level; a dead channel costs the others nothing
and its failure is noted on its row; channel changes are picked up by the next alert."""

from __future__ import annotations

import base64
import io
import json
import logging
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sealbot.config import load_settings
from sealbot.domain import AlertLevel, Pair
from sealbot.domain.errors import Refused
from sealbot.engine import Engine, EngineOptions, RunnerSettings
from sealbot.engine.clock import FakeClock
from sealbot.engine.guard import GuardLimits, GuardPolicy, MarketSnapshot
from sealbot.engine.journal import AccountRecord, AlertRecord
from sealbot.engine.notify import SIGNATURE_HEADER, TIMESTAMP_HEADER, KeySigner, verify_webhook
from sealbot.logs import make_handler
from sealbot.services import notifications
from sealbot.services.instance import init_instance
from sealbot.services.notifications import PinnedWebhook, StoredNotifier, build_notifier
from sealbot.services.platform import Platform, open_platform
from sealbot.store.models import AlertRow, NotificationChannel
from sealbot.venues.base import Venue

from .fakes import T0, FakeVenue
from .receivers import SmtpSink, WebhookReceiver
from .test_engine_runner import candle, dca_config

BTC = Pair("BTC", "USDT")
SMTP_PASSWORD = "smtp-pass-0123456789-not-for-logs"
TELEGRAM_TOKEN = "123456:telegram-token-abcdefghijklmnop"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


@pytest.fixture
def telegram() -> Iterator[WebhookReceiver]:
    """A stand-in for the Telegram Bot API (``POST /bot<token>/sendMessage``)."""
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def platform(tmp_path: Path, database_url: str, sink: SmtpSink, telegram: WebhookReceiver) -> Platform:
    settings = load_settings(data_dir=tmp_path / "data", config_dir=tmp_path / "config",
                             database_url=database_url, notify_allow_loopback=True, notify_timeout=2,
                             smtp_host="127.0.0.1", smtp_port=sink.port, smtp_starttls=False,
                             smtp_from="alerts@sealbot.example", smtp_user="sealbot", smtp_password=SMTP_PASSWORD,
                             telegram_bot_token=TELEGRAM_TOKEN, telegram_api_url=telegram.url.rsplit("/", 1)[0])
    init_instance(settings)
    return open_platform(settings)


def seed(platform: Platform, email: str = "alice@example.org") -> tuple[int, int]:
    """A user with an account on the fake exchange and one running DCA bot."""
    with platform.uow() as uow:
        user = uow.users.add(email, "x")
        account = uow.accounts.add(user.id, "fake", "main")
        bot = uow.bots.add(user.id, "dca", "dca one", dca_config("999", base_order_type="limit"),
                           account_id=account.id)
        uow.bots.set_status(user.id, bot.id, "running")
        return user.id, account.id


def channel_row(platform: Platform, channel_id: int) -> NotificationChannel:
    with platform.session_factory() as s:
        row = s.get(NotificationChannel, channel_id)
        assert row is not None
        s.expunge(row)
        return row


async def test_engine_alerts_reach_a_signed_webhook_and_email_each_at_its_minimum_level(
        platform: Platform, sink: SmtpSink) -> None:
    owner, account_id = seed(platform)
    with WebhookReceiver() as receiver:
        hook = notifications.add_channel(platform, owner, "webhook", receiver.url, min_level="warning")
        mail = notifications.add_channel(platform, owner, "email", "alice@example.org", min_level="critical")
        assert hook.secret is not None and mail.secret is None
        clock = FakeClock((T0 + timedelta(minutes=1)).timestamp())
        venue = FakeVenue(now=clock.now)

        async def venue_factory(_a: AccountRecord) -> Venue:
            return venue

        options = EngineOptions(runner=RunnerSettings(poll_feeds=False, background=False),
                                guard=GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0))),
                                portfolio_interval=None)
        engine = Engine(platform.session_factory, venue_factory, options=options, notifier=build_notifier(platform),
                        clock=clock)
        await engine.runner.start_account(str(account_id))
        # 1. the guard refuses a buy at 3x the reference price: a critical alert
        acc = engine.runner.accounts[str(account_id)]
        acc.market.set(MarketSnapshot(BTC, last=Decimal("33"), quote_volume_24h=Decimal(10**9)))
        engine.runner.hub.publish("fake", candle(0, "100"))
        await acc.drain()
        assert venue.created == []
        # the refusal (critical) and the bot's own note of its rejected order (warning)
        got = {json.loads(b)["code"]: (h, b) for h, b in receiver.received}
        assert sorted(got) == ["guard.refused", "order_rejected"] and len(receiver.received) == 2
        headers, body = got["guard.refused"]
        payload = json.loads(body)
        assert payload["level"] == "critical" and payload["user"] == str(owner)
        assert json.loads(got["order_rejected"][1])["level"] == "warning"
        assert verify_webhook(hook.secret, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER],
                              now=time.time())
        assert not verify_webhook("not-the-secret", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER],
                                  now=time.time())
        assert len(sink.messages) == 1 and "Subject: [sealbot critical] guard.refused" in sink.messages[0]
        assert "To: alice@example.org" in sink.messages[0] and "From: alerts@sealbot.example" in sink.messages[0]
        # 2. the watchdog sees the key's IP restriction removed: a warning, below the e-mail's level
        account = next(a for a in engine.journal.accounts() if a.id == str(account_id))
        assert await engine.watchdog.check(account) == []  # the baseline report
        from dataclasses import replace
        venue.permission_report = replace(venue.permission_report, ip_restricted=False)
        assert [f.kind for f in await engine.watchdog.check(account)] == ["permission_drift"]
        await engine.runner.stop()
    assert json.loads(receiver.received[-1][1])["code"] == "watchdog.permission_drift"
    assert len(receiver.received) == 3 and len(sink.messages) == 1  # no e-mail for either warning
    assert sink.logins == [base64.b64encode(f"\0sealbot\0{SMTP_PASSWORD}".encode()).decode()]  # the relay's login
    with platform.session_factory() as s:
        alerts = {a.code: a for a in s.scalars(sa.select(AlertRow))}
    hook_name, mail_name = f"webhook:{hook.channel.id}", f"email:{mail.channel.id}"
    assert alerts["guard.refused"].deliveries == {hook_name: {"ok": True}, mail_name: {"ok": True}}
    assert alerts["watchdog.permission_drift"].deliveries == {hook_name: {"ok": True}}
    assert alerts["order_rejected"].deliveries == {hook_name: {"ok": True}}
    for created in (hook, mail):
        row = channel_row(platform, created.channel.id)
        assert row.last_delivery_at is not None and row.last_error is None


async def test_a_dead_channel_is_noted_on_its_row_and_the_others_still_deliver(
        platform: Platform, telegram: WebhookReceiver) -> None:
    owner, _account = seed(platform)
    dead = notifications.add_channel(platform, owner, "webhook", "http://127.0.0.1:9/nothing-listens")
    mail = notifications.add_channel(platform, owner, "email", "alice@example.org")
    chat = notifications.add_channel(platform, owner, "telegram", "-1001234567890", min_level="info")
    notifier = build_notifier(platform)
    with platform.uow() as uow:
        row = uow.alerts.add(owner, "critical", "watchdog.foreign_order", "order not placed by sealbot")
        alert = AlertRecord(str(owner), AlertLevel.CRITICAL, row.code, row.message, row.created_at, id=row.id)
    # the log as `sealbot serve` writes it (through the redaction filter), at its most talkative
    stream, root = io.StringIO(), logging.getLogger()
    handler, level = make_handler(stream), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        delivered = await notifier.deliver(alert)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    log_text = stream.getvalue()
    assert f"channel webhook:{dead.channel.id} failed: ConnectError" in log_text
    assert "/bot***/sendMessage" in log_text  # httpx logs the request URL: the bot token is masked
    assert sorted(delivered) == sorted([f"email:{mail.channel.id}", f"telegram:{chat.channel.id}"])
    failed = channel_row(platform, dead.channel.id)
    assert failed.last_delivery_at is None and failed.last_error and failed.last_error_at is not None
    assert "ConnectError" in failed.last_error
    assert channel_row(platform, mail.channel.id).last_error is None
    # the fake Bot API got the message for the chat, on the bot token's path
    ((_headers, body),) = telegram.received
    assert json.loads(body) == {"chat_id": "-1001234567890",
                                "text": "[sealbot critical] watchdog.foreign_order: order not placed by sealbot"}
    with platform.session_factory() as s:
        deliveries = s.get(AlertRow, alert.id).deliveries  # type: ignore[union-attr]
    assert deliveries[f"webhook:{dead.channel.id}"]["ok"] is False
    # secrets stay out of the log, the stored errors and the reprs
    stored = " ".join(str(channel_row(platform, c.channel.id).last_error) for c in (dead, mail, chat))
    for secret in (dead.secret, SMTP_PASSWORD, TELEGRAM_TOKEN):
        assert secret and secret not in log_text and secret not in stored
        assert secret not in repr(notifier) and secret not in repr(channel_row(platform, dead.channel.id))
        assert secret not in repr(notifier._stored(owner))  # type: ignore[attr-defined]
        assert secret not in repr(dead)


async def test_telegram_failures_report_the_status_never_the_token(platform: Platform) -> None:
    owner, _account = seed(platform)
    base = platform.settings.telegram_api_url
    platform.settings.telegram_api_url = "http://127.0.0.1:9"  # nothing listens
    created = notifications.add_channel(platform, owner, "telegram", "123456789")
    result = await notifications.send_test(platform, owner, created.channel.id)
    assert not result.ok and result.error and TELEGRAM_TOKEN not in result.error
    platform.settings.telegram_api_url = base
    result = await notifications.send_test(platform, owner, created.channel.id)
    assert result.ok and result.error is None
    assert channel_row(platform, created.channel.id).last_error is None


async def test_each_user_gets_only_their_own_alerts(platform: Platform, sink: SmtpSink) -> None:
    alice, _ = seed(platform)
    bob, _ = seed(platform, "bob@example.org")
    notifications.add_channel(platform, alice, "email", "alice@example.org", min_level="info")
    notifications.add_channel(platform, bob, "email", "bob@example.org", min_level="info")
    notifier = build_notifier(platform)
    now = T0
    assert len(await notifier.deliver(AlertRecord(str(bob), AlertLevel.INFO, "test.bob", "for bob", now))) == 1
    assert len(sink.messages) == 1 and "To: bob@example.org" in sink.messages[0]
    assert "alice" not in sink.messages[0]


async def test_channel_changes_reach_the_next_alert(platform: Platform, sink: SmtpSink) -> None:
    owner, _ = seed(platform)
    notifier = build_notifier(platform)
    assert isinstance(notifier, StoredNotifier)
    notifier.cache_seconds = 3600.0  # only a change, never the clock, may reload here
    alert = AlertRecord(str(owner), AlertLevel.CRITICAL, "test.alert", "hello", T0)
    assert await notifier.deliver(alert) == []  # no channel yet (and this is now cached)
    mail = notifications.add_channel(platform, owner, "email", "alice@example.org")
    assert await notifier.deliver(alert) == [f"email:{mail.channel.id}"]
    notifications.update_channel(platform, owner, mail.channel.id, min_level="critical")
    assert await notifier.deliver(AlertRecord(str(owner), AlertLevel.WARNING, "test.warn", "w", T0)) == []
    notifications.update_channel(platform, owner, mail.channel.id, enabled=False)
    assert await notifier.deliver(alert) == []
    notifications.update_channel(platform, owner, mail.channel.id, enabled=True)
    assert await notifier.deliver(alert) == [f"email:{mail.channel.id}"]
    # a change made by another process (straight to the database here) shows after refresh()
    with platform.session_factory() as s, s.begin():
        s.get(NotificationChannel, mail.channel.id).enabled = False  # type: ignore[union-attr]
    assert await notifier.deliver(alert) == [f"email:{mail.channel.id}"]  # still cached
    notifier.refresh()
    assert await notifier.deliver(alert) == []
    # ... or once the cache expires on its own
    notifier.cache_seconds = 0.0
    with platform.session_factory() as s, s.begin():
        s.get(NotificationChannel, mail.channel.id).enabled = True  # type: ignore[union-attr]
    assert await notifier.deliver(alert) == [f"email:{mail.channel.id}"]
    notifications.delete_channel(platform, owner, mail.channel.id)
    notifier.cache_seconds = 3600.0
    assert await notifier.deliver(alert) == []
    assert len(sink.messages) == 4


async def test_a_webhook_host_that_now_points_at_a_metadata_address_is_refused_at_delivery(
        platform: Platform) -> None:
    owner, _ = seed(platform)
    with WebhookReceiver() as receiver:
        hook = notifications.add_channel(platform, owner, "webhook", receiver.url, min_level="info")
        # what a DNS answer changed after the check would amount to
        with platform.session_factory() as s, s.begin():
            s.get(NotificationChannel, hook.channel.id).target = "http://169.254.169.254/latest/meta-data"  # type: ignore[union-attr]
        notifier = build_notifier(platform)
        assert await notifier.deliver(AlertRecord(str(owner), AlertLevel.CRITICAL, "t", "m", T0)) == []
        platform.settings.notify_allow_loopback = False
        with platform.session_factory() as s, s.begin():
            s.get(NotificationChannel, hook.channel.id).target = receiver.url  # type: ignore[union-attr]
        notifier.refresh()
        assert await notifier.deliver(AlertRecord(str(owner), AlertLevel.CRITICAL, "t", "m", T0)) == []
        assert receiver.received == []
    error = channel_row(platform, hook.channel.id).last_error
    assert error == "refused: 127.0.0.1 is a loopback address (the notify_allow_loopback setting is off)"


async def test_an_email_channel_fails_cleanly_when_smtp_is_no_longer_configured(platform: Platform) -> None:
    owner, _ = seed(platform)
    mail = notifications.add_channel(platform, owner, "email", "alice@example.org")
    platform.settings.smtp_host = ""
    result = await notifications.send_test(platform, owner, mail.channel.id)
    assert not result.ok and result.error == "refused: the instance has no smtp_host setting any more"
    assert channel_row(platform, mail.channel.id).last_error == result.error


async def test_send_test_reaches_a_disabled_channel_and_is_signed(platform: Platform) -> None:
    owner, _ = seed(platform)
    with WebhookReceiver() as receiver:
        hook = notifications.add_channel(platform, owner, "webhook", receiver.url, min_level="critical",
                                         enabled=False)
        result = await notifications.send_test(platform, owner, hook.channel.id)
        assert result.ok and result.error is None
        # a rotated key signs from the next request on; the old one no longer verifies
        rotated = notifications.rotate_webhook_secret(platform, owner, hook.channel.id)
        assert (await notifications.send_test(platform, owner, hook.channel.id)).ok
        (headers, body), (new_headers, new_body) = receiver.received
    assert hook.secret and verify_webhook(hook.secret, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER],
                                          now=time.time())
    assert rotated.secret and rotated.secret != hook.secret and rotated.secret not in repr(rotated)
    args = (new_headers[TIMESTAMP_HEADER], new_body, new_headers[SIGNATURE_HEADER])
    assert verify_webhook(rotated.secret, *args, now=time.time())
    assert not verify_webhook(hook.secret, *args, now=time.time())
    assert json.loads(body)["code"] == "notification.test" and json.loads(body)["level"] == "info"
    assert channel_row(platform, hook.channel.id).last_delivery_at is not None


class TlsReceiver(WebhookReceiver):
    """The webhook receiver behind TLS, with a self-signed certificate for ``host``."""

    def __init__(self, host: str, tmp_path: Path) -> None:
        super().__init__()
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(hours=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        cert_pem, key_pem = tmp_path / "cert.pem", tmp_path / "key.pem"
        cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_side.load_cert_chain(cert_pem, key_pem)
        self.server.socket = server_side.wrap_socket(self.server.socket, server_side=True)
        self.client_context = ssl.create_default_context(cafile=str(cert_pem))
        self.port = self.server.server_address[1]


async def test_a_webhook_is_sent_to_the_address_that_was_checked_with_tls_on_the_host_name(
        platform: Platform, tmp_path: Path) -> None:
    """The name resolves (here, by a resolver the test controls) to loopback; the post goes
    to that address with the name in Host, SNI and the certificate check. The system
    resolver does not know the name at all, so only the pinned address can work."""
    host = "alerts.sealbot-test.invalid"
    answers: list[str] = ["127.0.0.1"]

    async def resolve(name: str, _port: int) -> list[str]:
        assert name == host
        return list(answers)

    alert = AlertRecord("1", AlertLevel.CRITICAL, "watchdog.foreign_order", "m", T0, id=None)
    with TlsReceiver(host, tmp_path) as receiver:
        url = f"https://{host}:{receiver.port}/hook"
        hook = PinnedWebhook(url, KeySigner("pinned-secret-0123456789"), platform.settings, resolve=resolve,
                             verify=receiver.client_context)
        await hook.send(alert)
        ((headers, body),) = receiver.received
        assert headers["Host"] == f"{host}:{receiver.port}"
        assert verify_webhook("pinned-secret-0123456789", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER],
                              now=time.time())
        # the certificate is checked against the name, not the address
        wrong = PinnedWebhook(f"https://127.0.0.1:{receiver.port}/hook", KeySigner("k" * 20), platform.settings,
                              verify=receiver.client_context)
        with pytest.raises(httpx.ConnectError):
            await wrong.send(alert)
        # the name now answers with the metadata address: refused before any connection
        answers[:] = ["169.254.169.254"]
        with pytest.raises(Refused, match="link-local or cloud metadata"):
            await hook.send(alert)
        answers[:] = ["127.0.0.1", "10.0.0.1"]
        platform.settings.notify_allow_private = False  # one bad address among the answers is enough
        with pytest.raises(Refused, match="private-network"):
            await hook.send(alert)
    assert len(receiver.received) == 1
