"""Envelope encryption: round trip, AAD binding, wrong KEK, rotation without decryption."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealbot.custody.envelope import Binding, open_bytes, rewrap, seal_bytes
from sealbot.custody.errors import SealedCredentialError
from sealbot.custody.kek_file import FileKek

KEK_A = FileKek(b"a" * 32)
KEK_B = FileKek(b"b" * 32)


@settings(max_examples=50)
@given(st.binary(max_size=512), st.integers(1, 2**31), st.integers(1, 2**31), st.integers(1, 1000))
def test_round_trip(payload: bytes, owner: int, account: int, version: int) -> None:
    binding = Binding(owner, account, version)
    blob = seal_bytes(payload, binding, KEK_A)
    if len(payload) >= 16:
        assert payload not in blob.ciphertext
    assert bytes(open_bytes(blob, binding, KEK_A)) == payload


def test_each_seal_uses_a_fresh_data_key_and_nonce() -> None:
    binding = Binding(1, 2, 1)
    one, two = seal_bytes(b"same", binding, KEK_A), seal_bytes(b"same", binding, KEK_A)
    assert one.nonce != two.nonce and one.ciphertext != two.ciphertext and one.wrapped_key != two.wrapped_key
    assert len(one.nonce) == 12


@pytest.mark.parametrize("other", [Binding(2, 2, 1), Binding(1, 3, 1), Binding(1, 2, 2)])
def test_a_blob_opens_only_under_its_own_binding(other: Binding) -> None:
    blob = seal_bytes(b"secret", Binding(1, 2, 1), KEK_A)
    with pytest.raises(SealedCredentialError):
        open_bytes(blob, other, KEK_A)


def test_swapping_only_the_wrapped_keys_fails() -> None:
    a, b = Binding(1, 1, 1), Binding(2, 2, 1)
    blob_a, blob_b = seal_bytes(b"A", a, KEK_A), seal_bytes(b"B", b, KEK_A)
    from dataclasses import replace
    with pytest.raises(SealedCredentialError):
        open_bytes(replace(blob_a, wrapped_key=blob_b.wrapped_key), a, KEK_A)


def test_wrong_kek_is_a_clear_error() -> None:
    blob = seal_bytes(b"secret", Binding(1, 2, 1), KEK_A)
    with pytest.raises(SealedCredentialError, match=f"sealed under KEK {KEK_A.kek_id}"):
        open_bytes(blob, Binding(1, 2, 1), KEK_B)
    forged = type(blob)(KEK_B.kek_id, blob.wrapped_key, blob.nonce, blob.ciphertext)
    with pytest.raises(SealedCredentialError, match="does not unwrap"):
        open_bytes(forged, Binding(1, 2, 1), KEK_B)


def test_rewrap_keeps_ciphertext_and_moves_to_the_new_kek() -> None:
    binding = Binding(1, 2, 3)
    blob = seal_bytes(b"secret", binding, KEK_A)
    moved = rewrap(blob, binding, KEK_A, KEK_B)
    assert moved.ciphertext == blob.ciphertext and moved.nonce == blob.nonce and moved.kek_id == KEK_B.kek_id
    assert bytes(open_bytes(moved, binding, KEK_B)) == b"secret"
    with pytest.raises(SealedCredentialError):
        open_bytes(moved, binding, KEK_A)
