"""Two-factor (TOTP) secrets: sealed at rest, sealed and checked only where the KEK is.

A user's TOTP secret is a second password that never changes: whoever reads it can make
every future code. So custody keeps it like an exchange secret:

- it is sealed with the credentials' envelope code (a fresh AES-256-GCM data key wrapped
  by the KEK), the associated data binding it to the user (``totp_binding``: owner = the
  user, account ``TOTP_ACCOUNT`` = -1, which no exchange account has), so a blob copied
  onto another user's row does not open;
- the web tier generates the secret and shows it once (the user must type it into an
  authenticator app), then hands it to the signer (``seal_totp_secret``), which returns
  only the sealed blob, as for a webhook key. Nothing ever asks for the secret back;
- a code is checked by the signer (``match_totp``): in process (``LocalSigner``) or, with
  ``signer = "socket"``, in the ``sealbot signer`` process, against its own clock (a caller
  cannot ask about codes of another time). It answers only which 30-second time step the
  code belongs to (one step of drift either way), or None. The step is what makes replay
  protection possible (RFC 6238 section 5.2): the web tier accepts a code only by raising
  the user's stored last step above it (``services.auth``), atomically in the database,
  so a code is good once, across processes and restarts.

Wrong codes are limited by the web tier, in the database (the login lockout, which counts
wrong codes on every path that takes one), not here: a limit kept in this process's memory
would be lost on restart and, in process, counted per web worker. A compromised web tier
could ask the signer about guesses without that limit, but a right guess would only unlock
sessions and two-factor changes that such a web tier writes to the database anyway, so a
count here would guard nothing more.

The stored form is a small JSON object (``encode_sealed``) in ``users.totp_secret_sealed``
(and ``sessions.pending_totp_sealed`` while a setup awaits its first code).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
from collections.abc import Callable
from typing import Final, Protocol, runtime_checkable

import pyotp

from sealbot.custody.envelope import Binding, SealedBlob, open_bytes, seal_bytes, wipe
from sealbot.custody.errors import CustodyError, SealedCredentialError
from sealbot.custody.keyring import Keyring
from sealbot.custody.secrets import Secret

TOTP_ACCOUNT: Final = -1  # the binding's "account" for a user's TOTP secret (exchange accounts are >= 1)
VALID_WINDOW: Final = 1  # one 30 s step either side: device clocks drift
MIN_SECRET_BITS: Final = 80  # RFC 4226 asks for at least 128, recommends 160; pyotp makes 160
STEP_SECONDS: Final = 30  # RFC 6238's default time step, what authenticator apps use


def totp_binding(owner_id: int) -> Binding:
    """What a user's sealed TOTP secret is bound to (the AES-GCM associated data)."""
    return Binding(owner_id, TOTP_ACCOUNT, 1)


def encode_sealed(blob: SealedBlob) -> bytes:
    """The stored form of a sealed TOTP secret (no field is secret)."""
    return json.dumps({"k": blob.kek_id, "w": base64.b64encode(blob.wrapped_key).decode(),
                       "n": base64.b64encode(blob.nonce).decode(),
                       "c": base64.b64encode(blob.ciphertext).decode()}).encode()


def decode_sealed(data: bytes, owner_id: int) -> SealedBlob:
    """The blob of a stored TOTP secret; ``SealedCredentialError`` when it is not one."""
    try:
        raw = json.loads(bytes(data))
        return SealedBlob(str(raw["k"]), base64.b64decode(raw["w"], validate=True),
                          base64.b64decode(raw["n"], validate=True), base64.b64decode(raw["c"], validate=True))
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise SealedCredentialError(str(totp_binding(owner_id)), "is not a sealed TOTP secret") from None


def seal_totp_secret(secret: Secret, owner_id: int, keyring: Keyring) -> bytes:
    """The secret (base32, as authenticator apps take it) sealed for ``owner_id`` under the
    keyring's KEK, in its stored form. A secret too short to be one is refused."""
    plain = secret.reveal()
    try:
        bits = len(base64.b32decode(plain + "=" * (-len(plain) % 8), casefold=True)) * 8
    except (binascii.Error, ValueError):
        raise CustodyError("custody: a TOTP secret must be base32") from None
    if bits < MIN_SECRET_BITS:
        raise CustodyError(f"custody: a TOTP secret must have at least {MIN_SECRET_BITS} bits")
    buffer = bytearray(plain.encode())
    try:
        return encode_sealed(seal_bytes(bytes(buffer), totp_binding(owner_id), keyring.kek))
    finally:
        wipe(buffer)


def normalize_code(code: str) -> str | None:
    """The six digits of a TOTP code as typed (spaces allowed), or None when it is not one."""
    digits = code.strip().replace(" ", "")
    return digits if len(digits) == 6 and digits.isascii() and digits.isdigit() else None


def time_step(unix_time: float) -> int:
    """The RFC 6238 time step (counter) of a moment: whole ``STEP_SECONDS`` since the epoch."""
    return int(unix_time) // STEP_SECONDS


def wall_clock() -> float:
    """The signer's clock for two-factor codes (unix seconds). Looked up at every check, so
    a test can move it (``tests/conftest.py``'s ``totp_clock``) instead of sleeping 30 s."""
    return time.time()


@runtime_checkable
class TotpSigner(Protocol):
    """Where TOTP secrets are sealed and codes checked: ``LocalSigner`` or ``SocketSigner``.
    The secret goes in once, to be sealed; only the blob and matched time steps come out."""

    def seal_totp_secret(self, owner_id: int, secret: Secret) -> bytes: ...

    def match_totp(self, owner_id: int, sealed: bytes, code: str) -> int | None: ...


class TotpKeeper:
    """Seals TOTP secrets and checks codes, in the process that holds the KEK.

    It keeps no state: whether a code was used already (replay) and how many wrong codes a
    user typed (the limit) are the web tier's, in the database (``services.auth``).
    """

    def __init__(self, keyring: Keyring, *, clock: Callable[[], float] | None = None) -> None:
        self._keyring, self._clock = keyring, clock

    def seal_totp_secret(self, owner_id: int, secret: Secret) -> bytes:
        return seal_totp_secret(secret, owner_id, self._keyring)

    def match_totp(self, owner_id: int, sealed: bytes, code: str) -> int | None:
        """The time step ``code`` belongs to when it is one of the user's codes of now (one
        step of drift either way; the latest when two steps share it), else None.
        ``SealedCredentialError`` when ``sealed`` is not this user's secret under this KEK."""
        now = self._clock() if self._clock is not None else wall_clock()
        digits = normalize_code(code)
        if digits is None:
            return None
        raw = open_bytes(decode_sealed(sealed, owner_id), totp_binding(owner_id), self._keyring.kek)
        try:
            totp = pyotp.TOTP(raw.decode(), interval=STEP_SECONDS)
            current = time_step(now)
            matched = [step for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1)
                       if hmac.compare_digest(totp.generate_otp(step), digits)]
        finally:
            wipe(raw)
        return max(matched) if matched else None

    def __repr__(self) -> str:
        return f"TotpKeeper({self._keyring!r})"
