"""What goes inside a sealed blob, and how it is encoded.

One blob holds everything secret about a credential together (API key, HMAC secret,
passphrase, Ed25519 seed), so they can only be opened, rotated and destroyed
together. In ``pkcs11`` mode the HMAC secret and the Ed25519 private key live in
the token instead and the blob holds only what the token cannot (the API key, the
passphrase) plus the label of the token object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

from sealbot.custody.errors import CustodyError
from sealbot.custody.secrets import Secret


class SigningAlgorithm(StrEnum):
    HMAC_SHA256 = "hmac-sha256"
    ED25519 = "ed25519"


@dataclass(frozen=True, slots=True, repr=False)
class Material:
    """The decrypted contents of one blob. Lives only inside custody, for one operation."""

    algorithm: SigningAlgorithm
    api_key: Secret | None = None
    secret: Secret | None = None  # HMAC secret (file mode)
    passphrase: Secret | None = None
    ed25519_seed: Secret | None = None  # hex of the 32-byte private seed (file mode)

    def __repr__(self) -> str:
        return f"Material({self.algorithm.value}, ***)"

    def encode(self) -> bytes:
        fields = {"v": 1, "alg": self.algorithm.value}
        for name in ("api_key", "secret", "passphrase", "ed25519_seed"):
            value: Secret | None = getattr(self, name)
            if value is not None:
                fields[name] = value.reveal()
        return json.dumps(fields, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes | bytearray) -> Material:
        try:
            fields = json.loads(bytes(raw))
            algorithm = SigningAlgorithm(fields["alg"])
        except (ValueError, KeyError, TypeError):
            raise CustodyError("custody: a sealed credential opened but its contents are malformed") from None

        def get(name: str) -> Secret | None:
            value = fields.get(name)
            return Secret(value) if isinstance(value, str) else None

        return cls(algorithm, get("api_key"), get("secret"), get("passphrase"), get("ed25519_seed"))
