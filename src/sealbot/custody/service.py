"""``Custody``: sealing, generating, destroying and rotating credentials in the database.

The facade services call. Every method works inside the caller's ``UnitOfWork`` (so
the credential row and its audit record commit or roll back together), except
``rotate_kek``, which commits batch by batch so that it can resume.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from sealbot import audit
from sealbot.custody.envelope import Binding, Kek
from sealbot.custody.errors import CredentialNotFound, CustodyError
from sealbot.custody.keyring import Keyring
from sealbot.custody.material import SigningAlgorithm
from sealbot.custody.rotation import RotationReport, rotate
from sealbot.custody.sealing import KeyringSealer, SealedCredential, Sealer, open_material
from sealbot.custody.secrets import ApiCredentials, Secret
from sealbot.custody.store_adapters import (
    StoreRotationStore,
    binding_of,
    blob_of,
    count_totp_secrets_by_kek,
    rewrap_channel_keys,
    rewrap_totp_secrets,
)
from sealbot.domain.errors import NotFound
from sealbot.store.models import Credential
from sealbot.store.repositories.notifications import NotificationChannelRepository
from sealbot.store.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class CredentialView:
    """What may be shown about a stored credential: never a secret."""

    account_id: int
    version: int
    algorithm: str
    api_key_hint: str
    kek_id: str
    in_token: bool
    public_key_pem: str | None = None


@dataclass(frozen=True, slots=True)
class CustodyStatus:
    provider: str
    kek_id: str
    credentials_by_kek: dict[str, int]
    not_on_current_kek: int  # > 0: a rotation is needed or unfinished (or the wrong KEK is configured)
    unfinished_rotation: tuple[str, str, int] | None  # (from, to, done)
    kek_attributes: dict[str, bool]  # pkcs11: extractable / sensitive / never_extractable
    orphaned_token_objects: tuple[str, ...]
    webhook_keys_by_kek: dict[str, int] = field(default_factory=dict)  # sealed notification webhook keys
    totp_secrets_by_kek: dict[str, int] = field(default_factory=dict)  # users' sealed two-factor secrets

    def lines(self) -> list[str]:
        out = [f"provider {self.provider}, KEK {self.kek_id}"]
        out += [f"  {n} credential(s) under {kek}{'' if kek == self.kek_id else '  <- not the configured KEK'}"
                for kek, n in sorted(self.credentials_by_kek.items())]
        out += [f"  {n} webhook key(s) under {kek}{'' if kek == self.kek_id else '  <- not the configured KEK'}"
                for kek, n in sorted(self.webhook_keys_by_kek.items())]
        out += [f"  {n} two-factor secret(s) under {kek}{'' if kek == self.kek_id else '  <- not the configured KEK'}"
                for kek, n in sorted(self.totp_secrets_by_kek.items())]
        if self.unfinished_rotation:
            src, dst, done = self.unfinished_rotation
            out.append(f"  unfinished rotation {src} -> {dst} ({done} done): rerun `sealbot keys rotate-kek`")
        if self.kek_attributes:
            out.append("  KEK in token: " + ", ".join(f"{k}={v}" for k, v in self.kek_attributes.items()))
        if self.orphaned_token_objects:
            out.append(f"  {len(self.orphaned_token_objects)} token object(s) without a credential row: "
                       + ", ".join(self.orphaned_token_objects))
        return out


class _Forgetful(Protocol):
    """Anything that caches signing handles (LocalSigner, SocketSigner)."""

    def forget(self, owner_id: int | None = None, account_id: int | None = None) -> int: ...


class Custody:
    """Seal, generate, destroy credentials; tell a signer to forget them.

    Sealing goes through a ``Sealer``: by default one over ``keyring`` in this process;
    in socket mode the ``sealbot signer`` process's (``Custody(None, signer, sealer=signer)``),
    so this process seals new keys with no KEK of its own.
    """

    def __init__(self, keyring: Keyring | None, signer: _Forgetful | None = None, *,
                 sealer: Sealer | None = None) -> None:
        """``keyring`` may be None in a process without KEK access (``signer = "socket"``):
        such a ``Custody`` seals through ``sealer`` (if given) and destroys credential
        rows (revocation), but cannot open a credential or report on the KEK."""
        self._keyring = keyring
        self._signer = signer
        self._sealer: Sealer | None = sealer if sealer is not None else (
            KeyringSealer(keyring) if keyring is not None else None)

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            raise CustodyError("custody: this process has no KEK (the signer runs elsewhere); "
                               "opening happens in the `sealbot signer` process")
        return self._keyring

    @property
    def sealer(self) -> Sealer:
        if self._sealer is None:
            raise CustodyError("custody: this process has no KEK and no signer to seal through; "
                               "sealing happens in the `sealbot signer` process")
        return self._sealer

    # ----- sealing --------------------------------------------------------------------
    def seal_credentials(self, uow: UnitOfWork, owner_id: int, account_id: int, creds: ApiCredentials,
                         *, actor: str | None = None) -> CredentialView:
        """Seal an API key + secret (+ passphrase) as the account's new credential version.

        Earlier versions are destroyed in the same transaction: an account has one live key.
        """
        binding = Binding(owner_id, account_id, uow.credentials.next_version(owner_id, account_id))
        sealed = self.sealer.seal_credentials(binding, creds)
        with self._undo_token_object(sealed):
            self._destroy_rows(uow, owner_id, account_id)
            return self._store(uow, sealed, actor or f"user:{owner_id}", "credential.sealed")

    def generate_ed25519(self, uow: UnitOfWork, owner_id: int, account_id: int,
                         *, actor: str | None = None) -> str:
        """A new Ed25519 key pair for the account; returns the public key PEM to register
        with the exchange. The private key never leaves custody (or the token)."""
        binding = Binding(owner_id, account_id, uow.credentials.next_version(owner_id, account_id))
        sealed = self.sealer.generate_ed25519(binding)
        with self._undo_token_object(sealed):
            self._destroy_rows(uow, owner_id, account_id)
            view = self._store(uow, sealed, actor or f"user:{owner_id}", "credential.generated")
        assert view.public_key_pem is not None
        return view.public_key_pem

    def attach_api_key(self, uow: UnitOfWork, owner_id: int, account_id: int, api_key: str | Secret,
                       *, actor: str | None = None) -> CredentialView:
        """Record the API key the exchange issued for a generated Ed25519 public key."""
        row = self._current(uow, owner_id, account_id)
        current = SealedCredential(binding_of(row), SigningAlgorithm(row.algorithm), blob_of(row),
                                   row.api_key_hint, row.hsm_label, row.public_key)
        new_binding = Binding(owner_id, account_id, uow.credentials.next_version(owner_id, account_id))
        sealed = self.sealer.attach_api_key(
            current, api_key if isinstance(api_key, Secret) else Secret(api_key), new_binding)
        # the old row goes, but not its token object: the new version uses the same key pair
        uow.credentials.destroy_for_account(owner_id, account_id)
        return self._store(uow, sealed, actor or f"user:{owner_id}", "credential.api_key_attached")

    @contextmanager
    def _undo_token_object(self, sealed: SealedCredential) -> Iterator[None]:
        """Delete the token object just created if storing its row fails (no orphan secrets).
        A failure of the caller's final commit can still orphan it: ``keys status`` lists those."""
        try:
            yield
        except BaseException:
            if sealed.hsm_label is not None:
                self.sealer.discard_token_object(sealed.hsm_label)
            raise

    def _store(self, uow: UnitOfWork, sealed: SealedCredential, actor: str, action: str) -> CredentialView:
        b, blob = sealed.binding, sealed.blob
        uow.credentials.add(b.owner_id, b.account_id, algorithm=sealed.algorithm.value, kek_id=blob.kek_id,
                            wrapped_key=blob.wrapped_key, nonce=blob.nonce, ciphertext=blob.ciphertext,
                            api_key_hint=sealed.api_key_hint, version=b.version, hsm_label=sealed.hsm_label,
                            public_key=sealed.public_key_pem)
        audit.record(uow.session, actor=actor, action=action, subject=f"account:{b.account_id}",
                     details={"owner_id": b.owner_id, "version": b.version, "algorithm": sealed.algorithm.value,
                              "kek_id": blob.kek_id, "api_key_hint": sealed.api_key_hint,
                              "in_token": sealed.hsm_label is not None})
        if self._signer is not None:
            self._signer.forget(account_id=b.account_id)
        return CredentialView(b.account_id, b.version, sealed.algorithm.value, sealed.api_key_hint, blob.kek_id,
                              sealed.hsm_label is not None, sealed.public_key_pem)

    # ----- reading (no plaintext leaves) ------------------------------------------------
    def view(self, uow: UnitOfWork, owner_id: int, account_id: int) -> CredentialView:
        row = self._current(uow, owner_id, account_id)
        return CredentialView(account_id, row.version, row.algorithm, row.api_key_hint, row.kek_id,
                              row.hsm_label is not None, row.public_key)

    def check_opens(self, uow: UnitOfWork, owner_id: int, account_id: int) -> bool:
        """True when the live credential opens with this keyring (``keys status``);
        raises ``SealedCredentialError`` naming the reason when it does not."""
        row = self._current(uow, owner_id, account_id)
        open_material(blob_of(row), binding_of(row), self.keyring)
        return True

    def _discard(self, label: str) -> None:
        """Delete a destroyed row's token object. If the token (or the signer holding it)
        cannot be reached the object stays until ``purge_orphans`` runs where the token is;
        it is unusable meanwhile: no row names it, so the signer never finds it."""
        if self._sealer is None:
            return
        with suppress(CustodyError):  # revocation must finish; ``keys status`` lists the orphan
            self._sealer.discard_token_object(label)

    def _current(self, uow: UnitOfWork, owner_id: int, account_id: int) -> Credential:
        try:
            return uow.credentials.current(owner_id, account_id)
        except NotFound:
            raise CredentialNotFound(owner_id, account_id) from None

    def status(self, uow: UnitOfWork) -> CustodyStatus:
        """What ``sealbot keys status`` shows: the KEK, how many credentials each KEK
        wraps, unfinished rotations, and (pkcs11) the KEK's attributes and orphaned token
        objects. Nothing here is secret."""
        counts = uow.credentials.count_by_kek()
        rotation = uow.kek_rotations.unfinished()
        kek_attributes: dict[str, bool] = {}
        orphans: tuple[str, ...] = ()
        token = self.keyring.token
        if token is not None:
            kek_attributes = token.key_attributes(self.keyring.kek.kek_id.rsplit("/", 1)[-1])
            live = set(uow.session.scalars(sa.select(Credential.hsm_label).where(
                Credential.destroyed_at.is_(None), Credential.hsm_label.is_not(None))))
            orphans = tuple(sorted(token.labels() - {label for label in live if label}))
        return CustodyStatus(
            provider=self.keyring.provider, kek_id=self.keyring.kek.kek_id, credentials_by_kek=counts,
            not_on_current_kek=sum(n for kek, n in counts.items() if kek != self.keyring.kek.kek_id),
            unfinished_rotation=None if rotation is None else (rotation.from_kek, rotation.to_kek, rotation.done),
            kek_attributes=kek_attributes, orphaned_token_objects=orphans,
            webhook_keys_by_kek=NotificationChannelRepository(uow.session).count_sealed_by_kek(),
            totp_secrets_by_kek=count_totp_secrets_by_kek(uow.session))

    def purge_orphans(self, uow: UnitOfWork) -> tuple[str, ...]:
        """Delete sealbot's token objects that no live credential row refers to (left by
        a revocation in a process without the token, or a failed commit); returns them."""
        token = self.keyring.token
        if token is None:
            return ()
        orphans = self.status(uow).orphaned_token_objects
        for label in orphans:
            token.destroy(label)
        return orphans

    # ----- destruction ------------------------------------------------------------------
    def destroy(self, uow: UnitOfWork, owner_id: int | None = None, account_id: int | None = None) -> dict[int, int]:
        """Destroy live credentials of one account, one owner, or (both None) everyone.

        Blobs are overwritten with empty bytes and token objects deleted; returns
        {account id: credentials destroyed}. The caller writes the audit record
        (revocation writes one per account).
        """
        if account_id is not None and owner_id is None:
            raise CustodyError("custody: destroying an account's credentials needs its owner")
        return self._destroy_rows(uow, owner_id, account_id)

    def _destroy_rows(self, uow: UnitOfWork, owner_id: int | None, account_id: int | None) -> dict[int, int]:
        stmt = sa.select(Credential.account_id, Credential.hsm_label).where(Credential.destroyed_at.is_(None))
        if owner_id is not None:
            stmt = stmt.where(Credential.owner_id == owner_id)
        if account_id is not None:
            stmt = stmt.where(Credential.account_id == account_id)
        rows = list(uow.session.execute(stmt))
        counts: dict[int, int] = {}
        for acc, _label in rows:
            counts[int(acc)] = counts.get(int(acc), 0) + 1
        if owner_id is None:
            uow.credentials.destroy_all()
        elif account_id is None:
            uow.credentials.destroy_for_owner(owner_id)
        else:
            uow.credentials.destroy_for_account(owner_id, account_id)
        for label in sorted({label for _acc, label in rows if label}):
            self._discard(label)
        if self._signer is not None:
            if owner_id is None:
                self._signer.forget()
            else:
                self._signer.forget(owner_id=owner_id, account_id=account_id)
        return counts


