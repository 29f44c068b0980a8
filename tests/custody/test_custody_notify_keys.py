"""Webhook keys of notification channels: sealed to (owner, channel, version), opened only
by the signer, and used only to sign what the signer may sign — in process and over the
signer's socket."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sealbot.custody.envelope import Binding, open_bytes
from sealbot.custody.errors import CustodyError, SealedCredentialError, SigningRefused
from sealbot.custody.keyring import Keyring
from sealbot.custody.notify_keys import (
    TEST_ALERT_CODE,
    TEST_ALERT_MESSAGE,
    ChannelBinding,
    ChannelKeySigner,
    StoredChannelKey,
    seal_channel_key,
)
from sealbot.custody.secrets import Secret
from sealbot.custody.signer import LocalSigner
from sealbot.custody.signer_socket import SignerServer, SocketSigner
from sealbot.engine.notify import verify_webhook

from .conftest import MemoryAudit, MemorySource

KEY = "webhook-key-0123456789-abcdefghijklmnopqrstuvw"
NOW = 1_800_000_000
OWNER, CHANNEL = 7, 3


@dataclass
class MemoryChannels:
    """``ChannelKeySource`` in memory: sealed keys by (owner, channel), stored alerts by (owner, id)."""

    keys: dict[tuple[int, int], StoredChannelKey] = field(default_factory=dict)
    alerts: dict[tuple[int, int], tuple[str, str, str]] = field(default_factory=dict)

    def load(self, owner_id: int, channel_id: int) -> StoredChannelKey:
        try:
            return self.keys[(owner_id, channel_id)]
        except KeyError:
            raise CustodyError(f"custody: owner {owner_id} has no webhook channel {channel_id}") from None

    def alert_matches(self, owner_id: int, alert_id: int, level: str, code: str, message: str) -> bool:
        return self.alerts.get((owner_id, alert_id)) == (level, code, message)


def body(alert_id: int | None = 41, user: str = str(OWNER), level: str = "critical",
         code: str = "watchdog.foreign_order", message: str = "order not placed by sealbot") -> bytes:
    payload = {"id": alert_id, "level": level, "code": code, "message": message, "at": "2026-11-24T14:03:00+00:00",
               "account": "12", "bot": None, "user": user}
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def channels_with_key(keyring: Keyring) -> MemoryChannels:
    binding = ChannelBinding(OWNER, CHANNEL, 1)
    channels = MemoryChannels()
    channels.keys[(OWNER, CHANNEL)] = StoredChannelKey(binding, seal_channel_key(Secret(KEY), binding, keyring))
    channels.alerts[(OWNER, 41)] = ("critical", "watchdog.foreign_order", "order not placed by sealbot")
    return channels


def test_a_sealed_key_opens_only_under_its_own_channel_owner_and_version(file_keyring: Keyring) -> None:
    binding = ChannelBinding(OWNER, CHANNEL, 2)
    blob = seal_channel_key(Secret(KEY), binding, file_keyring)
    assert KEY.encode() not in blob.ciphertext and KEY not in repr(blob)
    assert bytes(open_bytes(blob, binding, file_keyring.kek)) == KEY.encode()
    for other in (ChannelBinding(OWNER, CHANNEL + 1, 2), ChannelBinding(OWNER + 1, CHANNEL, 2),
                  ChannelBinding(OWNER, CHANNEL, 1), Binding(OWNER, CHANNEL, 2)):  # a credential row's binding too
        with pytest.raises(SealedCredentialError) as info:
            open_bytes(blob, other, file_keyring.kek)
        assert KEY not in str(info.value)


def test_the_signer_signs_a_stored_alert_of_the_owner_as_receivers_verify_it(file_keyring: Keyring) -> None:
    audit = MemoryAudit()
    signer = ChannelKeySigner(file_keyring, channels_with_key(file_keyring), audit, clock=lambda: NOW + 10)
    signature = signer.sign_notification(OWNER, CHANNEL, str(NOW), body())
    assert verify_webhook(KEY, str(NOW), body(), signature, now=NOW)
    test_alert = body(None, level="info", code=TEST_ALERT_CODE, message=TEST_ALERT_MESSAGE)
    assert verify_webhook(KEY, str(NOW), test_alert, signer.sign_notification(OWNER, CHANNEL, str(NOW), test_alert),
                          now=NOW)
    assert audit.records == []  # signatures are not audited one by one; the alert row is the record


@pytest.mark.parametrize(("timestamp", "payload", "rule"), [
    (str(NOW - 301), body(), "notification.timestamp"),  # a signature minted for later replay
    (str(NOW + 301), body(), "notification.timestamp"),
    ("1.8e9", body(), "notification.timestamp"),
    (str(NOW), b"GET /anything-else", "notification.payload"),  # no general-purpose HMAC oracle
    (str(NOW), body().replace(b",", b", "), "notification.payload"),  # not the canonical bytes
    (str(NOW), json.dumps({"user": str(OWNER)}).encode(), "notification.payload"),
    (str(NOW), body(user=str(OWNER + 1)), "notification.owner"),  # another user's alert
    (str(NOW), body(42), "notification.alert"),  # no such stored alert
    (str(NOW), body(message="all clear, nothing to see"), "notification.alert"),  # the stored alert, reworded
    (str(NOW), body(None, message="all clear"), "notification.alert"),  # an unstored alert posing as a test
    (str(NOW), body(None, level="info", code=TEST_ALERT_CODE, message="all clear"), "notification.alert"),
])
def test_the_signer_refuses_what_is_not_a_fresh_stored_alert_of_the_owner_and_audits_it(
        file_keyring: Keyring, timestamp: str, payload: bytes, rule: str) -> None:
    audit = MemoryAudit()
    signer = ChannelKeySigner(file_keyring, channels_with_key(file_keyring), audit, clock=lambda: NOW)
    with pytest.raises(SigningRefused) as info:
        signer.sign_notification(OWNER, CHANNEL, timestamp, payload)
    assert info.value.policy_rule == rule
    ((actor, action, subject, details),) = audit.records
    assert (actor, action, subject) == ("engine", "signer.refused", f"notification_channel:{CHANNEL}")
    assert details["rule"] == rule and KEY not in repr(audit.records)


def test_a_key_copied_onto_another_channel_does_not_sign(file_keyring: Keyring) -> None:
    channels = channels_with_key(file_keyring)
    stolen = channels.keys[(OWNER, CHANNEL)].blob
    channels.keys[(OWNER, 9)] = StoredChannelKey(ChannelBinding(OWNER, 9, 1), stolen)
    channels.keys[(OWNER + 1, CHANNEL)] = StoredChannelKey(ChannelBinding(OWNER + 1, CHANNEL, 1), stolen)
    channels.alerts[(OWNER + 1, 41)] = channels.alerts[(OWNER, 41)]
    signer = ChannelKeySigner(file_keyring, channels, MemoryAudit(), clock=lambda: NOW)
    with pytest.raises(SealedCredentialError):
        signer.sign_notification(OWNER, 9, str(NOW), body())
    with pytest.raises(SealedCredentialError):
        signer.sign_notification(OWNER + 1, CHANNEL, str(NOW), body(user=str(OWNER + 1)))
    with pytest.raises(CustodyError, match="no webhook channel 5"):
        signer.sign_notification(OWNER, 5, str(NOW), body())


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sbn", dir="/tmp"))  # AF_UNIX paths are limited to 107 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_over_the_socket_the_key_goes_in_once_and_only_blobs_and_macs_come_out(
        file_keyring: Keyring, short_dir: Path) -> None:
    channels, audit = MemoryChannels(), MemoryAudit()
    channels.alerts[(OWNER, 41)] = ("critical", "watchdog.foreign_order", "order not placed by sealbot")
    local = LocalSigner(file_keyring, MemorySource(), audit, channel_keys=channels)
    server = SignerServer(short_dir / "signer.sock", local, {os.getuid()})
    server.start_in_thread()
    client = SocketSigner(short_dir / "signer.sock")
    try:
        binding = ChannelBinding(OWNER, CHANNEL, 1)
        blob = client.seal_channel_key(binding, Secret(KEY))  # sealed in the signer's process, with its KEK
        assert blob.kek_id == file_keyring.kek.kek_id and KEY.encode() not in blob.ciphertext
        channels.keys[(OWNER, CHANNEL)] = StoredChannelKey(binding, blob)
        timestamp = str(int(time.time()))
        signature = client.sign_notification(OWNER, CHANNEL, timestamp, body())
        assert verify_webhook(KEY, timestamp, body(), signature, now=float(timestamp))
        with pytest.raises(SigningRefused) as info:
            client.sign_notification(OWNER, CHANNEL, timestamp, body(user="1"))
        assert info.value.policy_rule == "notification.owner"
        assert audit.records[-1][0] == f"uid:{os.getuid()}/pid:{os.getpid()}"  # the peer is named
        with pytest.raises(CustodyError, match="no webhook channel 8"):
            client.sign_notification(OWNER, 8, timestamp, body())
    finally:
        client.close()
        server.shutdown()
