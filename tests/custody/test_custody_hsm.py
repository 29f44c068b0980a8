"""The PKCS#11 provider against a real SoftHSM2 token (not a mock)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sealbot.custody.envelope import Binding, open_bytes, rewrap, seal_bytes
from sealbot.custody.errors import KekUnavailable, SealedCredentialError
from sealbot.custody.hsm import Pkcs11Token
from sealbot.custody.kek_file import FileKek
from sealbot.custody.keyring import Keyring
from sealbot.custody.sealing import generate_ed25519

pytestmark = pytest.mark.softhsm


def test_kek_is_non_extractable_and_sensitive_per_the_token(softhsm_token: Pkcs11Token) -> None:
    softhsm_token.kek("kek-attr", create=True)
    attributes = softhsm_token.key_attributes("kek-attr")
    assert attributes == {"extractable": False, "sensitive": True, "never_extractable": True}


def test_envelope_round_trip_with_the_token_kek(softhsm_token: Pkcs11Token) -> None:
    kek = softhsm_token.kek("kek-rt", create=True)
    assert kek.kek_id == "pkcs11:sealbot-test/kek-rt"
    binding = Binding(7, 8, 1)
    blob = seal_bytes(b"api secret", binding, kek)
    assert bytes(open_bytes(blob, binding, kek)) == b"api secret"
    with pytest.raises(SealedCredentialError):
        open_bytes(blob, Binding(7, 9, 1), kek)


def test_rotation_between_file_and_token_keks(softhsm_token: Pkcs11Token) -> None:
    file_kek, token_kek = FileKek(b"f" * 32), softhsm_token.kek("kek-rot", create=True)
    binding = Binding(1, 1, 1)
    blob = seal_bytes(b"moving", binding, file_kek)
    moved = rewrap(blob, binding, file_kek, token_kek)
    assert bytes(open_bytes(moved, binding, token_kek)) == b"moving"
    back = rewrap(moved, binding, token_kek, file_kek)
    assert bytes(open_bytes(back, binding, file_kek)) == b"moving"


def test_a_missing_kek_is_refused_by_name(softhsm_token: Pkcs11Token) -> None:
    with pytest.raises(KekUnavailable, match="no-such-kek"):
        softhsm_token.kek("no-such-kek")


def test_imported_hmac_secret_is_non_extractable_and_destroyable(softhsm_token: Pkcs11Token) -> None:
    label = softhsm_token.import_hmac_secret(b"Jefe", "sb-hmac-test")
    # RFC 4231 test case 2
    assert softhsm_token.hmac_sha256(label, b"what do ya want for nothing?").hex() == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    attributes = softhsm_token.key_attributes(label)
    assert attributes["extractable"] is False and attributes["sensitive"] is True
    assert softhsm_token.destroy(label) == 1
    assert not softhsm_token.has(label)


def test_ed25519_pair_is_born_in_the_token_and_verifies(softhsm_token: Pkcs11Token) -> None:
    keyring = Keyring(softhsm_token.kek("kek-ed", create=True), softhsm_token)
    sealed = generate_ed25519(Binding(3, 4, 1), keyring)
    assert sealed.hsm_label is not None and sealed.public_key_pem is not None
    assert sealed.public_key_pem.startswith("-----BEGIN PUBLIC KEY-----")
    attributes = softhsm_token.key_attributes(sealed.hsm_label)
    assert attributes == {"extractable": False, "sensitive": True, "never_extractable": True}
    public = serialization.load_pem_public_key(sealed.public_key_pem.encode())
    assert isinstance(public, Ed25519PublicKey)
    message = b"symbol=BTCUSDT&side=BUY&timestamp=1"
    public.verify(softhsm_token.ed25519_sign(sealed.hsm_label, message), message)  # raises if wrong
    assert softhsm_token.destroy(sealed.hsm_label) == 2  # private and public halves



def test_a_missing_token_key_is_a_custody_error(softhsm_token: Pkcs11Token) -> None:
    from sealbot.custody.errors import CustodyError

    with pytest.raises(CustodyError, match="no key labelled"):
        softhsm_token.hmac_sha256("sb-hmac-missing", b"data")
    with pytest.raises(CustodyError, match="no key labelled"):
        softhsm_token.ed25519_sign("sb-ed25519-missing", b"data")
