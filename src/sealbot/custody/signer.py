"""The signer: the one component that holds plaintext secrets or token key handles.

Callers (the ccxt venues) get an opaque ``SigningHandle`` for an account and ask for
signatures over request bytes. The signer

- writes an audit record whenever it hands out a handle (who, which account, why);
- checks the signing policy (``custody.policy``) before every signature and audits
  each refusal;
- decrypts a credential for one operation at a time and wipes the buffer after
  (``file`` mode), or asks the token to sign and never sees the secret (``pkcs11``
  mode).

Handles are cached with a short time-to-live so a destroyed or replaced credential
stops working within ``handle_ttl`` seconds even in another process; ``forget`` drops
them at once (revocation calls it).

``LocalSigner`` runs in-process; ``custody.signer_socket`` serves the same protocol
from its own process over a Unix socket.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sealbot.custody import policy
from sealbot.custody.envelope import Binding, SealedBlob, open_bytes, wipe
from sealbot.custody.errors import CredentialNotFound, CustodyError, SigningRefused
from sealbot.custody.keyring import Keyring
from sealbot.custody.material import Material, SigningAlgorithm
from sealbot.custody.notify_keys import ChannelBinding, ChannelKeySigner, ChannelKeySource
from sealbot.custody.sealing import KeyringSealer
from sealbot.custody.secrets import Secret
from sealbot.custody.totp import TotpKeeper

Encoding = Literal["hex", "base64"]


@dataclass(frozen=True)
class SignRequest:
    """What the caller says it is signing; checked against the payload by the policy."""

    exchange: str
    method: str
    path: str
    params: Mapping[str, str]


@dataclass(frozen=True)
class SigningHandle:
    """An opaque reference to one account's credential inside a signer. Holds no secret."""

    owner_id: int
    account_id: int
    version: int
    algorithm: str  # 'hmac-sha256' | 'ed25519'
    ref: str = field(repr=False)  # random id the signer issued; unknown refs are refused

    def __repr__(self) -> str:
        return f"SigningHandle(account={self.account_id}, {self.algorithm}, ***)"

    __str__ = __repr__


class Signer(Protocol):
    """What venues use. Every method may raise ``CustodyError`` (or ``SigningRefused``)."""

    def handle_for(self, owner_id: int, account_id: int, purpose: str) -> SigningHandle: ...

    def api_key(self, handle: SigningHandle) -> str: ...

    def sign(self, handle: SigningHandle, payload: bytes, request: SignRequest, encoding: Encoding) -> str: ...

    def sign_passphrase(self, handle: SigningHandle) -> str: ...


@dataclass(frozen=True, slots=True)
class StoredCredential:
    """A credential row as the signer needs it: sealed blob, token label, policy inputs."""

    owner_id: int
    account_id: int
    version: int
    algorithm: SigningAlgorithm
    blob: SealedBlob
    hsm_label: str | None = None
    allowed_pairs: frozenset[str] | None = None  # compact symbols; None = no allow-list


class CredentialSource(Protocol):
    """Loads the live credential of (owner, account); raises ``CredentialNotFound``."""

    def load(self, owner_id: int, account_id: int) -> StoredCredential: ...


class AuditSink(Protocol):
    """Writes one audit record (custody.store_adapters has the database one)."""

    def record(self, actor: str, action: str, subject: str, details: Mapping[str, object]) -> None: ...


@dataclass(slots=True)
class _Entry:
    handle: SigningHandle
    credential: StoredCredential
    loaded_at: float
    adopted: bool = False  # handed in by the caller (``adopt``), not loaded from the source


def encode_signature(raw: bytes, encoding: Encoding) -> str:
    if encoding == "hex":
        return raw.hex()
    if encoding == "base64":
        return base64.b64encode(raw).decode()
    raise CustodyError(f"custody: unknown signature encoding {encoding!r}")


