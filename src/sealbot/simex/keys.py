"""API keys: permissions, IP whitelist, HMAC secret or Ed25519 public key.

The secret of an HMAC key is shown once, when the key is created; it is kept here
only because an exchange must hold it to verify signatures, and it never appears
in a repr, a log line or an API answer after creation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

# Permission names (Binance field they appear as in apiRestrictions).
PERMISSIONS = {
    "reading": "enableReading",
    "spot": "enableSpotAndMarginTrading",
    "margin": "enableMargin",
    "futures": "enableFutures",
    "withdrawals": "enableWithdrawals",
    "internal_transfer": "enableInternalTransfer",
    "universal_transfer": "permitsUniversalTransfer",
    "options": "enableVanillaOptions",
}
DEFAULT_PERMISSIONS = frozenset({"reading", "spot"})


@dataclass
class ApiKey:
    """One key of one account."""

    key: str
    account_id: int
    label: str
    permissions: frozenset[str]
    ip_whitelist: tuple[str, ...]
    created_ms: int
    secret: str | None = field(default=None, repr=False)
    public_key: Ed25519PublicKey | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)
    enabled: bool = True

    @property
    def kind(self) -> str:
        return "ed25519" if self.public_key is not None else "hmac"

    def allows_ip(self, ip: str) -> bool:
        """True when the whitelist is empty (unrestricted) or contains ``ip``."""
        if not self.ip_whitelist:
            return True
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in ipaddress.ip_network(net, strict=False) for net in self.ip_whitelist)

    def verify_binance(self, payload: bytes, signature: str) -> bool:
        """Binance: hex HMAC-SHA256, or base64 Ed25519, over query string + body."""
        if self.public_key is not None:
            try:
                self.public_key.verify(base64.b64decode(signature, validate=True), payload)
            except (InvalidSignature, ValueError):
                return False
            return True
        if self.secret is None:
            return False
        expected = hmac.new(self.secret.encode(), payload, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature.lower())

    def hmac_b64(self, payload: bytes) -> str:
        """KuCoin: base64 HMAC-SHA256 with the secret."""
        assert self.secret is not None
        return base64.b64encode(hmac.new(self.secret.encode(), payload, hashlib.sha256).digest()).decode()


def new_key_id() -> str:
    return secrets.token_hex(32)


def new_secret() -> str:
    return secrets.token_urlsafe(48)


def load_ed25519_public(pem: str) -> Ed25519PublicKey:
    """Parse a PEM public key; refuse anything but Ed25519."""
    key = load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("public key must be Ed25519")
    return key


def check_permissions(names: list[str] | frozenset[str]) -> frozenset[str]:
    unknown = set(names) - set(PERMISSIONS)
    if unknown:
        raise ValueError(f"unknown permission(s) {sorted(unknown)}; use {sorted(PERMISSIONS)}")
    return frozenset(names) | {"reading"}
