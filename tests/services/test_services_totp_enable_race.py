"""Two sessions confirming two different pending 2FA setups at once: one turns 2FA on,
the other is refused, never overwriting the first secret (the check that 2FA is still off
and the write of the secret are one conditional UPDATE)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyotp
import pytest

from sealbot.config import load_settings
from sealbot.custody.totp import TotpSigner
from sealbot.domain.errors import Refused
from sealbot.services import auth
from sealbot.services.instance import init_instance
from sealbot.services.platform import Platform, open_platform

if TYPE_CHECKING:
    from conftest import TotpClock  # tests/conftest.py: the signer's two-factor clock

PASSWORD = "correct horse battery"
EMAIL = "race@example.org"


@pytest.fixture
def platform(tmp_path: Path, database_url: str) -> Platform:
    settings = load_settings(data_dir=tmp_path / "data", config_dir=tmp_path / "config", database_url=database_url)
    init_instance(settings)
    return open_platform(settings)


class _InterleavingSigner:
    """The real signer, but the first code check first runs ``before`` (another request
    completing in the middle of this one)."""

    def __init__(self, inner: TotpSigner, before: Any) -> None:
        self.inner, self.before = inner, before

    def match_totp(self, owner_id: int, sealed: bytes, code: str) -> int | None:
        before, self.before = self.before, None
        if before is not None:
            before()
        return self.inner.match_totp(owner_id, sealed, code)

    def seal_totp_secret(self, owner_id: int, secret: Any) -> bytes:
        return self.inner.seal_totp_secret(owner_id, secret)


def test_a_setup_confirmed_while_another_turns_2fa_on_does_not_replace_its_secret(
        platform: Platform, totp_clock: TotpClock) -> None:
    auth.register(platform, EMAIL, PASSWORD)
    first, second = auth.login(platform, EMAIL, PASSWORD), auth.login(platform, EMAIL, PASSWORD)
    first_secret = auth.begin_totp(platform, first.principal).secret
    second_secret = auth.begin_totp(platform, second.principal).secret
    first_code = totp_clock.code(first_secret)  # this step
    second_code = pyotp.TOTP(second_secret).at(totp_clock.now + 30)  # the next: within the drift window

    signer = platform.signer
    assert isinstance(signer, TotpSigner)
    platform.signer = _InterleavingSigner(  # type: ignore[assignment]
        signer, lambda: auth.confirm_totp(platform, first.principal, first_code))
    try:
        with pytest.raises(Refused):
            auth.confirm_totp(platform, second.principal, second_code)
    finally:
        platform.signer = signer  # type: ignore[assignment]

    totp_clock.tick(2)
    assert auth.login(platform, EMAIL, PASSWORD, totp_code=totp_clock.code(first_secret)).principal.mfa
    totp_clock.tick()
    with pytest.raises(auth.NotAuthenticated):
        auth.login(platform, EMAIL, PASSWORD, totp_code=totp_clock.code(second_secret))
