"""Two-factor secrets are sealed and checked where the KEK is: a KEK rotation carries
them (enabled and pending), and a sealed secret copied onto another user does not open.
Each code is good once, so a second 2FA action takes the next step's code (the signer's
clock, ``totp_clock``, is moved 30 s instead of sleeping). Replays and the wrong-code
limit: test_services_auth_replay.py."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sealbot.config import Settings, load_settings
from sealbot.custody.errors import SealedCredentialError
from sealbot.services import auth
from sealbot.services.instance import init_instance
from sealbot.services.operations import keys_status, rotate_file_kek
from sealbot.services.platform import Platform, open_platform

if TYPE_CHECKING:
    from conftest import TotpClock  # tests/conftest.py: the signer's two-factor clock

PASSWORD = "correct horse battery"


def settings_for(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(data_dir=tmp_path / "data", config_dir=tmp_path / "config", database_url=database_url)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    settings = settings_for(tmp_path, database_url)
    init_instance(settings)
    return settings


def enrol(platform: Platform, email: str, clock: TotpClock) -> str:
    """Register, log in, turn 2FA on (with the current code); the TOTP secret the user was shown."""
    auth.register(platform, email, PASSWORD)
    session = auth.login(platform, email, PASSWORD)
    setup = auth.begin_totp(platform, session.principal)
    auth.confirm_totp(platform, session.principal, clock.code(setup.secret))
    return setup.secret


def wrong_code(secret: str, clock: TotpClock) -> str:
    return "000000" if clock.code(secret) != "000000" else "111111"


def test_kek_rotation_carries_two_factor_secrets_and_logins_keep_working(settings: Settings,
                                                                         totp_clock: TotpClock) -> None:
    platform = open_platform(settings)
    secrets = {email: enrol(platform, email, totp_clock) for email in ("a@example.org", "b@example.org")}
    # a setup begun but not confirmed before the rotation is carried too
    auth.register(platform, "c@example.org", PASSWORD)
    pending_session = auth.login(platform, "c@example.org", PASSWORD)
    pending = auth.begin_totp(platform, pending_session.principal)
    old_kek = platform.keyring.kek.kek_id
    assert f"  2 two-factor secret(s) under {old_kek}" in keys_status(settings)

    report = rotate_file_kek(settings)

    assert report.totp_secrets == 3  # two enabled, one pending
    assert f"  2 two-factor secret(s) under {report.new_kek_id}" in keys_status(settings)
    fresh = open_platform(settings)
    assert fresh.keyring.kek.kek_id == report.new_kek_id != old_kek
    totp_clock.tick()  # the codes used to enrol are spent: 30 s later
    for email, secret in secrets.items():
        session = auth.login(fresh, email, PASSWORD, totp_code=totp_clock.code(secret))
        assert session.principal.mfa
        with pytest.raises(auth.TotpRequired):
            auth.login(fresh, email, PASSWORD, totp_code=wrong_code(secret, totp_clock))
    auth.confirm_totp(fresh, pending_session.principal, totp_clock.code(pending.secret))
    totp_clock.tick()
    assert auth.login(fresh, "c@example.org", PASSWORD, totp_code=totp_clock.code(pending.secret)).principal.mfa
    assert not [line for line in keys_status(settings) if "not the configured KEK" in line]  # nothing left behind


def test_a_sealed_two_factor_secret_copied_onto_another_user_does_not_open(settings: Settings,
                                                                           totp_clock: TotpClock) -> None:
    platform = open_platform(settings)
    alice = enrol(platform, "alice@example.org", totp_clock)
    enrol(platform, "mallory@example.org", totp_clock)
    totp_clock.tick()
    with platform.uow() as uow:
        sealed = uow.users.by_email("alice@example.org").totp_secret_sealed
        uow.users.by_email("mallory@example.org").totp_secret_sealed = sealed
    with pytest.raises(SealedCredentialError):  # the blob is bound to alice: it does not open as mallory's
        auth.login(platform, "mallory@example.org", PASSWORD, totp_code=totp_clock.code(alice))
    with platform.uow() as uow:
        assert uow.users.by_email("mallory@example.org").totp_secret_sealed == sealed
    session_principal = auth.login(platform, "alice@example.org", PASSWORD, totp_code=totp_clock.code(alice))
    assert session_principal.principal.mfa
