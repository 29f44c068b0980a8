"""Masking of secrets in any text that leaves the process (logs, errors, responses).

Two nets: every secret custody has seen is registered (exact match, also in its hex
and base64 forms), and anything shaped like an exchange API secret (long runs of
base64/hex alphabet, PEM private keys) is masked even if it was never registered.
The second net catches what the first cannot know about, at the price of masking
some harmless long tokens.
"""

from __future__ import annotations

import base64
import re
import threading
from typing import Final

MASK: Final = "***"
_MIN_REGISTERED = 8
# 32+ chars of the base64/hex alphabet with at least one digit and one letter: the
# shape of Binance/KuCoin/OKX API keys and secrets (64 alphanumerics, UUID-like, ...).
_SECRET_SHAPE = re.compile(r"(?<![A-Za-z0-9+/=_-])(?=[A-Za-z0-9+/=_-]*\d)(?=[A-Za-z0-9+/=_-]*[A-Za-z])"
                           r"[A-Za-z0-9+/=_-]{32,}(?![A-Za-z0-9+/=_-])")
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S)


class _Registry:
    def __init__(self) -> None:
        # Re-entrant: compiling the pattern allocates, an allocation may run the garbage
        # collector, and a finalizer that logs (ccxt's ``__del__`` warns about an exchange
        # left open) comes back here through the logging filter on the same thread. With
        # a plain lock that thread waited for itself for good (seen in the test suite).
        self._lock = threading.RLock()
        self._needles: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, secret: str) -> None:
        if len(secret) < _MIN_REGISTERED:
            return  # too short to mask without mangling ordinary text
        raw = secret.encode()
        forms = {secret, raw.hex(), base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
        with self._lock:
            if forms <= self._needles:
                return  # already known: keep the compiled pattern (the signer re-creates secrets per call)
            self._needles |= forms
            self._pattern = None

    def pattern(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None and self._needles:
                alternatives = sorted(self._needles, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(n) for n in alternatives))
            return self._pattern


_registry = _Registry()


def register_secret(secret: str) -> None:
    """Mask ``secret`` (and its hex/base64 forms) wherever ``redact`` runs from now on."""
    _registry.add(secret)


def redact(text: str) -> str:
    """``text`` with every registered secret and every secret-shaped token masked."""
    pattern = _registry.pattern()
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _PEM.sub(MASK, text)
    return _SECRET_SHAPE.sub(MASK, text)
