"""Alerts delivered where the user will see them: a signed webhook, e-mail, Telegram.

Alerts are stored first (the dashboard shows them even when every channel is down),
then handed to each configured channel; the journal records which channel took it.

Webhook signature (so the receiver knows the alert came from this sealbot and is
fresh): ``X-Sealbot-Timestamp: <unix seconds>`` and
``X-Sealbot-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``.
``verify_webhook`` is the receiver's side of it. Who computes the signature is a
``WebhookSigner``: a key held here (``KeySigner``, for a channel an embedder adds in code)
or, for the channels users store, custody's signer, which holds their keys sealed so the
engine never sees them (``services.notifications``). Channel secrets (webhook key, SMTP
password, Telegram token) never appear in a repr, a log line or an error.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol

import httpx

from sealbot.domain import AlertLevel
from sealbot.engine.clock import Clock, SystemClock
from sealbot.engine.journal import AlertRecord, Journal

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Sealbot-Signature"
TIMESTAMP_HEADER = "X-Sealbot-Timestamp"
_LEVELS = {AlertLevel.INFO: 0, AlertLevel.WARNING: 1, AlertLevel.CRITICAL: 2}


def alert_payload(alert: AlertRecord) -> dict[str, Any]:
    return {
        "id": alert.id, "level": alert.level.value, "code": alert.code, "message": alert.message,
        "at": alert.at.isoformat(), "account": alert.account, "bot": alert.bot, "user": alert.user,
    }


def sign_webhook(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_body(alert: AlertRecord) -> bytes:
    """The exact bytes posted (and signed): canonical JSON, keys sorted, no spaces."""
    return json.dumps(alert_payload(alert), sort_keys=True, separators=(",", ":")).encode()


class WebhookSigner(Protocol):
    """Computes ``X-Sealbot-Signature`` for (timestamp, body); may raise (the delivery then fails)."""

    def sign(self, timestamp: str, body: bytes) -> str: ...


@dataclass(frozen=True)
class KeySigner:
    """A ``WebhookSigner`` over a key this process holds (channels added in code)."""

    secret: str = field(repr=False)

    def sign(self, timestamp: str, body: bytes) -> str:
        return sign_webhook(self.secret, timestamp, body)


def verify_webhook(secret: str, timestamp: str, body: bytes, signature: str, *, now: float,
                   tolerance: float = 300.0) -> bool:
    """True when ``signature`` is ours and the timestamp is within ``tolerance`` of ``now``
    (a replayed old alert is refused)."""
    try:
        age = abs(now - float(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(sign_webhook(secret, timestamp, body), signature)


class Channel(Protocol):
    name: str

    async def send(self, alert: AlertRecord) -> None: ...


@dataclass
class WebhookChannel:
    url: str
    secret: str = field(repr=False)
    timeout: float = 5.0
    clock: Clock = field(default_factory=SystemClock, repr=False)
    name: str = "webhook"

    async def send(self, alert: AlertRecord) -> None:
        body = webhook_body(alert)
        timestamp = str(int(self.clock.now().timestamp()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign_webhook(self.secret, timestamp, body)}
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(self.url, content=body, headers=headers)
        response.raise_for_status()


@dataclass
class EmailChannel:
    host: str
    port: int
    sender: str
    recipients: Sequence[str]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = True
    timeout: float = 10.0
    name: str = "email"

    def _send_sync(self, alert: AlertRecord) -> None:
        message = EmailMessage()
        message["Subject"] = f"[sealbot {alert.level.value}] {alert.code}"
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(f"{alert.message}\n\nat {alert.at.isoformat()}\naccount {alert.account or '-'}"
                            f"\nbot {alert.bot or '-'}\n")
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username and self.password:
                smtp.login(self.username, self.password)
            smtp.send_message(message)

    async def send(self, alert: AlertRecord) -> None:
        await asyncio.to_thread(self._send_sync, alert)


@dataclass
class TelegramChannel:
    """Optional: a message through a Telegram bot (``sendMessage`` of the Bot API)."""

    token: str = field(repr=False)
    chat_id: str = ""
    base_url: str = "https://api.telegram.org"
    timeout: float = 5.0
    name: str = "telegram"

    async def send(self, alert: AlertRecord) -> None:
        text = f"[sealbot {alert.level.value}] {alert.code}: {alert.message}"
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(f"{self.base_url}/bot{self.token}/sendMessage",
                                         json={"chat_id": self.chat_id, "text": text})
        if response.is_error:
            # the URL carries the token: report the status only
            raise RuntimeError(f"telegram answered HTTP {response.status_code}")


@dataclass
class Notifier:
    """Per-user channels with a minimum level each; ``deliver`` is the runner's alert sink."""

    journal: Journal
    channels: dict[str, list[tuple[Channel, AlertLevel]]] = field(default_factory=dict)

    def add(self, user: str, channel: Channel, min_level: AlertLevel = AlertLevel.WARNING) -> None:
        self.channels.setdefault(user, []).append((channel, min_level))

    async def deliver(self, alert: AlertRecord) -> list[str]:
        delivered: list[str] = []
        for channel, min_level in self.channels.get(alert.user, []):
            if _LEVELS[alert.level] < _LEVELS[min_level]:
                continue
            try:
                await channel.send(alert)
            except (httpx.HTTPError, OSError, smtplib.SMTPException, RuntimeError) as exc:
                log.warning("alert %s: channel %s failed: %s", alert.id, channel.name, type(exc).__name__)
                continue
            delivered.append(channel.name)
            if alert.id is not None:
                with self.journal.transaction() as tx:
                    tx.mark_delivered(alert.id, channel.name)
        return delivered
