"""Two-factor secrets in custody: sealed bound to the user, checked against the signer's own
clock, answered only with the matched time step (in process and over the socket). The
signer keeps no state: replays and wrong-code limits are the web tier's, in the database
(tests/services/test_services_auth_replay.py)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pyotp
import pytest

from sealbot.custody.errors import CustodyError, SealedCredentialError
from sealbot.custody.keyring import Keyring
from sealbot.custody.secrets import Secret
from sealbot.custody.signer import LocalSigner
from sealbot.custody.signer_socket import SignerServer, SocketSigner
from sealbot.custody.totp import TotpKeeper, TotpSigner, decode_sealed

from .conftest import MemoryAudit, MemorySource

NOW = 1_764_000_000.0


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def code(secret: str, at: float) -> str:
    return pyotp.TOTP(secret).at(int(at))


def wrong(secret: str, at: float) -> str:
    return "000000" if code(secret, at) != "000000" else "111111"


def test_a_code_is_matched_to_its_time_step_on_the_signers_clock_with_one_step_of_drift(
        file_keyring: Keyring) -> None:
    clock, secret = Clock(), pyotp.random_base32()
    keeper = TotpKeeper(file_keyring, clock=clock)
    sealed = keeper.seal_totp_secret(7, Secret(secret))
    step = int(NOW) // 30
    assert secret.encode() not in sealed and decode_sealed(sealed, 7).kek_id == file_keyring.kek.kek_id
    assert keeper.match_totp(7, sealed, code(secret, NOW)) == step
    assert keeper.match_totp(7, sealed, " ".join([code(secret, NOW - 30)[:3], code(secret, NOW - 30)[3:]])) == step - 1
    assert keeper.match_totp(7, sealed, code(secret, NOW + 30)) == step + 1
    assert keeper.match_totp(7, sealed, code(secret, NOW - 60)) is None  # two steps off: too old
    assert keeper.match_totp(7, sealed, code(secret, NOW + 300)) is None  # a code of later is not asked about
    assert keeper.match_totp(7, sealed, "12345a") is None
    for _ in range(20):  # the keeper keeps no count: replays and the limit are the web tier's, in the database
        assert keeper.match_totp(7, sealed, wrong(secret, NOW)) is None
    assert keeper.match_totp(7, sealed, code(secret, NOW)) == step
    clock.now = NOW + 300
    assert keeper.match_totp(7, sealed, code(secret, NOW + 300)) == step + 10


def test_a_sealed_secret_opens_only_for_its_user_and_only_a_real_secret_is_sealed(file_keyring: Keyring) -> None:
    secret = pyotp.random_base32()
    keeper = TotpKeeper(file_keyring, clock=Clock())
    sealed = keeper.seal_totp_secret(7, Secret(secret))
    with pytest.raises(SealedCredentialError):
        keeper.match_totp(8, sealed, code(secret, NOW))
    with pytest.raises(SealedCredentialError):
        keeper.match_totp(7, b"not a sealed secret", code(secret, NOW))
    for bad in ("not base32!", "JBSWY3DP"):  # not base32; 40 bits
        with pytest.raises(CustodyError):
            keeper.seal_totp_secret(7, Secret(bad))


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sbt", dir="/tmp"))  # AF_UNIX paths are limited to 107 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_over_the_socket_the_secret_goes_in_once_and_only_a_time_step_comes_back(
        file_keyring: Keyring, short_dir: Path, totp_clock: Callable[[], float]) -> None:
    secret = pyotp.random_base32()
    server = SignerServer(short_dir / "s.sock", LocalSigner(file_keyring, MemorySource(), MemoryAudit()),
                          {os.getuid()})
    server.start_in_thread()
    client = SocketSigner(short_dir / "s.sock")
    try:
        assert isinstance(client, TotpSigner)
        sealed = client.seal_totp_secret(7, Secret(secret))
        assert secret.encode() not in sealed
        now = totp_clock()  # the signer thread's clock, which the test holds still
        assert client.match_totp(7, sealed, code(secret, now)) == int(now) // 30
        assert client.match_totp(7, sealed, wrong(secret, now)) is None
        assert client.match_totp(7, sealed, "abcdef") is None
        with pytest.raises(SealedCredentialError):
            client.match_totp(8, sealed, code(secret, now))
    finally:
        client.close()
        server.shutdown()