class LocalSigner:
    """The in-process signer (default deployment)."""

    def __init__(self, keyring: Keyring, source: CredentialSource, audit: AuditSink, *,
                 handle_ttl: float = 30.0, clock: Callable[[], float] = time.monotonic,
                 actor: str = "engine", channel_keys: ChannelKeySource | None = None) -> None:
        self._keyring, self._source, self._audit = keyring, source, audit
        self._ttl, self._clock, self._actor = handle_ttl, clock, actor
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._notify = ChannelKeySigner(keyring, channel_keys, audit, actor=actor)
        self._totp = TotpKeeper(keyring)

    # ----- two-factor (TOTP) secrets (custody.totp) -------------------------------------
    def seal_totp_secret(self, owner_id: int, secret: Secret) -> bytes:
        """A user's new TOTP secret, sealed under this signer's KEK (stored form)."""
        return self._totp.seal_totp_secret(owner_id, secret)

    def match_totp(self, owner_id: int, sealed: bytes, code: str) -> int | None:
        """The time step of ``code`` when it is one of the user's codes of now, else None
        (see ``TotpKeeper``); never the secret."""
        return self._totp.match_totp(owner_id, sealed, code)

    # ----- notification webhook keys (custody.notify_keys) -----------------------------
    def seal_channel_key(self, binding: ChannelBinding, secret: Secret) -> SealedBlob:
        """A webhook channel's new signing key, sealed under this signer's KEK."""
        return self._notify.seal_channel_key(binding, secret)

    def sign_notification(self, owner_id: int, channel_id: int, timestamp: str, body: bytes, *,
                          actor: str | None = None) -> str:
        """The webhook signature of one alert of the owner's channel (see ``ChannelKeySigner``)."""
        return self._notify.sign_notification(owner_id, channel_id, timestamp, body, actor=actor)

    # ----- handles ------------------------------------------------------------------
    def handle_for(self, owner_id: int, account_id: int, purpose: str, *, actor: str | None = None) -> SigningHandle:
        """A handle for the account's live credential; audited as ``credential.accessed``."""
        credential = self._source.load(owner_id, account_id)
        handle = SigningHandle(owner_id, account_id, credential.version, credential.algorithm.value,
                               secrets.token_urlsafe(18))
        self._audit.record(actor or self._actor, "credential.accessed", f"account:{account_id}",
                           {"owner_id": owner_id, "purpose": purpose, "version": credential.version,
                            "algorithm": credential.algorithm.value, "pid": os.getpid()})
        with self._lock:
            self._entries[handle.ref] = _Entry(handle, credential, self._clock())
        return handle

    def adopt(self, credential: StoredCredential, purpose: str) -> SigningHandle:
        """A handle for a credential the caller hands in rather than one loaded from the
        source: the link-time permission check in socket mode, whose sealed row is not
        committed yet (so the signer process cannot read it).

        The blob is opened once here, so one that does not open with this signer's KEK
        and its own binding fails now. The handle is never refreshed: when its TTL has
        passed it is gone. It is not audited here, and neither are its refusals: the
        caller's open transaction holds the audit chain, so the caller records the
        access (and ``account.link_refused``) in it. ``purpose`` is kept for that record.
        """
        if credential.hsm_label is None:
            with self._material(credential):
                pass
        handle = SigningHandle(credential.owner_id, credential.account_id, credential.version,
                               credential.algorithm.value, secrets.token_urlsafe(18))
        with self._lock:
            self._entries[handle.ref] = _Entry(handle, credential, self._clock(), adopted=True)
        return handle

    def forget(self, owner_id: int | None = None, account_id: int | None = None) -> int:
        """Drop cached handles (all, an owner's, or one account's); returns how many."""
        with self._lock:
            doomed = [ref for ref, e in self._entries.items()
                      if (owner_id is None or e.handle.owner_id == owner_id)
                      and (account_id is None or e.handle.account_id == account_id)]
            for ref in doomed:
                del self._entries[ref]
            return len(doomed)

    def sealer(self) -> KeyringSealer:
        """Sealing with this signer's keyring: what the socket server's seal operations use."""
        return KeyringSealer(self._keyring)

    def record(self, actor: str, action: str, subject: str, details: Mapping[str, object]) -> None:
        """Write an audit record through the signer's sink (the socket server's peer refusals)."""
        self._audit.record(actor, action, subject, details)

    def _credential(self, handle: SigningHandle) -> StoredCredential:
        with self._lock:
            entry = self._entries.get(handle.ref)
        if entry is None or entry.handle != handle:
            raise CustodyError("custody: unknown or revoked signing handle")
        if self._clock() - entry.loaded_at <= self._ttl:
            return entry.credential
        if entry.adopted:
            with self._lock:
                self._entries.pop(handle.ref, None)
            raise CustodyError("custody: unknown or revoked signing handle")
        try:
            fresh = self._source.load(handle.owner_id, handle.account_id)
        except CredentialNotFound:
            self.forget(account_id=handle.account_id)
            raise
        if fresh.version != handle.version:
            self.forget(account_id=handle.account_id)
            raise CustodyError(f"custody: credential of account {handle.account_id} was replaced; "
                               "ask for a new handle")
        with self._lock:
            if handle.ref in self._entries:
                self._entries[handle.ref] = _Entry(handle, fresh, self._clock())
        return fresh

    def _is_adopted(self, handle: SigningHandle) -> bool:
        with self._lock:
            entry = self._entries.get(handle.ref)
        return entry is not None and entry.adopted

    @contextmanager
    def _material(self, credential: StoredCredential) -> Iterator[Material]:
        binding = Binding(credential.owner_id, credential.account_id, credential.version)
        raw = open_bytes(credential.blob, binding, self._keyring.kek)
        try:
            yield Material.decode(raw)
        finally:
            wipe(raw)

    # ----- operations ----------------------------------------------------------------
    def api_key(self, handle: SigningHandle) -> str:
        credential = self._credential(handle)
        with self._material(credential) as material:
            if material.api_key is None:
                raise CustodyError(f"custody: account {handle.account_id} has no API key yet "
                                   "(register the public key with the exchange, then attach its API key)")
            return material.api_key.reveal()

    def sign(self, handle: SigningHandle, payload: bytes, request: SignRequest, encoding: Encoding) -> str:
        credential = self._credential(handle)
        try:
            policy.check(request.method, request.path, request.params, payload, credential.allowed_pairs,
                         credential.algorithm.value)
        except SigningRefused as refusal:
            if self._is_adopted(handle):
                raise  # the caller audits it in its own transaction (see ``adopt``)
            self._audit.record(self._actor, "signer.refused", f"account:{handle.account_id}",
                               {"owner_id": handle.owner_id, "rule": refusal.policy_rule,
                                "reason": refusal.reason, "exchange": request.exchange,
                                "method": request.method, "path": request.path})
            raise
        return encode_signature(self._raw_sign(credential, payload), encoding)

    def sign_passphrase(self, handle: SigningHandle) -> str:
        """KuCoin API v2: base64(HMAC-SHA256(key=secret, msg=passphrase))."""
        credential = self._credential(handle)
        with self._material(credential) as material:
            if material.passphrase is None:
                raise CustodyError(f"custody: account {handle.account_id} has no passphrase")
            passphrase = material.passphrase.reveal().encode()
        if credential.algorithm is not SigningAlgorithm.HMAC_SHA256:
            raise CustodyError("custody: a passphrase signature needs an HMAC credential")
        return encode_signature(self._hmac(credential, passphrase), "base64")

    def _raw_sign(self, credential: StoredCredential, payload: bytes) -> bytes:
        if credential.algorithm is SigningAlgorithm.HMAC_SHA256:
            return self._hmac(credential, payload)
        return self._ed25519(credential, payload)

    def _hmac(self, credential: StoredCredential, data: bytes) -> bytes:
        if credential.hsm_label is not None:
            return self._token().hmac_sha256(credential.hsm_label, data)
        with self._material(credential) as material:
            if material.secret is None:
                raise CustodyError(f"custody: credential of account {credential.account_id} has no HMAC secret")
            return hmac.new(material.secret.reveal().encode(), data, hashlib.sha256).digest()

    def _ed25519(self, credential: StoredCredential, data: bytes) -> bytes:
        if credential.hsm_label is not None:
            return self._token().ed25519_sign(credential.hsm_label, data)
        with self._material(credential) as material:
            if material.ed25519_seed is None:
                raise CustodyError(f"custody: credential of account {credential.account_id} has no Ed25519 key")
            key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(material.ed25519_seed.reveal()))
        return key.sign(data)

    def _token(self) -> _TokenLike:
        if self._keyring.token is None:
            raise CustodyError("custody: this credential lives in a PKCS#11 token, but the signer has none "
                               "(configure kek_provider = pkcs11)")
        return self._keyring.token

    def __repr__(self) -> str:
        return f"LocalSigner({self._keyring!r})"


class _TokenLike(Protocol):
    def hmac_sha256(self, label: str, data: bytes) -> bytes: ...

    def ed25519_sign(self, label: str, data: bytes) -> bytes: ...
