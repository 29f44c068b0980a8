"""Webhook signing keys of notification channels: sealed at rest, used only where the KEK is.

A webhook channel's HMAC key lets whoever holds it forge sealbot's alerts to the user's
receiver (a false "all clear" during a leak), so it is kept like an exchange secret:

- it is sealed with the credentials' envelope code (a fresh AES-256-GCM data key wrapped
  by the KEK), the associated data binding it to (owner, channel, key version) under its
  own prefix, so a blob copied onto another channel, another user's channel, an older key
  version or a credential row does not open;
- only the component holding the KEK opens it, for one signature at a time: the
  in-process ``LocalSigner`` or, with ``signer = "socket"``, the ``sealbot signer``
  process. The engine asks for a MAC over the request and never holds the key;
- the signer signs narrowly (``check_notification``): only a canonical alert payload
  whose ``user`` is the channel's owner, with a timestamp within ``tolerance`` of its own
  clock (no signature that stays valid for later), and only an alert that is stored for
  that owner with the same level, code and message (a forged alert must first appear in
  the user's alert list) or the fixed test alert. Refusals are audited.

The MAC is the one receivers check (``engine.notify.verify_webhook``):
``sha256=<hex HMAC-SHA256(key, "<timestamp>." + body)>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from sealbot.custody.envelope import SealedBlob, open_bytes, seal_bytes, wipe
from sealbot.custody.errors import CustodyError, SigningRefused
from sealbot.custody.keyring import Keyring
from sealbot.custody.secrets import Secret

_AAD_PREFIX: Final = b"sealbot/notification-channel/v1"
ALERT_KEYS: Final = frozenset({"id", "level", "code", "message", "at", "account", "bot", "user"})
LEVELS: Final = frozenset({"info", "warning", "critical"})
TEST_ALERT_CODE: Final = "notification.test"
TEST_ALERT_MESSAGE: Final = "A test alert from sealbot: this channel works."
DEFAULT_TOLERANCE: Final = 300.0  # seconds; what receivers are told to accept (docs/notifications.md)


@dataclass(frozen=True, slots=True)
class ChannelBinding:
    """What a sealed webhook key belongs to; its encoding is the AES-GCM associated data."""

    owner_id: int
    channel_id: int
    version: int

    def aad(self, part: bytes) -> bytes:
        return b"%s|%s|owner=%d|channel=%d|version=%d" % (
            _AAD_PREFIX, part, self.owner_id, self.channel_id, self.version)

    def __str__(self) -> str:
        return f"(owner {self.owner_id}, notification channel {self.channel_id}, key version {self.version})"


@dataclass(frozen=True, slots=True)
class StoredChannelKey:
    """A channel row's sealed key as the signer needs it. No field is secret."""

    binding: ChannelBinding
    blob: SealedBlob


class ChannelKeySource(Protocol):
    """The signer's view of the store (``custody.store_adapters.StoreChannelKeySource``)."""

    def load(self, owner_id: int, channel_id: int) -> StoredChannelKey:
        """The sealed key of the owner's webhook channel; ``CustodyError`` when there is none."""
        ...

    def alert_matches(self, owner_id: int, alert_id: int, level: str, code: str, message: str) -> bool:
        """True when the owner has that stored alert with that level, code and message."""
        ...


class AuditSink(Protocol):
    def record(self, actor: str, action: str, subject: str, details: Mapping[str, object]) -> None: ...


@runtime_checkable
class NotificationSigner(Protocol):
    """Where webhook keys are sealed and used: ``LocalSigner`` (in process) or
    ``SocketSigner`` (the ``sealbot signer`` process). The key goes in once, to be
    sealed; only blobs and MACs come out."""

    def seal_channel_key(self, binding: ChannelBinding, secret: Secret) -> SealedBlob: ...

    def sign_notification(self, owner_id: int, channel_id: int, timestamp: str, body: bytes) -> str: ...


def seal_channel_key(secret: Secret, binding: ChannelBinding, keyring: Keyring) -> SealedBlob:
    """The key sealed under the keyring's KEK (also in ``pkcs11`` mode: the key is a MAC
    key for alerts, wrapped by the token's KEK rather than imported into the token)."""
    plaintext = bytearray(secret.reveal().encode())
    try:
        return seal_bytes(bytes(plaintext), binding, keyring.kek)
    finally:
        wipe(plaintext)


