"""Shared helpers for the venue tests: an in-test signer and a fake ccxt HTTP layer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class FakeSignRequest:
    exchange: str
    method: str
    path: str
    params: dict[str, Any]


@dataclass(frozen=True)
class FakeHandle:
    account: str
    algorithm: str = "hmac-sha256"


@dataclass
class FakeSigner:
    """Implements the custody signer's protocol with the secret in its own memory only."""

    api_key_id: str
    secret: str = field(repr=False)
    passphrase: str = field(default="", repr=False)
    ed25519: Ed25519PrivateKey | None = None
    requests: list[FakeSignRequest] = field(default_factory=list)

    def api_key(self, handle: FakeHandle) -> str:
        return self.api_key_id

    def sign(self, handle: FakeHandle, payload: bytes, request: Any, encoding: str) -> str:
        self.requests.append(request)
        if handle.algorithm == "ed25519":
            assert self.ed25519 is not None
            return base64.b64encode(self.ed25519.sign(payload)).decode()
        digest = hmac.new(self.secret.encode(), payload, hashlib.sha256).digest()
        return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()

    def sign_passphrase(self, handle: FakeHandle) -> str:
        digest = hmac.new(self.secret.encode(), self.passphrase.encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class HttpError:
    """An HTTP error answer: ccxt's own ``handle_errors`` classifies it, as on the wire."""

    status: int
    body: Any
    reason: str = "Error"


@dataclass
class FakeHttp:
    """Stands in for ``exchange.fetch``: records each request, answers from ``routes``
    (a substring of the URL -> JSON body, or an exception to raise)."""

    routes: dict[str, Any]
    exchange: Any = None
    calls: list[tuple[str, str, dict[str, str], str | None]] = field(default_factory=list)

    async def __call__(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        self.calls.append((method, url, dict(headers or {}), body))
        for marker, answer in self.routes.items():
            if marker in url:
                if isinstance(answer, Exception):
                    raise answer
                if isinstance(answer, HttpError):
                    text = answer.body if isinstance(answer.body, str) else json.dumps(answer.body)
                    parsed = None if isinstance(answer.body, str) else answer.body
                    self.exchange.handle_errors(answer.status, answer.reason, url, method, {}, text, parsed,
                                                headers, body)
                    self.exchange.handle_http_status_code(answer.status, answer.reason, url, method, text)
                    raise AssertionError("ccxt did not raise for an HTTP error")
                return answer
        raise AssertionError(f"unexpected request {method} {url}")


@pytest.fixture
def signer() -> FakeSigner:
    return FakeSigner(api_key_id="test-key-id", secret="s3cr3t-" + "Q" * 40 + "-tail", passphrase="pass-phrase-9")
