"""The signer: known-answer vectors on every path, policy refusals audited, handles opaque."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sealbot.custody.envelope import Binding, seal_bytes
from sealbot.custody.errors import CredentialNotFound, CustodyError, SigningRefused
from sealbot.custody.keyring import Keyring
from sealbot.custody.material import Material, SigningAlgorithm
from sealbot.custody.sealing import SealedCredential, generate_ed25519, seal_api_credentials
from sealbot.custody.secrets import ApiCredentials, Secret
from sealbot.custody.signer import LocalSigner, SignRequest, StoredCredential

from .conftest import MemoryAudit, MemorySource

# Binance spot API docs, "SIGNED endpoint examples for POST /api/v3/order" (HMAC keys)
BINANCE_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
BINANCE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
BINANCE_QUERY = (b"symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
                 b"&recvWindow=5000&timestamp=1499827319559")
BINANCE_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
ORDER = SignRequest("binance", "POST", "api/v3/order", {"symbol": "LTCBTC"})

# RFC 8032 section 7.1, TEST 1-3: (secret seed, public key, message, signature)
RFC8032 = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
]


def _stored(sealed: SealedCredential, allowed: frozenset[str] | None = frozenset({"LTCBTC"})) -> StoredCredential:
    b = sealed.binding
    return StoredCredential(b.owner_id, b.account_id, b.version, sealed.algorithm, sealed.blob,
                            sealed.hsm_label, allowed)


def _signer(keyring: Keyring, *sealed: SealedCredential) -> tuple[LocalSigner, MemoryAudit]:
    source, audit = MemorySource(), MemoryAudit()
    for item in sealed:
        source.add(_stored(item))
    return LocalSigner(keyring, source, audit), audit


@pytest.fixture(params=["file", "pkcs11"])
def keyring(request: pytest.FixtureRequest) -> Keyring:
    return request.getfixturevalue(f"{request.param}_keyring")  # type: ignore[no-any-return]


def test_binance_documented_hmac_vector_on_every_provider(keyring: Keyring) -> None:
    sealed = seal_api_credentials(ApiCredentials(BINANCE_API_KEY, BINANCE_SECRET), Binding(1, 10, 1), keyring)
    if keyring.token is not None:  # the secret lives in the token, not in the blob
        assert sealed.hsm_label is not None
        assert keyring.token.key_attributes(sealed.hsm_label)["extractable"] is False
    signer, audit = _signer(keyring, sealed)
    handle = signer.handle_for(1, 10, "place order for bot 3")
    assert signer.sign(handle, BINANCE_QUERY, ORDER, "hex") == BINANCE_SIGNATURE
    assert base64.b64decode(signer.sign(handle, BINANCE_QUERY, ORDER, "base64")).hex() == BINANCE_SIGNATURE
    assert signer.api_key(handle) == BINANCE_API_KEY
    assert audit.records[0][1:3] == ("credential.accessed", "account:10")
    assert audit.records[0][3]["purpose"] == "place order for bot 3"


def test_kucoin_passphrase_signature(keyring: Keyring) -> None:
    import hashlib
    import hmac
    creds = ApiCredentials("kucoin-key-0123456789", "kucoin-secret-abcdef", passphrase="my-passphrase")
    signer, _ = _signer(keyring, seal_api_credentials(creds, Binding(1, 11, 1), keyring))
    handle = signer.handle_for(1, 11, "kucoin")
    expected = base64.b64encode(hmac.new(b"kucoin-secret-abcdef", b"my-passphrase", hashlib.sha256).digest())
    assert signer.sign_passphrase(handle) == expected.decode()


@pytest.mark.parametrize(("seed", "public", "message", "signature"), RFC8032)
def test_rfc8032_vectors_through_the_file_path(file_keyring: Keyring, seed: str, public: str, message: str,
                                               signature: str) -> None:
    binding = Binding(2, 20, 1)
    material = Material(SigningAlgorithm.ED25519, api_key=Secret("ed-api-key-000001"), ed25519_seed=Secret(seed))
    blob = seal_bytes(material.encode(), binding, file_keyring.kek)
    sealed = SealedCredential(binding, SigningAlgorithm.ED25519, blob, "0001")
    signer, _ = _signer(file_keyring, sealed)
    handle = signer.handle_for(2, 20, "kat")
    assert handle.algorithm == "ed25519"
    request = SignRequest("binance", "GET", "api/v3/account", {})
    got = signer.sign(handle, bytes.fromhex(message), request, "base64")
    assert base64.b64decode(got).hex() == signature
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(public)).verify(base64.b64decode(got), bytes.fromhex(message))


def test_generated_ed25519_signs_verifiably_on_every_provider(keyring: Keyring) -> None:
    sealed = generate_ed25519(Binding(2, 21, 1), keyring)
    assert sealed.public_key_pem is not None
    signer, _ = _signer(keyring, sealed)
    handle = signer.handle_for(2, 21, "verify")
    payload = b"symbol=LTCBTC&side=SELL&timestamp=1"
    signature = base64.b64decode(signer.sign(handle, payload, ORDER, "base64"))
    public = serialization.load_pem_public_key(sealed.public_key_pem.encode())
    assert isinstance(public, Ed25519PublicKey)
    public.verify(signature, payload)
    with pytest.raises(CustodyError, match="no API key yet"):
        signer.api_key(handle)


def test_withdrawal_and_off_list_orders_are_refused_and_audited(file_keyring: Keyring) -> None:
    sealed = seal_api_credentials(ApiCredentials(BINANCE_API_KEY, BINANCE_SECRET), Binding(1, 12, 1), file_keyring)
    signer, audit = _signer(file_keyring, sealed)
    handle = signer.handle_for(1, 12, "bot")
    withdraw = SignRequest("binance", "POST", "sapi/v1/capital/withdraw/apply", {"coin": "BTC"})
    with pytest.raises(SigningRefused):
        signer.sign(handle, b"coin=BTC&address=bc1q&amount=1&timestamp=1", withdraw, "hex")
    with pytest.raises(SigningRefused):
        signer.sign(handle, b"symbol=PUMPBTC&side=BUY&timestamp=1", ORDER, "hex")  # params claim LTCBTC
    refusals = [r for r in audit.records if r[1] == "signer.refused"]
    assert [r[3]["rule"] for r in refusals] == ["withdrawal", "allow-list"]
    assert all(r[2] == "account:12" for r in refusals)
    assert refusals[0][3]["path"] == "sapi/v1/capital/withdraw/apply"


def test_handles_are_opaque_and_unforgeable(file_keyring: Keyring) -> None:
    sealed = seal_api_credentials(ApiCredentials(BINANCE_API_KEY, BINANCE_SECRET), Binding(1, 13, 1), file_keyring)
    signer, _ = _signer(file_keyring, sealed)
    handle = signer.handle_for(1, 13, "bot")
    assert BINANCE_SECRET not in repr(handle) and handle.ref not in repr(handle)
    forged = type(handle)(1, 13, 1, "hmac-sha256", "guessed-ref")
    with pytest.raises(CustodyError, match="unknown or revoked"):
        signer.sign(forged, BINANCE_QUERY, ORDER, "hex")
    assert signer.forget(account_id=13) == 1
    with pytest.raises(CustodyError, match="unknown or revoked"):
        signer.sign(handle, BINANCE_QUERY, ORDER, "hex")
    with pytest.raises(CredentialNotFound):
        signer.handle_for(1, 99, "nothing there")


def test_a_destroyed_credential_stops_signing_after_the_ttl(file_keyring: Keyring) -> None:
    now = [0.0]
    sealed = seal_api_credentials(ApiCredentials(BINANCE_API_KEY, BINANCE_SECRET), Binding(1, 14, 1), file_keyring)
    source = MemorySource()
    source.add(_stored(sealed))
    signer = LocalSigner(file_keyring, source, MemoryAudit(), handle_ttl=5, clock=lambda: now[0])
    handle = signer.handle_for(1, 14, "bot")
    del source.rows[(1, 14)]
    assert signer.sign(handle, BINANCE_QUERY, ORDER, "hex") == BINANCE_SIGNATURE  # within the TTL
    now[0] = 6.0
    with pytest.raises(CredentialNotFound):
        signer.sign(handle, BINANCE_QUERY, ORDER, "hex")
