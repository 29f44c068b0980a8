"""Webhook signing keys are kept sealed: a copy of the database (every column of every
table, the SQLite files) and the logs hold none of them, in any encoding; alerts still
arrive signed with the key the user was shown; a sealed key copied onto another channel
does not sign; rotating re-seals; KEK rotation carries the keys along; and the upgrade
from plaintext keys (migration 0008) seals them, or stops, or keeps the channels keyless."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from custody.conftest import Db  # tests/custody and tests/engine (tests/ is on sys.path)
from custody.test_custody_leak_drill import _dump_database, _forms
from engine.receivers import WebhookReceiver
from sealbot.config import Settings, load_settings
from sealbot.custody.kek_file import create_kek_file
from sealbot.engine.journal import AlertRecord
from sealbot.engine.notify import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_webhook
from sealbot.logs import make_handler
from sealbot.services import notifications
from sealbot.services.instance import init_instance, upgrade_database
from sealbot.services.operations import keys_status, rotate_file_kek
from sealbot.services.platform import Platform, open_platform
from sealbot.store import current, make_engine, make_session_factory, upgrade
from sealbot.store.models import NotificationChannel
from sealbot.store.uow import UnitOfWork


def settings_for(tmp_path: Path, database_url: str, **extra: object) -> Settings:
    return load_settings(data_dir=tmp_path / "data", config_dir=tmp_path / "config", database_url=database_url,
                         notify_allow_loopback=True, notify_timeout=2, **extra)


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """This module tests migration 0008 from the schema before it: an empty database."""
    return empty_database_url


@pytest.fixture
def platform(tmp_path: Path, database_url: str) -> Platform:
    settings = settings_for(tmp_path, database_url)
    init_instance(settings)
    return open_platform(settings)


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Everything logged at DEBUG through the production handler, SQL and its parameters included."""
    stream, root = io.StringIO(), logging.getLogger()
    handler, level = make_handler(stream), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)


def add_user(platform: Platform, email: str) -> int:
    with platform.uow() as uow:
        return uow.users.add(email, "x").id


def stored_alert(platform: Platform, owner: int, message: str = "order not placed by sealbot") -> AlertRecord:
    """An alert as the engine hands it over: stored first."""
    from sealbot.domain import AlertLevel

    with platform.uow() as uow:
        row = uow.alerts.add(owner, "critical", "watchdog.foreign_order", message)
        return AlertRecord(str(owner), AlertLevel.CRITICAL, row.code, row.message, row.created_at, id=row.id)


def verifies(secret: str, request: tuple[dict[str, str], bytes]) -> bool:
    headers, body = request
    return verify_webhook(secret, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER], now=time.time())


def row_of(platform: Platform, channel_id: int) -> NotificationChannel:
    with platform.session_factory() as s:
        row = s.get(NotificationChannel, channel_id)
        assert row is not None
        s.expunge(row)
        return row


async def test_no_webhook_key_is_in_the_database_or_the_logs_and_alerts_verify_with_the_key_shown(
        platform: Platform, captured_logs: io.StringIO) -> None:
    shown: dict[int, str] = {}
    retired: list[str] = []
    with WebhookReceiver() as receiver:
        owners = [add_user(platform, f"user{n}@example.org") for n in range(3)]
        for owner in owners:
            for _ in range(2):
                created = notifications.add_channel(platform, owner, "webhook", receiver.url, min_level="info")
                assert created.secret is not None
                shown[created.channel.id] = created.secret
        first = min(shown)
        retired.append(shown[first])
        rotated = notifications.rotate_webhook_secret(platform, owners[0], first)
        assert rotated.secret is not None
        shown[first] = rotated.secret
        notifier = notifications.build_notifier(platform)
        for owner in owners:
            assert len(await notifier.deliver(stored_alert(platform, owner))) == 2
        assert (await notifications.send_test(platform, owners[-1], max(shown))).ok
        received = list(receiver.received)
    # every request verifies with exactly one key the user was shown; every key signed something
    assert len(received) == 7
    used = [[cid for cid, secret in shown.items() if verifies(secret, request)] for request in received]
    assert all(len(ids) == 1 for ids in used) and {ids[0] for ids in used} == set(shown)
    assert not any(verifies(retired[0], request) for request in received)  # the rotated-away key signs nothing
    dump = _dump_database(Db(platform.settings.effective_database_url, platform.session_factory))
    logs = captured_logs.getvalue().encode()
    assert b"notification_channels" in logs and len(dump) > 1000  # the drill saw the real SQL and data
    for secret in [*shown.values(), *retired]:
        for form in _forms(secret):
            assert form not in dump, "a webhook key is in the database"
            assert form not in logs, "a webhook key is in the logs"


