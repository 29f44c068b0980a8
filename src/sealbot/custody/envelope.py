"""Envelope encryption: a fresh AES-256-GCM data key per credential, wrapped by a KEK.

The associated data binds every blob to (owner id, account id, credential version):
a blob copied onto another account's row, another user's row or an older version
fails its authentication tag and does not open. The wrapped data key is bound the
same way, so swapping only the wrapped keys fails too.

Rotating the KEK (``rewrap``) unwraps and rewraps the 32-byte data key only; the
credential's ciphertext, and so the secret itself, is never decrypted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealbot.custody.errors import CustodyError, SealedCredentialError

ALGORITHM: Final = "aes-256-gcm"
DATA_KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
_AAD_PREFIX: Final = b"sealbot/credential/v1"


class Kek(Protocol):
    """A key-encryption key: wraps and unwraps data keys, never shows itself."""

    @property
    def kek_id(self) -> str:
        """Stable, non-secret identifier stored next to every blob it wrapped."""
        ...

    def wrap(self, data_key: bytes, aad: bytes) -> bytes:
        """``data_key`` encrypted and authenticated under the KEK, bound to ``aad``."""
        ...

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        """The data key; raises ``SealedCredentialError`` if the KEK or ``aad`` is wrong."""
        ...


class Bound(Protocol):
    """What a blob is sealed to: its ``aad`` is the associated data, ``str`` names it in
    errors. ``Binding`` (credentials) and ``notify_keys.ChannelBinding`` (webhook keys)
    use different prefixes, so a blob of one kind never opens as the other."""

    def aad(self, part: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Binding:
    """What a sealed blob belongs to; its encoding is the AES-GCM associated data."""

    owner_id: int
    account_id: int
    version: int

    def aad(self, part: bytes) -> bytes:
        return b"%s|%s|owner=%d|account=%d|version=%d" % (
            _AAD_PREFIX, part, self.owner_id, self.account_id, self.version)

    def __str__(self) -> str:
        return f"(owner {self.owner_id}, account {self.account_id}, version {self.version})"


@dataclass(frozen=True, slots=True)
class SealedBlob:
    """The four values stored in a credential row. Opaque bytes; safe to print (lengths only)."""

    kek_id: str
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes
    algorithm: str = ALGORITHM

    def __repr__(self) -> str:
        return (f"SealedBlob(kek_id={self.kek_id!r}, wrapped_key=<{len(self.wrapped_key)} bytes>, "
                f"ciphertext=<{len(self.ciphertext)} bytes>)")


def seal_bytes(plaintext: bytes, binding: Bound, kek: Kek) -> SealedBlob:
    """Encrypt ``plaintext`` under a fresh data key and wrap that key with ``kek``."""
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, binding.aad(b"payload"))
    wrapped = kek.wrap(data_key, binding.aad(b"data-key"))
    return SealedBlob(kek_id=kek.kek_id, wrapped_key=wrapped, nonce=nonce, ciphertext=ciphertext)


def open_bytes(blob: SealedBlob, binding: Bound, kek: Kek) -> bytearray:
    """The plaintext (a bytearray the caller should wipe), or ``SealedCredentialError``."""
    _check(blob, kek, binding)
    data_key = kek.unwrap(blob.wrapped_key, binding.aad(b"data-key"))
    try:
        return bytearray(AESGCM(data_key).decrypt(blob.nonce, blob.ciphertext, binding.aad(b"payload")))
    except InvalidTag:
        raise SealedCredentialError(str(binding)) from None


def rewrap(blob: SealedBlob, binding: Bound, old: Kek, new: Kek) -> SealedBlob:
    """The same ciphertext with its data key wrapped by ``new``; the secret is never decrypted.

    The result is checked (unwrapped with ``new``) before it is returned, so a broken
    new KEK cannot silently replace a good wrapping.
    """
    _check(blob, old, binding)
    data_key = old.unwrap(blob.wrapped_key, binding.aad(b"data-key"))
    wrapped = new.wrap(data_key, binding.aad(b"data-key"))
    if new.unwrap(wrapped, binding.aad(b"data-key")) != data_key:
        raise CustodyError(f"custody: new KEK {new.kek_id} did not round-trip a data key")
    return SealedBlob(kek_id=new.kek_id, wrapped_key=wrapped, nonce=blob.nonce,
                      ciphertext=blob.ciphertext, algorithm=blob.algorithm)


def _check(blob: SealedBlob, kek: Kek, binding: Bound) -> None:
    if blob.algorithm != ALGORITHM:
        raise SealedCredentialError(str(binding), f"uses unknown algorithm {blob.algorithm!r}")
    if blob.kek_id != kek.kek_id:
        raise SealedCredentialError(
            str(binding), f"was sealed under KEK {blob.kek_id}, not the configured KEK {kek.kek_id}")


def wipe(buffer: bytearray) -> None:
    """Best-effort overwrite of a plaintext buffer once it has been used."""
    buffer[:] = bytes(len(buffer))
