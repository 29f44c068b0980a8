"""Setting up alert channels: what a target may be, which instance settings each kind
needs, the webhook key shown once, and every channel visible to its owner only."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from sealbot.config import load_settings, masked_view
from sealbot.domain.errors import InvalidConfig, NotFound
from sealbot.services import notifications
from sealbot.services.instance import init_instance
from sealbot.services.platform import Platform, open_platform
from sealbot.store.models import AuditRecord, NotificationChannel


def make_platform(tmp_path: Path, database_url: str, **settings: object) -> Platform:
    cfg = load_settings(data_dir=tmp_path / "data", config_dir=tmp_path / "config", database_url=database_url,
                        **settings)
    init_instance(cfg)
    return open_platform(cfg)


@pytest.fixture
def platform(tmp_path: Path, database_url: str) -> Platform:
    return make_platform(tmp_path, database_url, notify_allow_loopback=True, smtp_host="smtp.example.org",
                         telegram_bot_token="123:token-for-tests")


def user(platform: Platform, email: str) -> int:
    with platform.uow() as uow:
        return uow.users.add(email, "x").id


@pytest.mark.parametrize(("target", "reason"), [
    ("ftp://example.org/x", "must be an http:// or https:// URL"),
    ("file:///etc/passwd", "must be an http:// or https:// URL"),
    ("http:///nohost", "must name a host"),
    ("http://user:pw@127.0.0.1/", "must not carry a user name or password"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local or cloud metadata address"),
    ("http://[fd00:ec2::254]/", "is a link-local or cloud metadata address"),
    ("http://[::ffff:169.254.169.254]/", "is a link-local or cloud metadata address"),
    ("http://0.0.0.0:8080/", "is an unspecified, multicast or reserved address"),
    ("http://224.0.0.1/", "is an unspecified, multicast or reserved address"),
    ("http://127.0.0.1:99999/", "is not a valid URL"),
    ("http://no-such-host.invalid/", "host no-such-host.invalid does not resolve"),
    ("http://127.0.0.1/a\nb", "must not contain control characters"),
    ("   ", "must not be empty"),
    ("http://127.0.0.1/" + "a" * 2100, "must be at most 2048 characters"),
])
def test_a_webhook_target_sealbot_must_not_post_to_is_refused_naming_the_field(
        platform: Platform, target: str, reason: str) -> None:
    owner = user(platform, "alice@example.org")
    with pytest.raises(InvalidConfig) as info:
        notifications.add_channel(platform, owner, "webhook", target)
    assert info.value.field == "target" and reason in info.value.reason
    assert notifications.list_channels(platform, owner) == []


def test_loopback_and_private_networks_follow_the_instance_settings(tmp_path: Path, database_url: str) -> None:
    strict = make_platform(tmp_path, database_url, notify_allow_private=False)
    owner = user(strict, "alice@example.org")
    for target, reason in [("http://127.0.0.1:8080/hook", "loopback address (the notify_allow_loopback setting"),
                           ("http://localhost/hook", "localhost resolves to a loopback address"),
                           ("http://10.1.2.3/hook", "private-network address (the notify_allow_private setting")]:
        with pytest.raises(InvalidConfig) as info:
            notifications.add_channel(strict, owner, "webhook", target)
        assert reason in info.value.reason, target
    strict.settings.notify_allow_private = True
    assert notifications.add_channel(strict, owner, "webhook", "http://10.1.2.3/hook").channel.target \
        == "http://10.1.2.3/hook"


def test_email_and_telegram_need_the_instance_settings_and_valid_targets(tmp_path: Path, database_url: str) -> None:
    bare = make_platform(tmp_path, database_url)
    owner = user(bare, "alice@example.org")
    with pytest.raises(InvalidConfig) as info:
        notifications.add_channel(bare, owner, "email", "alice@example.org")
    assert info.value.field == "kind" and "smtp_host" in info.value.reason
    with pytest.raises(InvalidConfig) as info:
        notifications.add_channel(bare, owner, "telegram", "12345")
    assert info.value.field == "kind" and "telegram_bot_token" in info.value.reason
    bare.settings.smtp_host = "smtp.example.org"
    bare.settings.telegram_bot_token = load_settings(telegram_bot_token="1:x").telegram_bot_token
    for kind, bad in [("email", "not-an-address"), ("email", "a@b"), ("email", "a@example.org, b@example.org"),
                      ("telegram", "chat 1"), ("telegram", "@ab")]:
        with pytest.raises(InvalidConfig) as info:
            notifications.add_channel(bare, owner, kind, bad)
        assert info.value.field == "target", (kind, bad)
    assert notifications.add_channel(bare, owner, "email", " alice@example.org ").channel.target == "alice@example.org"
    assert notifications.add_channel(bare, owner, "telegram", "-1001234567890").channel.min_level == "warning"
    assert notifications.add_channel(bare, owner, "telegram", "@sealbot_alerts").channel.kind == "telegram"
    with pytest.raises(InvalidConfig) as info:
        notifications.add_channel(bare, owner, "sms", "+15550100")
    assert info.value.field == "kind"
    with pytest.raises(InvalidConfig) as info:
        notifications.add_channel(bare, owner, "email", "alice@example.org", min_level="loud")
    assert info.value.field == "min_level"


def test_the_webhook_key_is_shown_once_and_never_again(platform: Platform) -> None:
    owner = user(platform, "alice@example.org")
    created = notifications.add_channel(platform, owner, "webhook", "http://127.0.0.1:8080/hook")
    secret = created.secret
    assert secret is not None and len(secret) >= 40
    assert secret not in repr(created) and secret not in repr(created.channel)
    later = [notifications.list_channels(platform, owner), notifications.get_channel(platform, owner,
                                                                                     created.channel.id),
             notifications.update_channel(platform, owner, created.channel.id, min_level="critical")]
    assert secret not in repr(later)
    with platform.session_factory() as s:
        row = s.get(NotificationChannel, created.channel.id)
        assert row is not None and row.secret_ciphertext and row.secret_version == 1  # kept sealed, never as is
        assert secret.encode() not in row.secret_ciphertext
        assert secret not in repr(row)
        audit = " ".join(s.scalars(sa.select(AuditRecord.details)))
    assert secret not in audit and "notification.channel_added" in _actions(platform)
    other = notifications.add_channel(platform, owner, "webhook", "http://127.0.0.1:8080/hook")
    assert other.secret and other.secret != secret  # a key per channel


def _actions(platform: Platform) -> set[str]:
    with platform.session_factory() as s:
        return set(s.scalars(sa.select(AuditRecord.action)))


async def test_another_users_channel_is_not_found(platform: Platform) -> None:
    alice, bob = user(platform, "alice@example.org"), user(platform, "bob@example.org")
    mine = notifications.add_channel(platform, alice, "email", "alice@example.org").channel.id
    assert notifications.list_channels(platform, bob) == []
    for attempt in (lambda: notifications.get_channel(platform, bob, mine),
                    lambda: notifications.update_channel(platform, bob, mine, enabled=False),
                    lambda: notifications.delete_channel(platform, bob, mine)):
        with pytest.raises(NotFound):
            attempt()
    with pytest.raises(NotFound):
        await notifications.send_test(platform, bob, mine)
    assert notifications.get_channel(platform, alice, mine).enabled
    notifications.delete_channel(platform, alice, mine)
    assert notifications.list_channels(platform, alice) == []
    assert {"notification.channel_added", "notification.channel_deleted"} <= _actions(platform)


def test_config_show_masks_the_smtp_password_and_the_telegram_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALBOT_SMTP_PASSWORD", "smtp-hunter2-secret")
    monkeypatch.setenv("SEALBOT_TELEGRAM_BOT_TOKEN", "999:telegram-secret-token")
    monkeypatch.setenv("SEALBOT_SMTP_HOST", "smtp.example.org")
    view = masked_view(load_settings())
    assert view["smtp_password"] == "***" and view["telegram_bot_token"] == "***"
    assert view["smtp_host"] == "smtp.example.org" and view["smtp_port"] == "587" and view["smtp_starttls"] == "True"
    assert "smtp-hunter2-secret" not in repr(view) and "telegram-secret-token" not in repr(view)
    monkeypatch.setenv("SEALBOT_SMTP_PASWORD", "typo")
    with pytest.raises(InvalidConfig) as info:
        load_settings()
    assert info.value.field == "SEALBOT_SMTP_PASWORD"
