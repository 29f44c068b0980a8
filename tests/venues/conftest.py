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


@dataclass
class _Audit:
    records: list[tuple[str, str, str, dict[str, object]]] = field(default_factory=list)

    def record(self, actor: str, action: str, subject: str, details: Any) -> None:
        self.records.append((actor, action, subject, dict(details)))


@dataclass
class _Source:
    rows: dict[tuple[int, int], Any] = field(default_factory=dict)

    def load(self, owner_id: int, account_id: int) -> Any:
        from sealbot.custody.errors import CredentialNotFound

        try:
            return self.rows[(owner_id, account_id)]
        except KeyError:
            raise CredentialNotFound(owner_id, account_id) from None


@dataclass
class RealCustody:
    """custody's own LocalSigner over a file KEK, with in-memory credential rows."""

    signer: Any
    audit: _Audit
    source: _Source
    keyring: Any

    def link(self, account_id: int, api_key: str, secret: str, passphrase: str | None = None,
             allowed: frozenset[str] | None = None) -> Any:
        """Seal an HMAC credential for owner 1 and return a signing handle for it."""
        from sealbot.custody.envelope import Binding
        from sealbot.custody.sealing import seal_api_credentials
        from sealbot.custody.secrets import ApiCredentials
        from sealbot.custody.signer import StoredCredential

        sealed = seal_api_credentials(ApiCredentials(api_key, secret, passphrase), Binding(1, account_id, 1),
                                      self.keyring)
        self.source.rows[(1, account_id)] = StoredCredential(1, account_id, 1, sealed.algorithm, sealed.blob,
                                                             sealed.hsm_label, allowed)
        return self.signer.handle_for(1, account_id, "venue-test")

    def generate_ed25519(self, account_id: int, allowed: frozenset[str] | None = None) -> tuple[Any, str]:
        """A custody-born Ed25519 key; returns its (unregistered) sealed form and public PEM."""
        from sealbot.custody.envelope import Binding
        from sealbot.custody.sealing import generate_ed25519

        sealed = generate_ed25519(Binding(1, account_id, 1), self.keyring)
        return sealed, sealed.public_key_pem or ""

    def attach(self, sealed: Any, api_key: str, allowed: frozenset[str] | None = None) -> Any:
        """Attach the exchange's API key to a generated Ed25519 credential; returns a handle."""
        from sealbot.custody.envelope import Binding
        from sealbot.custody.sealing import attach_api_key
        from sealbot.custody.signer import StoredCredential

        b = sealed.binding
        new = attach_api_key(sealed, api_key, Binding(b.owner_id, b.account_id, b.version + 1), self.keyring)
        nb = new.binding
        self.source.rows[(nb.owner_id, nb.account_id)] = StoredCredential(
            nb.owner_id, nb.account_id, nb.version, new.algorithm, new.blob, new.hsm_label, allowed)
        return self.signer.handle_for(nb.owner_id, nb.account_id, "venue-test")


@pytest.fixture
def custody(tmp_path: Any) -> RealCustody:
    from sealbot.custody.kek_file import create_kek_file, load_file_kek
    from sealbot.custody.keyring import Keyring
    from sealbot.custody.signer import LocalSigner

    keyring = Keyring(load_file_kek(create_kek_file(tmp_path / "kek" / "kek.key")))
    audit, source = _Audit(), _Source()
    return RealCustody(LocalSigner(keyring, source, audit), audit, source, keyring)
