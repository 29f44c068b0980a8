"""`sealbot signer` as its own process: the engine's venue signs through its socket."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from engine.receivers import WebhookReceiver  # tests/engine (tests/ is on sys.path)
from sealbot.config import Settings, load_settings
from sealbot.custody.errors import CustodyError
from sealbot.custody.secrets import ApiCredentials
from sealbot.custody.signer_socket import SocketSigner
from sealbot.domain import AlertLevel
from sealbot.engine.journal import AccountRecord, AlertRecord
from sealbot.engine.notify import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_webhook
from sealbot.services import instance, notifications
from sealbot.services import platform as platform_module
from sealbot.services.accounts import link_account, register_user
from sealbot.services.instance import init_instance
from sealbot.services.platform import open_platform
from sealbot.simex import SimexServer


def _no_kek_here(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("a socket-mode platform must not load the KEK")


@contextlib.contextmanager
def _signer_process(tmp_path: Path, **settings_: Any) -> Iterator[tuple[Settings, subprocess.Popen[str]]]:
    """A fresh socket-mode instance in ``tmp_path`` and ``sealbot signer`` running for it in
    a subprocess, once its socket is there; terminated on the way out (its output stays
    readable afterwards)."""
    env_settings = {"SEALBOT_DATA_DIR": str(tmp_path / "data"), "SEALBOT_CONFIG_DIR": str(tmp_path / "config"),
                    "SEALBOT_CONFIG": str(tmp_path / "none.toml"), "SEALBOT_SIGNER": "socket"}
    (tmp_path / "none.toml").write_text("")
    settings = load_settings(data_dir=tmp_path / "data", config_dir=tmp_path / "config", signer="socket", **settings_)
    init_instance(settings)
    base = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOT_") or k.startswith("SEALBOT_TEST_")}
    process = subprocess.Popen([sys.executable, "-m", "sealbot.cli", "signer"], env={**base, **env_settings},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not settings.effective_signer_socket.exists():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "signer socket never appeared"
            time.sleep(0.05)
        yield settings, process
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_a_venue_signs_through_the_signer_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Linking (seal + link-time permission check) and signing both happen in the signer
    process: the platform here never loads a keyring."""
    with _signer_process(tmp_path) as (settings, process):
        assert settings.effective_signer_socket.stat().st_mode & 0o777 == 0o660
        with SimexServer(speed=0) as sx:
            account = sx.admin.create_account("sig", {"USDT": "123.45"})
            key = sx.admin.create_key(int(account["id"]), ip_whitelist=["127.0.0.1"])
            monkeypatch.setattr(platform_module, "keyring_from_settings", _no_kek_here)
            platform = open_platform(settings, exchange_urls={"binance": {"api_base": sx.base_url}})
            assert isinstance(platform.signer, SocketSigner)
            assert platform.loaded_keyring is None
            with pytest.raises(CustodyError):
                _ = platform.keyring
            user = register_user(platform, "sig@example.org", "correct horse battery")
            creds = ApiCredentials(key["key"], key["secret"])
            view = await link_account(platform, user, "binance", "via socket", creds)
            venue = await platform.venue_for(AccountRecord(str(view.id), str(user), "binance"))
            try:
                balances = await venue.fetch_balances()
            finally:
                await venue.close()
        assert str(balances["USDT"].free) == "123.45"
        assert view.status == "active" and view.api_key_hint == key["key"][-4:]
    assert key["secret"] not in (process.stdout.read() if process.stdout else "")
    if process.stderr:
        assert key["secret"] not in process.stderr.read()


async def test_webhook_keys_are_sealed_and_used_only_by_the_signer_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Socket mode: the key a webhook channel gets is sealed by the signer process and every
    alert is signed there; this process (web tier and engine) never loads the KEK."""
    with _signer_process(tmp_path, notify_allow_loopback=True, notify_timeout=2) as (settings, process):
        monkeypatch.setattr(platform_module, "keyring_from_settings", _no_kek_here)
        platform = open_platform(settings)
        assert platform.loaded_keyring is None
        assert not isinstance(instance.channel_key_sealer(settings), str)  # 0008 would seal through the signer
        with platform.uow() as uow:
            owner = uow.users.add("hook@example.org", "x").id
        with WebhookReceiver() as receiver:
            created = notifications.add_channel(platform, owner, "webhook", receiver.url, min_level="info")
            with platform.uow() as uow:
                row = uow.alerts.add(owner, "critical", "watchdog.foreign_order", "order not placed by sealbot")
                alert = AlertRecord(str(owner), AlertLevel.CRITICAL, row.code, row.message, row.created_at, id=row.id)
            assert await notifications.build_notifier(platform).deliver(alert) == [f"webhook:{created.channel.id}"]
            rotated = notifications.rotate_webhook_secret(platform, owner, created.channel.id)
            assert (await notifications.send_test(platform, owner, created.channel.id)).ok
            (first, second) = receiver.received
    for secret, (headers, body) in ((created.secret, first), (rotated.secret, second)):
        assert secret and verify_webhook(secret, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER],
                                         now=time.time())
    # with the signer gone, alerts are not signed by anyone else: the failure is on the channel
    result = await notifications.send_test(platform, owner, created.channel.id)
    assert not result.ok and result.error and "unreachable" in result.error
    assert isinstance(instance.channel_key_sealer(settings), str)  # and 0008 would stop, changing nothing
    for secret in (created.secret, rotated.secret):
        assert secret and secret not in (process.stdout.read() if process.stdout else "")


def test_two_factor_enrolment_and_login_work_in_socket_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Socket mode: the TOTP secret the user is shown is sealed by the signer process and
    every code is checked there (this process never loads the KEK); enrolment, a 2FA login,
    a wrong code, a replayed code and a recovery code all behave as in process."""
    from sealbot.services import auth

    password = "correct horse battery"
    with _signer_process(tmp_path) as (settings, process):
        monkeypatch.setattr(platform_module, "keyring_from_settings", _no_kek_here)
        platform = open_platform(settings)
        assert platform.loaded_keyring is None
        auth.register(platform, "totp@example.org", password)
        session = auth.login(platform, "totp@example.org", password)
        setup = auth.begin_totp(platform, session.principal)
        assert setup.uri.startswith("otpauth://totp/")
        confirmed_with = auth.totp_now(setup.secret)
        recovery = auth.confirm_totp(platform, session.principal, confirmed_with)
        with pytest.raises(auth.TotpRequired):
            auth.login(platform, "totp@example.org", password, totp_code="000000" if auth.totp_now(
                setup.secret) != "000000" else "111111")
        with pytest.raises(auth.TotpRequired):  # the code that turned 2FA on is spent
            auth.login(platform, "totp@example.org", password, totp_code=confirmed_with)
        # the next step's code (the signer process's real clock allows one step of drift)
        again = auth.login(platform, "totp@example.org", password,
                           totp_code=pyotp.TOTP(setup.secret).at(int(time.time()) + 30))
        assert again.principal.mfa and again.principal.totp_enabled
        assert auth.login(platform, "totp@example.org", password, totp_code=recovery[0]).principal.mfa
        with platform.uow() as uow:
            sealed = uow.users.by_email("totp@example.org").totp_secret_sealed
        assert sealed is not None and setup.secret.encode() not in sealed
    for stream in (process.stdout, process.stderr):
        assert setup.secret not in (stream.read() if stream else "")
