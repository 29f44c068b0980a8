"""The keys custody works with: one KEK, and in ``pkcs11`` mode the token behind it.

``open_file_keyring`` and ``open_pkcs11_keyring`` are what the CLI and the signer
process call with the instance's settings (custody does not read settings itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sealbot.custody.envelope import Kek
from sealbot.custody.hsm import Pkcs11Token
from sealbot.custody.kek_file import load_file_kek

DEFAULT_KEK_LABEL = "sealbot-kek"


@dataclass(frozen=True, slots=True)
class Keyring:
    """A KEK, plus the token when secrets and private keys live in an HSM."""

    kek: Kek
    token: Pkcs11Token | None = None

    @property
    def provider(self) -> str:
        return "pkcs11" if self.token is not None else "file"

    def __repr__(self) -> str:
        return f"Keyring({self.kek.kek_id})"


def open_file_keyring(path: Path) -> Keyring:
    """The ``file`` provider; refuses a missing, unreadable or group/world-readable file."""
    return Keyring(load_file_kek(path))


def open_pkcs11_keyring(module: Path, token_label: str, pin: str, kek_label: str = DEFAULT_KEK_LABEL,
                        *, create_kek: bool = False) -> Keyring:
    """The ``pkcs11`` provider: KEK ``kek_label`` in token ``token_label`` (created on
    first use when ``create_kek``, as ``sealbot init`` does)."""
    token = Pkcs11Token(module, token_label, pin)
    return Keyring(token.kek(kek_label, create=create_kek), token)