async def test_a_sealed_key_copied_onto_another_channel_does_not_sign(platform: Platform) -> None:
    alice, bob = add_user(platform, "alice@example.org"), add_user(platform, "bob@example.org")
    with WebhookReceiver() as mine, WebhookReceiver() as theirs:
        source = notifications.add_channel(platform, alice, "webhook", mine.url, min_level="info")
        target = notifications.add_channel(platform, alice, "webhook", theirs.url, min_level="info")
        foreign = notifications.add_channel(platform, bob, "webhook", theirs.url, min_level="info")
        # an attacker with write access to the database moves alice's first sealed key around
        with platform.session_factory() as s, s.begin():
            stolen = s.get(NotificationChannel, source.channel.id)
            assert stolen is not None
            for victim in (target.channel.id, foreign.channel.id):
                row = s.get(NotificationChannel, victim)
                assert row is not None
                row.secret_kek_id, row.secret_wrapped_key = stolen.secret_kek_id, stolen.secret_wrapped_key
                row.secret_nonce, row.secret_ciphertext = stolen.secret_nonce, stolen.secret_ciphertext
                row.secret_version = stolen.secret_version
        notifier = notifications.build_notifier(platform)
        assert await notifier.deliver(stored_alert(platform, alice)) == [f"webhook:{source.channel.id}"]
        assert await notifier.deliver(stored_alert(platform, bob)) == []
        assert len(mine.received) == 1 and theirs.received == []
    assert source.secret and verifies(source.secret, mine.received[0])
    for victim in (target, foreign):
        error = row_of(platform, victim.channel.id).last_error
        assert error and "SealedCredentialError" in error


async def test_rotating_a_key_reseals_it_under_the_next_version_and_the_old_blob_is_dead(
        platform: Platform) -> None:
    owner = add_user(platform, "alice@example.org")
    with WebhookReceiver() as receiver:
        created = notifications.add_channel(platform, owner, "webhook", receiver.url, min_level="info")
        before = row_of(platform, created.channel.id)
        rotated = notifications.rotate_webhook_secret(platform, owner, created.channel.id)
        after = row_of(platform, created.channel.id)
        assert (before.secret_version, after.secret_version) == (1, 2)
        assert after.secret_ciphertext != before.secret_ciphertext and after.secret_nonce != before.secret_nonce
        assert after.secret_wrapped_key != before.secret_wrapped_key
        assert (await notifications.send_test(platform, owner, created.channel.id)).ok
        # the old sealed key written back onto the row (an old backup, say) no longer opens
        with platform.session_factory() as s, s.begin():
            row = s.get(NotificationChannel, created.channel.id)
            assert row is not None
            row.secret_wrapped_key, row.secret_nonce = before.secret_wrapped_key, before.secret_nonce
            row.secret_ciphertext = before.secret_ciphertext
        result = await notifications.send_test(platform, owner, created.channel.id)
        assert not result.ok and result.error and "SealedCredentialError" in result.error
        assert len(receiver.received) == 1
    assert rotated.secret and verifies(rotated.secret, receiver.received[0])
    assert created.secret and not verifies(created.secret, receiver.received[0])


async def test_kek_rotation_carries_the_webhook_keys_to_the_new_kek(tmp_path: Path, database_url: str) -> None:
    settings = settings_for(tmp_path, database_url)
    init_instance(settings)
    platform = open_platform(settings)
    owner = add_user(platform, "alice@example.org")
    with WebhookReceiver() as receiver:
        hooks = [notifications.add_channel(platform, owner, "webhook", receiver.url, min_level="info")
                 for _ in range(3)]
        old_kek = platform.keyring.kek.kek_id
        assert f"  3 webhook key(s) under {old_kek}" in keys_status(settings)
        report = rotate_file_kek(settings)
        assert report.channel_keys == 3
        assert f"  3 webhook key(s) under {report.new_kek_id}" in keys_status(settings)
        assert {row_of(platform, h.channel.id).secret_kek_id for h in hooks} - {old_kek} == {
            row_of(platform, hooks[0].channel.id).secret_kek_id}
        assert (await notifications.send_test(platform, owner, hooks[0].channel.id)).ok is False  # old KEK here
        fresh = open_platform(settings)
        assert fresh.keyring.kek.kek_id != old_kek
        for hook in hooks:
            assert (await notifications.send_test(fresh, owner, hook.channel.id)).ok
    assert all(verifies(h.secret or "", r) for h, r in zip(hooks, receiver.received[-3:], strict=True))


