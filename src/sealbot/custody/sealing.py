"""Turning plaintext credentials into sealed ones (and Ed25519 keys into existence).

Pure of storage: these functions take a ``Binding`` (owner, account, version) and a
``Keyring`` and return what a credential row stores. ``custody.service`` puts them
in the database and the audit log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sealbot.custody.envelope import Binding, SealedBlob, open_bytes, seal_bytes, wipe
from sealbot.custody.errors import CustodyError
from sealbot.custody.keyring import Keyring
from sealbot.custody.material import Material, SigningAlgorithm
from sealbot.custody.secrets import ApiCredentials, Secret, hint_of


@dataclass(frozen=True, slots=True)
class SealedCredential:
    """Everything a credential row holds. No field is secret."""

    binding: Binding
    algorithm: SigningAlgorithm
    blob: SealedBlob
    api_key_hint: str
    hsm_label: str | None = None
    public_key_pem: str | None = None


TOKEN_LABEL = re.compile(r"sb-(?:hmac|ed25519)-\d+-\d+-\d+-[0-9a-f]{8}")
"""What ``_label`` + the token's random suffix look like: the only objects custody deletes."""


def _label(kind: str, binding: Binding) -> str:
    return f"sb-{kind}-{binding.owner_id}-{binding.account_id}-{binding.version}"


def seal_api_credentials(creds: ApiCredentials, binding: Binding, keyring: Keyring) -> SealedCredential:
    """Seal an HMAC API key + secret (+ passphrase). With a token, the secret goes into
    the token as a non-extractable key and only the API key and passphrase are sealed."""
    hsm_label = None
    secret: Secret | None = creds.secret
    if keyring.token is not None:
        hsm_label = keyring.token.import_hmac_secret(creds.secret.reveal().encode(), _label("hmac", binding))
        secret = None
    material = Material(SigningAlgorithm.HMAC_SHA256, api_key=creds.api_key, secret=secret,
                        passphrase=creds.passphrase)
    blob = _seal(material, binding, keyring)
    return SealedCredential(binding, SigningAlgorithm.HMAC_SHA256, blob, creds.hint, hsm_label)


def generate_ed25519(binding: Binding, keyring: Keyring) -> SealedCredential:
    """A new Ed25519 key pair; the private key is sealed (file) or born in the token
    (pkcs11, non-extractable). Only the public key (PEM) comes out."""
    if keyring.token is not None:
        hsm_label, raw_public = keyring.token.generate_ed25519(_label("ed25519", binding))
        material = Material(SigningAlgorithm.ED25519)
        public = Ed25519PublicKey.from_public_bytes(raw_public)
    else:
        hsm_label = None
        private = Ed25519PrivateKey.generate()
        seed = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                     serialization.NoEncryption())
        material = Material(SigningAlgorithm.ED25519, ed25519_seed=Secret(seed.hex()))
        public = private.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return SealedCredential(binding, SigningAlgorithm.ED25519, _seal(material, binding, keyring), "",
                            hsm_label, pem)


def attach_api_key(sealed: SealedCredential, api_key: str | Secret, new_binding: Binding,
                   keyring: Keyring) -> SealedCredential:
    """The Ed25519 credential re-sealed under ``new_binding`` with the API key the
    exchange issued for its public key. The private key (or its token label) is kept."""
    if sealed.algorithm is not SigningAlgorithm.ED25519:
        raise CustodyError("custody: an API key is attached only to a generated Ed25519 key")
    key = api_key if isinstance(api_key, Secret) else Secret(api_key)
    raw = open_bytes(sealed.blob, sealed.binding, keyring.kek)
    try:
        old = Material.decode(raw)
    finally:
        wipe(raw)
    material = Material(SigningAlgorithm.ED25519, api_key=key, ed25519_seed=old.ed25519_seed)
    return SealedCredential(new_binding, SigningAlgorithm.ED25519, _seal(material, new_binding, keyring),
                            hint_of(key.reveal()), sealed.hsm_label, sealed.public_key_pem)


def _seal(material: Material, binding: Binding, keyring: Keyring) -> SealedBlob:
    plaintext = bytearray(material.encode())
    try:
        return seal_bytes(bytes(plaintext), binding, keyring.kek)
    finally:
        wipe(plaintext)


def open_material(blob: SealedBlob, binding: Binding, keyring: Keyring) -> Material:
    """Open a blob (for tests, rotation checks and the signer). Raises ``SealedCredentialError``."""
    raw = open_bytes(blob, binding, keyring.kek)
    try:
        return Material.decode(raw)
    finally:
        wipe(raw)


class Sealer(Protocol):
    """Where sealing happens: over a keyring in this process (``KeyringSealer``), or in
    the ``sealbot signer`` process over its socket (``SocketSigner``), so that in
    socket mode the web process seals new keys without ever holding the KEK.

    Plaintext goes in (the key path: a pasted key goes straight to custody); only
    sealed blobs, token labels, hints and public keys come out.
    """

    def seal_credentials(self, binding: Binding, creds: ApiCredentials) -> SealedCredential: ...

    def generate_ed25519(self, binding: Binding) -> SealedCredential: ...

    def attach_api_key(self, sealed: SealedCredential, api_key: Secret, new_binding: Binding) -> SealedCredential: ...

    def discard_token_object(self, hsm_label: str) -> None:
        """Delete a token object no row will name (a seal rolled back, a row destroyed)."""
        ...


class KeyringSealer:
    """The ``Sealer`` over a keyring in this process (in-process mode, and the signer
    process serving the socket)."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    def seal_credentials(self, binding: Binding, creds: ApiCredentials) -> SealedCredential:
        return seal_api_credentials(creds, binding, self._keyring)

    def generate_ed25519(self, binding: Binding) -> SealedCredential:
        return generate_ed25519(binding, self._keyring)

    def attach_api_key(self, sealed: SealedCredential, api_key: Secret, new_binding: Binding) -> SealedCredential:
        if (new_binding.owner_id, new_binding.account_id) != (sealed.binding.owner_id, sealed.binding.account_id) \
                or new_binding.version <= sealed.binding.version:
            # a re-seal must not move a key pair onto another account (it would undo the AAD binding)
            raise CustodyError(f"custody: an API key is attached under a later version of the same account, "
                               f"not {new_binding} for {sealed.binding}")
        return attach_api_key(sealed, api_key, new_binding, self._keyring)

    def discard_token_object(self, hsm_label: str) -> None:
        if not TOKEN_LABEL.fullmatch(hsm_label):
            # only credential objects: never the KEK, whoever asks (a socket peer included)
            raise CustodyError("custody: not the label of a credential's token object")
        if self._keyring.token is not None:
            self._keyring.token.destroy(hsm_label)

    def __repr__(self) -> str:
        return f"KeyringSealer({self._keyring!r})"