def webhook_mac(key: bytes | bytearray, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(key, "<timestamp>." + body)>``: the signature header."""
    return "sha256=" + hmac.new(bytes(key), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class AlertClaim:
    """What a body to be signed says about itself, once it passed the shape checks."""

    alert_id: int | None
    level: str
    code: str
    message: str


def check_notification(owner_id: int, timestamp: str, body: bytes, *, now: float,
                       tolerance: float = DEFAULT_TOLERANCE) -> AlertClaim:
    """The alert ``body`` claims to be, or ``SigningRefused`` naming the rule it breaks:
    ``notification.timestamp`` (not whole seconds, or further than ``tolerance`` from
    ``now``), ``notification.payload`` (not sealbot's canonical alert JSON) or
    ``notification.owner`` (an alert of another user)."""
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise SigningRefused("notification.timestamp", "the timestamp is not whole unix seconds")
    if abs(now - int(timestamp)) > tolerance:
        raise SigningRefused("notification.timestamp", f"the timestamp is more than {tolerance:g} s from now")
    try:
        payload = json.loads(body)
    except ValueError:
        raise SigningRefused("notification.payload", "the body is not JSON") from None
    if not isinstance(payload, dict) or set(payload) != ALERT_KEYS:
        raise SigningRefused("notification.payload", "the body is not an alert")
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    if canonical != body:
        raise SigningRefused("notification.payload", "the body is not in sealbot's canonical form")
    alert_id, level, code, message = payload["id"], payload["level"], payload["code"], payload["message"]
    if not (alert_id is None or (isinstance(alert_id, int) and not isinstance(alert_id, bool))) \
            or level not in LEVELS or not isinstance(code, str) or not isinstance(message, str):
        raise SigningRefused("notification.payload", "the body is not an alert")
    if payload["user"] != str(owner_id):
        raise SigningRefused("notification.owner", "the alert is not for the channel's owner")
    return AlertClaim(alert_id, level, code, message)


class ChannelKeySigner:
    """Seals webhook keys and signs alerts with them, in the process that holds the KEK.

    ``LocalSigner`` owns one (so the socket server serves it too). A signature costs one
    read of the channel row (and of the alert row) and one unwrap: alerts are rare, and a
    rotated key is used from the very next alert, in every process.
    """

    def __init__(self, keyring: Keyring, source: ChannelKeySource | None, audit: AuditSink, *,
                 clock: Callable[[], float] = time.time, tolerance: float = DEFAULT_TOLERANCE,
                 actor: str = "engine") -> None:
        self._keyring, self._source, self._audit = keyring, source, audit
        self._clock, self._tolerance, self._actor = clock, tolerance, actor

    def seal_channel_key(self, binding: ChannelBinding, secret: Secret) -> SealedBlob:
        return seal_channel_key(secret, binding, self._keyring)

    def sign_notification(self, owner_id: int, channel_id: int, timestamp: str, body: bytes, *,
                          actor: str | None = None) -> str:
        """The signature header for ``body`` sent through the owner's webhook channel at
        ``timestamp``; ``SigningRefused`` (audited) when the signer may not sign it."""
        if self._source is None:
            raise CustodyError("custody: this signer has no store to read notification channels from")
        try:
            claim = check_notification(owner_id, timestamp, body, now=self._clock(), tolerance=self._tolerance)
            self._check_stored(owner_id, claim)
        except SigningRefused as refusal:
            self._audit.record(actor or self._actor, "signer.refused", f"notification_channel:{channel_id}",
                               {"owner_id": owner_id, "rule": refusal.policy_rule, "reason": refusal.reason})
            raise
        key = self._source.load(owner_id, channel_id)
        raw = open_bytes(key.blob, key.binding, self._keyring.kek)
        try:
            return webhook_mac(raw, timestamp, body)
        finally:
            wipe(raw)

    def _check_stored(self, owner_id: int, claim: AlertClaim) -> None:
        assert self._source is not None
        if claim.alert_id is None:
            if (claim.level, claim.code, claim.message) != ("info", TEST_ALERT_CODE, TEST_ALERT_MESSAGE):
                raise SigningRefused("notification.alert", "an alert without an id may only be the test alert")
        elif not self._source.alert_matches(owner_id, claim.alert_id, claim.level, claim.code, claim.message):
            raise SigningRefused("notification.alert", f"alert {claim.alert_id} is not stored for this owner as sent")

    def __repr__(self) -> str:
        return f"ChannelKeySigner({self._keyring!r})"
