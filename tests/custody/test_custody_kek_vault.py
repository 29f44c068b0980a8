"""The Vault Transit KEK against an in-test fake of Transit's encrypt/decrypt endpoints.

This pins the requests sealbot sends and the AAD binding; it is NOT a test against a
real Vault (none is available here), which docs/custody.md says plainly."""

from __future__ import annotations

import base64
import json
import os

import httpx
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealbot.custody.envelope import Binding, open_bytes, seal_bytes
from sealbot.custody.errors import KekUnavailable, SealedCredentialError
from sealbot.custody.kek_vault import VaultTransitKek


class FakeTransit:
    def __init__(self) -> None:
        self.key = AESGCM(AESGCM.generate_key(bit_length=256))
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if request.headers.get("X-Vault-Token") != "s.test-token":
            return httpx.Response(403, json={"errors": ["permission denied"]})
        body = json.loads(request.content)
        if request.url.path == "/v1/transit/encrypt/sealbot":
            nonce = os.urandom(12)
            sealed = nonce + self.key.encrypt(nonce, base64.b64decode(body["plaintext"]), None)
            return httpx.Response(200, json={"data": {"ciphertext": "vault:v1:" + base64.b64encode(sealed).decode()}})
        if request.url.path == "/v1/transit/decrypt/sealbot":
            raw = base64.b64decode(body["ciphertext"].removeprefix("vault:v1:"))
            try:
                plain = self.key.decrypt(raw[:12], raw[12:], None)
            except InvalidTag:
                return httpx.Response(400, json={"errors": ["cipher: message authentication failed"]})
            return httpx.Response(200, json={"data": {"plaintext": base64.b64encode(plain).decode()}})
        return httpx.Response(404)


def _kek(fake: FakeTransit, token: str = "s.test-token") -> VaultTransitKek:
    return VaultTransitKek("http://vault.test:8200", token, client=httpx.Client(transport=httpx.MockTransport(fake)))


def test_envelope_round_trip_and_binding_through_transit() -> None:
    fake = FakeTransit()
    kek = _kek(fake)
    assert kek.kek_id == "vault:transit/sealbot"
    blob = seal_bytes(b"secret", Binding(1, 2, 3), kek)
    assert blob.wrapped_key.startswith(b"vault:v1:")
    assert bytes(open_bytes(blob, Binding(1, 2, 3), kek)) == b"secret"
    with pytest.raises(SealedCredentialError):
        open_bytes(blob, Binding(1, 9, 3), kek)
    assert set(fake.paths) == {"/v1/transit/encrypt/sealbot", "/v1/transit/decrypt/sealbot"}


def test_a_foreign_vault_key_or_token_is_a_clear_error() -> None:
    blob = seal_bytes(b"secret", Binding(1, 2, 3), _kek(FakeTransit()))
    with pytest.raises(SealedCredentialError):
        open_bytes(blob, Binding(1, 2, 3), _kek(FakeTransit()))  # same key name, different Vault key
    with pytest.raises(KekUnavailable, match="token refused"):
        _kek(FakeTransit(), token="wrong").wrap(b"k" * 32, b"aad")
    with pytest.raises(KekUnavailable, match="needs Vault's address"):
        VaultTransitKek("", "t")