def rotate_kek(session_factory: sessionmaker[Session], old: Kek | Keyring, new: Kek | Keyring,
               progress: Callable[[int, int], None] | None = None, *, batch_size: int = 500,
               actor: str = "system") -> RotationReport:
    """Rewrap every live credential's data key from ``old`` to ``new`` (``sealbot keys rotate-kek``).

    Resumable: rerun with the same KEKs after an interruption and it continues after
    the last committed batch. Notification channels' sealed webhook keys and users' sealed
    TOTP secrets (enabled, and pending setups) are rewrapped after the credentials, also
    batch by batch (``RotationReport.channel_keys``, ``RotationReport.totp_secrets``).
    ``progress(done, total)`` is called after every credential batch.
    Secrets are never decrypted; only 32-byte data keys pass through memory.
    """
    old_kek = old.kek if isinstance(old, Keyring) else old
    new_kek = new.kek if isinstance(new, Keyring) else new
    if old_kek.kek_id == new_kek.kek_id:
        raise CustodyError(f"custody: the new KEK is the old one ({old_kek.kek_id})")
    report = rotate(StoreRotationStore(session_factory, actor), old_kek, new_kek, progress, batch_size=batch_size)
    # notification webhook keys are sealed under the same KEK (custody.notify_keys)
    moved = rewrap_channel_keys(session_factory, old_kek, new_kek, batch_size=batch_size, actor=actor)
    # two-factor secrets too (custody.totp), or every 2FA user would be locked out
    totp = rewrap_totp_secrets(session_factory, old_kek, new_kek, batch_size=batch_size, actor=actor)
    return replace(report, channel_keys=moved, totp_secrets=totp)
