"""The ``vault`` KEK provider: HashiCorp Vault's Transit engine wraps the data keys.

UNTESTED AGAINST A REAL VAULT. The tests run it against an in-test fake of the two
Transit endpoints it uses (``POST /v1/<mount>/encrypt/<key>`` and ``.../decrypt/<key>``),
which pins the request shapes from Vault's API documentation but cannot prove
compatibility. Try it on a Vault dev server before relying on it.

Vault Transit's own associated-data support depends on the Vault version and key type,
so the binding is done here instead: the wrapped plaintext is SHA-256(aad) || data key,
and unwrapping checks the prefix. Transit's ciphertext is authenticated (AES-GCM), so a
wrapped key moved to another row fails that check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import httpx

from sealbot.custody.errors import KekUnavailable, SealedCredentialError

_DIGEST = 32


class VaultTransitKek:
    """Wrap/unwrap through Vault Transit key ``key_name``; the KEK never leaves Vault."""

    def __init__(self, url: str, token: str, key_name: str = "sealbot", mount: str = "transit", *,
                 client: httpx.Client | None = None, timeout: float = 5.0) -> None:
        if not url:
            raise KekUnavailable("vault_url", "the vault provider needs Vault's address")
        self._base = f"{url.rstrip('/')}/v1/{mount.strip('/')}"
        self._key, self._mount = key_name, mount.strip("/")
        self._client = client or httpx.Client(timeout=timeout)
        self._headers = {"X-Vault-Token": token}

    @property
    def kek_id(self) -> str:
        return f"vault:{self._mount}/{self._key}"

    def _post(self, op: str, body: dict[str, str]) -> dict[str, Any]:
        try:
            response = self._client.post(f"{self._base}/{op}/{self._key}", json=body, headers=self._headers)
        except httpx.HTTPError as exc:
            raise KekUnavailable(f"vault {self._base}", f"unreachable ({type(exc).__name__})") from None
        if response.status_code in (401, 403):
            raise KekUnavailable(f"vault {self._base}", f"token refused ({response.status_code})")
        if response.status_code == 400 and op == "decrypt":
            raise SealedCredentialError("data key", f"does not unwrap with KEK {self.kek_id}")
        if response.status_code != 200:
            raise KekUnavailable(f"vault {self._base}", f"{op} failed with HTTP {response.status_code}")
        data = response.json().get("data")
        if not isinstance(data, dict):
            raise KekUnavailable(f"vault {self._base}", f"{op} answered without data")
        return data

    def wrap(self, data_key: bytes, aad: bytes) -> bytes:
        plaintext = hashlib.sha256(aad).digest() + data_key
        data = self._post("encrypt", {"plaintext": base64.b64encode(plaintext).decode()})
        return str(data["ciphertext"]).encode()

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        data = self._post("decrypt", {"ciphertext": wrapped.decode("ascii", errors="replace")})
        plaintext = base64.b64decode(str(data["plaintext"]))
        if not hmac.compare_digest(plaintext[:_DIGEST], hashlib.sha256(aad).digest()):
            raise SealedCredentialError("data key", "is bound to another credential")
        return plaintext[_DIGEST:]

    def __repr__(self) -> str:
        return f"VaultTransitKek({self.kek_id})"
