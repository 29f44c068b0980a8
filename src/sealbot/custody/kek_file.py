"""The ``file`` KEK provider: a 256-bit key in its own 0600 file, outside the database.

A copy of the database or of its backups holds nothing usable without this file,
which lives in the config directory, not the data directory. sealbot refuses to
start when the file is readable by group or others: a KEK anyone on the host can
read protects nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealbot.custody.errors import KekUnavailable, SealedCredentialError

KEY_BYTES: Final = 32
_HEADER: Final = "sealbot-kek-v1:"
_NONCE: Final = 12


class FileKek:
    """AES-256-GCM key wrapping with a key held in process memory (loaded from a file)."""

    __slots__ = ("_aead", "_kek_id")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise KekUnavailable("key", f"must be {KEY_BYTES * 8} bits, got {len(key) * 8}")
        self._aead = AESGCM(key)
        # a one-way fingerprint: names the key without revealing anything about it
        self._kek_id = "file:" + hashlib.sha256(b"sealbot kek id\x00" + key).hexdigest()[:16]

    @property
    def kek_id(self) -> str:
        return self._kek_id

    def wrap(self, data_key: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, data_key, aad)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], aad)
        except InvalidTag:
            raise SealedCredentialError("data key", f"does not unwrap with KEK {self._kek_id}") from None

    def __repr__(self) -> str:
        return f"FileKek({self._kek_id})"


def create_kek_file(path: Path) -> Path:
    """Write a new random KEK to ``path`` with mode 0600 (the file must not exist yet).

    ``sealbot init`` calls this. The file is created with O_EXCL and its final mode
    in one step, so no other process ever sees it with a looser mode.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KekUnavailable(str(path), "already exists; refusing to overwrite a KEK") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(_HEADER + base64.b64encode(key).decode() + "\n")
    os.chmod(path, 0o600)  # in case the umask was unusual
    return path


def load_file_kek(path: Path) -> FileKek:
    """The KEK in ``path``, or ``KekUnavailable`` naming the path and what is wrong with it."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KekUnavailable(str(path), "does not exist (create it with `sealbot init`)") from None
    except OSError as exc:
        raise KekUnavailable(str(path), f"cannot be inspected ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise KekUnavailable(str(path), "is not a regular file")
    loose = stat.S_IMODE(info.st_mode) & 0o077
    if loose:
        raise KekUnavailable(
            str(path),
            f"mode {stat.S_IMODE(info.st_mode):04o} lets group or others read it; run `chmod 600 {path}`")
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise KekUnavailable(str(path), f"cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise KekUnavailable(str(path), "is not a sealbot KEK file") from None
    if not text.startswith(_HEADER):
        raise KekUnavailable(str(path), "is not a sealbot KEK file")
    try:
        key = base64.b64decode(text.removeprefix(_HEADER), validate=True)
    except (binascii.Error, ValueError):
        raise KekUnavailable(str(path), "is corrupt (not base64)") from None
    if len(key) != KEY_BYTES:
        raise KekUnavailable(str(path), f"holds a {len(key) * 8}-bit key, not {KEY_BYTES * 8}")
    return FileKek(key)
