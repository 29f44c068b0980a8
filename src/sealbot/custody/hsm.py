"""The ``pkcs11`` provider: KEK, HMAC secrets and Ed25519 keys living inside a token.

Everything here happens *in the token* (SoftHSM2 in tests, a hardware HSM in
production): the KEK is a non-extractable, sensitive AES-256 key and wraps data
keys with CKM_AES_GCM; each exchange HMAC secret is imported once as a
non-extractable generic secret key and request signatures are computed with
CKM_SHA256_HMAC; Ed25519 key pairs are generated with CKM_EC_EDWARDS_KEY_PAIR_GEN
and sign with CKM_EDDSA. After import, a secret never exists in sealbot's memory
again; a generated private key never existed there at all.

One session serves the process; PKCS#11 sessions are not safe for concurrent
operations, so every call takes a lock. Object handles are cached by label.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import PKCS11Error, UserAlreadyLoggedIn

from sealbot.custody.errors import CustodyError, KekUnavailable, SealedCredentialError

_NONCE: Final = 12
# DER OID 1.3.101.112 (id-Ed25519), the CKA_EC_PARAMS SoftHSM2 and PKCS#11 3.0 accept
ED25519_PARAMS: Final = bytes.fromhex("06032b6570")
HMAC_MIN_KEY_BYTES: Final = 32


class Pkcs11Token:
    """A logged-in session on one token, with the few operations custody needs."""

    def __init__(self, module: Path, token_label: str, pin: str) -> None:
        try:
            lib = pkcs11.lib(str(module))
        except (PKCS11Error, OSError, RuntimeError) as exc:
            raise KekUnavailable(str(module), f"PKCS#11 module cannot be loaded ({type(exc).__name__})") from None
        try:
            token = lib.get_token(token_label=token_label)
            try:
                self._session: Any = token.open(rw=True, user_pin=pin)
            except UserAlreadyLoggedIn:
                # PKCS#11 logins are per application: another session of this process
                # already logged in, and new sessions share that login
                self._session = token.open(rw=True)
        except PKCS11Error as exc:
            raise KekUnavailable(f"token {token_label!r}", f"cannot be opened ({type(exc).__name__})") from None
        self.token_label = token_label
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, int], Any] = {}

    # ----- lookup -------------------------------------------------------------------
    def _find(self, label: str, cls: int) -> Any:
        key = (label, cls)
        cached = self._objects.get(key)
        if cached is not None:
            return cached
        found = list(self._session.get_objects({Attribute.LABEL: label, Attribute.CLASS: cls}))
        if not found:
            raise CustodyError(f"custody: token {self.token_label!r} holds no key labelled {label!r}")
        self._objects[key] = found[0]
        return found[0]

    def has(self, label: str) -> bool:
        with self._lock:
            return bool(list(self._session.get_objects({Attribute.LABEL: label})))

    def key_attributes(self, label: str) -> dict[str, bool]:
        """EXTRACTABLE / SENSITIVE / NEVER_EXTRACTABLE of every object labelled ``label``,
        read from the token itself (what tests and ``keys status`` assert)."""
        with self._lock:
            result: dict[str, bool] = {}
            for obj in self._session.get_objects({Attribute.LABEL: label}):
                if obj[Attribute.CLASS] == ObjectClass.PUBLIC_KEY:
                    continue
                result = {
                    "extractable": bool(obj[Attribute.EXTRACTABLE]),
                    "sensitive": bool(obj[Attribute.SENSITIVE]),
                    "never_extractable": bool(obj[Attribute.NEVER_EXTRACTABLE]),
                }
            if not result:
                raise CustodyError(f"custody: token {self.token_label!r} holds no key labelled {label!r}")
            return result

    def labels(self, prefix: str = "sb-") -> set[str]:
        """Labels of the token's objects that start with ``prefix`` (sealbot's own)."""
        with self._lock:
            found = set()
            for obj in self._session.get_objects({}):
                label = obj.label or ""
                if label.startswith(prefix):
                    found.add(label)
            return found

    # ----- KEK ----------------------------------------------------------------------
    def kek(self, label: str, *, create: bool = False) -> Pkcs11Kek:
        """The AES KEK labelled ``label``; with ``create``, generate it if it is missing."""
        with self._lock:
            if create and not self.has(label):
                self._session.generate_key(
                    KeyType.AES, 256, label=label, store=True,
                    template={Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True,
                              Attribute.PRIVATE: True, Attribute.ENCRYPT: True, Attribute.DECRYPT: True,
                              Attribute.WRAP: True, Attribute.UNWRAP: True})
            try:
                handle = self._find(label, ObjectClass.SECRET_KEY)
            except CustodyError:
                raise KekUnavailable(f"{self.token_label}/{label}", "no such key in the token") from None
        return Pkcs11Kek(self, label, handle)

    def _aes_gcm(self, handle: Any, encrypt: bool, data: bytes, nonce: bytes, aad: bytes) -> bytes:
        params = pkcs11.GCMParams(nonce, aad, 128)
        with self._lock:
            if encrypt:
                return bytes(handle.encrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params))
            return bytes(handle.decrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params))

    # ----- HMAC secrets ---------------------------------------------------------------
    def import_hmac_secret(self, secret: bytes, prefix: str) -> str:
        """Import ``secret`` as a non-extractable generic secret key; returns its label."""
        label = f"{prefix}-{secrets.token_hex(4)}"
        if len(secret) < HMAC_MIN_KEY_BYTES:
            # SoftHSM2 refuses CKM_SHA256_HMAC keys under 32 bytes (CKR_KEY_SIZE_RANGE). HMAC
            # zero-pads any key shorter than the 64-byte block, so padding to 32 bytes with
            # zeros yields exactly the same MAC (RFC 2104, step 1).
            secret = secret.ljust(HMAC_MIN_KEY_BYTES, b"\x00")
        with self._lock, _as_custody_error("import an HMAC secret"):
            self._session.create_object({
                Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
                Attribute.VALUE: secret, Attribute.LABEL: label, Attribute.TOKEN: True,
                Attribute.PRIVATE: True, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True, Attribute.VERIFY: False,
                Attribute.ENCRYPT: False, Attribute.DECRYPT: False, Attribute.WRAP: False,
                Attribute.UNWRAP: False, Attribute.DERIVE: False,
            })
        return label

    def hmac_sha256(self, label: str, data: bytes) -> bytes:
        with self._lock:
            key = self._find(label, ObjectClass.SECRET_KEY)
            try:
                return bytes(key.sign(data, mechanism=Mechanism.SHA256_HMAC))
            except PKCS11Error as exc:
                raise CustodyError(f"custody: token refused to sign with {label} ({type(exc).__name__})") from None

    # ----- Ed25519 --------------------------------------------------------------------
    def generate_ed25519(self, prefix: str) -> tuple[str, bytes]:
        """A new non-extractable Ed25519 key pair; returns (label, raw 32-byte public key)."""
        label = f"{prefix}-{secrets.token_hex(4)}"
        with self._lock, _as_custody_error("generate an Ed25519 key pair"):
            public, _private = self._session.generate_keypair(
                KeyType.EC_EDWARDS, store=True, label=label, mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                public_template={Attribute.EC_PARAMS: ED25519_PARAMS, Attribute.TOKEN: True,
                                 Attribute.VERIFY: True},
                private_template={Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                                  Attribute.EXTRACTABLE: False, Attribute.SIGN: True})
            point = bytes(public[Attribute.EC_POINT])
        return label, _raw_ed25519_point(point)

    def ed25519_sign(self, label: str, data: bytes) -> bytes:
        with self._lock:
            key = self._find(label, ObjectClass.PRIVATE_KEY)
            try:
                return bytes(key.sign(data, mechanism=Mechanism.EDDSA))
            except PKCS11Error as exc:
                raise CustodyError(f"custody: token refused to sign with {label} ({type(exc).__name__})") from None

    # ----- destruction ----------------------------------------------------------------
    def destroy(self, label: str) -> int:
        """Delete every object labelled ``label``; returns how many were deleted."""
        with self._lock:
            count = 0
            for obj in list(self._session.get_objects({Attribute.LABEL: label})):
                obj.destroy()
                count += 1
            for key in [k for k in self._objects if k[0] == label]:
                del self._objects[key]
            return count

    def close(self) -> None:
        with self._lock:
            self._objects.clear()
            self._session.close()


class Pkcs11Kek:
    """A KEK inside the token: data keys are wrapped and unwrapped by the token (AES-GCM)."""

    def __init__(self, token: Pkcs11Token, label: str, handle: Any) -> None:
        self._token, self._label, self._handle = token, label, handle

    @property
    def kek_id(self) -> str:
        return f"pkcs11:{self._token.token_label}/{self._label}"

    def wrap(self, data_key: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        try:
            return nonce + self._token._aes_gcm(self._handle, True, data_key, nonce, aad)
        except PKCS11Error as exc:
            raise CustodyError(f"custody: token refused to wrap a data key ({type(exc).__name__})") from None

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        try:
            return self._token._aes_gcm(self._handle, False, wrapped[_NONCE:], wrapped[:_NONCE], aad)
        except PKCS11Error:
            raise SealedCredentialError("data key", f"does not unwrap with KEK {self.kek_id}") from None

    def __repr__(self) -> str:
        return f"Pkcs11Kek({self.kek_id})"


def _raw_ed25519_point(point: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING (04 20 <32 bytes>) on SoftHSM2; some tokens give it raw."""
    if len(point) == 34 and point[:2] == b"\x04\x20":
        return point[2:]
    if len(point) == 32:
        return point
    raise CustodyError(f"custody: unexpected Ed25519 public key encoding ({len(point)} bytes)")


@contextmanager
def _as_custody_error(what: str) -> Iterator[None]:
    try:
        yield
    except PKCS11Error as exc:
        raise CustodyError(f"custody: the token could not {what} ({type(exc).__name__})") from None
