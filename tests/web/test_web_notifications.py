"""/api/v1/notifications over HTTP: a user adds a signed webhook (its key shown in that one
response only), an e-mail and tests both; bad targets are 422 naming the field; another
user gets 404 on every channel of the first; token scopes apply."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from engine.receivers import SmtpSink, WebhookReceiver  # tests/engine (tests/ is on sys.path)
from sealbot.engine.notify import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_webhook
from sealbot.services.platform import Platform

from .webkit import Clients, signup


@pytest.fixture
def sink(platform: Platform) -> Iterator[SmtpSink]:
    """An SMTP server for the instance, and webhooks to loopback allowed (the receivers run there)."""
    with SmtpSink() as server:
        platform.settings.smtp_host, platform.settings.smtp_port = "127.0.0.1", server.port
        platform.settings.smtp_starttls = False
        platform.settings.notify_allow_loopback = True
        yield server


async def test_a_user_adds_tests_changes_and_deletes_channels_and_the_key_is_shown_once(
        http: Clients, sink: SmtpSink) -> None:
    alice = await signup(http, "alice@example.org", two_factor=False)  # channels need no 2FA
    with WebhookReceiver() as receiver:
        r = await alice.client.post("/api/v1/notifications", json={"kind": "webhook", "target": receiver.url})
        assert r.status_code == 201, r.text
        hook = r.json()
        secret = hook["secret"]
        http.leaks.once.add(secret)
        assert hook["min_level"] == "warning" and hook["enabled"] and hook["last_delivery_at"] is None
        r = await alice.client.post("/api/v1/notifications", json={"kind": "email", "target": "alice@example.org",
                                                                   "min_level": "critical"})
        assert r.status_code == 201 and r.json()["secret"] is None
        mail = r.json()["id"]

        r = await alice.client.post(f"/api/v1/notifications/{hook['id']}/test")
        assert r.status_code == 200 and r.json() == {"ok": True, "error": None}
        ((headers, body),) = receiver.received
        assert verify_webhook(secret, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER], now=time.time())
        assert json.loads(body)["code"] == "notification.test"
    r = await alice.client.post(f"/api/v1/notifications/{mail}/test")
    assert r.json() == {"ok": True, "error": None} and "To: alice@example.org" in sink.messages[0]

    # a new key (shown once too) replaces the old one at once
    r = await alice.client.post(f"/api/v1/notifications/{hook['id']}/secret")
    assert r.status_code == 200 and r.json()["id"] == hook["id"]
    new_secret = r.json()["secret"]
    assert new_secret and new_secret != secret
    r = await alice.client.post(f"/api/v1/notifications/{mail}/secret")
    assert r.status_code == 422 and r.json()["field"] == "kind"  # an e-mail channel has no key

    listed = (await alice.client.get("/api/v1/notifications")).json()
    assert [c["kind"] for c in listed] == ["webhook", "email"]
    assert all("secret" not in c for c in listed) and listed[0]["last_delivery_at"] is not None
    r = await alice.client.patch(f"/api/v1/notifications/{hook['id']}", json={"enabled": False,
                                                                             "min_level": "info"})
    assert r.status_code == 200 and r.json()["enabled"] is False and r.json()["min_level"] == "info"
    r = await alice.client.post(f"/api/v1/notifications/{hook['id']}/test")  # the receiver is gone now
    assert r.json()["ok"] is False and "ConnectError" in r.json()["error"]
    r = await alice.client.get(f"/api/v1/notifications/{hook['id']}")
    assert r.json()["last_error"] == "ConnectError: All connection attempts failed" and "secret" not in r.json()
    assert (await alice.client.delete(f"/api/v1/notifications/{hook['id']}")).status_code == 204
    assert (await alice.client.get(f"/api/v1/notifications/{hook['id']}")).status_code == 404
    assert [c["id"] for c in (await alice.client.get("/api/v1/notifications")).json()] == [mail]


async def test_bad_channels_are_422_naming_the_field(http: Clients, sink: SmtpSink) -> None:
    alice = await signup(http, "alice@example.org", two_factor=False)
    cases = [
        ({"kind": "webhook", "target": "http://169.254.169.254/latest/meta-data/"}, "target", "metadata"),
        ({"kind": "webhook", "target": "gopher://127.0.0.1/"}, "target", "http://"),
        ({"kind": "email", "target": "not an address"}, "target", "e-mail address"),
        ({"kind": "telegram", "target": "12345"}, "kind", "telegram_bot_token"),
        ({"kind": "sms", "target": "+15550100"}, "kind", ""),
        ({"kind": "email", "target": "a@example.org", "min_level": "loud"}, "min_level", ""),
    ]
    for body, field, words in cases:
        r = await alice.client.post("/api/v1/notifications", json=body)
        assert r.status_code == 422, (body, r.text)
        error = r.json()
        assert error.get("field") == field or any(e.get("field") == field for e in error.get("errors") or []), error
        assert words in r.text, (body, r.text)
    assert (await alice.client.get("/api/v1/notifications")).json() == []


async def test_user_b_gets_404_on_every_channel_of_user_a(http: Clients, sink: SmtpSink) -> None:
    alice = await signup(http, "alice@example.org", two_factor=False)
    with WebhookReceiver() as receiver:
        r = await alice.client.post("/api/v1/notifications", json={"kind": "webhook", "target": receiver.url})
        http.leaks.once.add(r.json()["secret"])
        channel = r.json()["id"]
        bob = await signup(http, "bob@example.org", two_factor=False)
        for method, path, body in [("GET", f"/api/v1/notifications/{channel}", None),
                                   ("PATCH", f"/api/v1/notifications/{channel}", {"enabled": False}),
                                   ("POST", f"/api/v1/notifications/{channel}/test", None),
                                   ("POST", f"/api/v1/notifications/{channel}/secret", None),
                                   ("DELETE", f"/api/v1/notifications/{channel}", None)]:
            r = await bob.client.request(method, path, json=body)
            assert r.status_code == 404, (method, path, r.text)
            assert "127.0.0.1" not in r.text
        assert (await bob.client.get("/api/v1/notifications")).json() == []
        assert receiver.received == []  # bob's test did not send through alice's channel
    mine = (await alice.client.get(f"/api/v1/notifications/{channel}")).json()
    assert mine["enabled"] is True and mine["last_delivery_at"] is None


async def test_token_scopes_apply(http: Clients, sink: SmtpSink) -> None:
    alice = await signup(http, "alice@example.org", two_factor=False)
    r = await alice.client.post("/api/v1/tokens", json={"name": "reader", "scopes": ["alerts:read"]})
    token = r.json()["token"]
    http.leaks.once.add(token)
    reader = http.new(headers={"Authorization": f"Bearer {token}"})
    assert (await reader.get("/api/v1/notifications")).status_code == 200
    r = await reader.post("/api/v1/notifications", json={"kind": "email", "target": "alice@example.org"})
    assert r.status_code == 403
    assert (await alice.client.get("/api/v1/notifications")).json() == []