# --- migration 0008: plaintext keys of an older database -------------------------------------------------


PLAIN = "plaintext-webhook-key-from-0007-0123456789abcdef"


def database_at_0007(settings: Settings, receiver_url: str) -> tuple[int, int]:
    """A database as sealbot left it before 0008: a webhook channel with its key in clear."""
    url = settings.effective_database_url
    upgrade(url, "0007")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            owner = conn.execute(sa.text(
                "INSERT INTO users (email, password_hash, is_admin, created_at) "
                "VALUES ('old@example.org', 'x', false, CURRENT_TIMESTAMP) RETURNING id")).scalar_one()
            channel = conn.execute(sa.text(
                "INSERT INTO notification_channels (owner_id, kind, target, min_level, enabled, webhook_secret, "
                "created_at) VALUES (:o, 'webhook', :t, 'info', true, :s, CURRENT_TIMESTAMP) RETURNING id"),
                {"o": owner, "t": receiver_url, "s": PLAIN}).scalar_one()
    finally:
        engine.dispose()
    return int(owner), int(channel)


async def test_the_upgrade_seals_plaintext_keys_and_the_receiver_keeps_verifying(
        tmp_path: Path, database_url: str) -> None:
    settings = settings_for(tmp_path, database_url)
    settings.config_dir.mkdir(parents=True)
    create_kek_file(settings.effective_kek_file)
    with WebhookReceiver() as receiver:
        owner, channel = database_at_0007(settings, receiver.url)
        upgrade_database(settings)
        platform = open_platform(settings)
        row = row_of(platform, channel)
        assert row.secret_version == 1 and row.secret_kek_id == platform.keyring.kek.kek_id
        assert await notifications.build_notifier(platform).deliver(stored_alert(platform, owner)) \
            == [f"webhook:{channel}"]
    assert verifies(PLAIN, receiver.received[0])  # the receiver needs no change
    dump = _dump_database(Db(database_url, make_session_factory(database_url)))
    for form in _forms(PLAIN):
        assert form not in dump


def test_without_a_kek_the_upgrade_stops_and_changes_nothing(tmp_path: Path, database_url: str) -> None:
    settings = settings_for(tmp_path, database_url)  # no KEK file was ever created here
    owner, channel = database_at_0007(settings, "http://127.0.0.1:9/hook")
    with pytest.raises(RuntimeError) as info:
        upgrade_database(settings)
    assert "--clear-unsealable-webhook-keys" in str(info.value) and "Nothing was changed" in str(info.value)
    assert PLAIN not in str(info.value)
    assert current(database_url) == "0007"
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            kept = conn.execute(sa.text("SELECT owner_id, webhook_secret FROM notification_channels WHERE id = :c"),
                                {"c": channel}).one()
    finally:
        engine.dispose()
    assert tuple(kept) == (owner, PLAIN)


async def test_told_to_the_upgrade_keeps_the_channels_without_keys_until_a_new_one_is_issued(
        tmp_path: Path, database_url: str) -> None:
    settings = settings_for(tmp_path, database_url)
    with WebhookReceiver() as receiver:
        owner, channel = database_at_0007(settings, receiver.url)
        upgrade_database(settings, clear_unsealable_webhook_keys=True)
        settings.config_dir.mkdir(parents=True)
        create_kek_file(settings.effective_kek_file)  # the KEK the instance runs with from now on
        platform = open_platform(settings)
        row = row_of(platform, channel)
        assert row.secret_ciphertext is None and row.last_error and "issue a new key" in row.last_error
        result = await notifications.send_test(platform, owner, channel)
        assert not result.ok and result.error == f"refused: {notifications.NO_KEY.format(id=channel)}"
        rotated = notifications.rotate_webhook_secret(platform, owner, channel)
        assert (await notifications.send_test(platform, owner, channel)).ok
    assert rotated.secret and verifies(rotated.secret, receiver.received[0])
    with UnitOfWork(platform.session_factory) as uow:
        assert [c.id for c in uow.session.scalars(sa.select(NotificationChannel))] == [channel]
    dump = _dump_database(Db(database_url, make_session_factory(database_url)))
    assert PLAIN.encode() not in dump
