"""Sealed credentials. Rows hold opaque blobs only (see ``sealbot.custody.envelope``).

Versions count up per account; the *current* credential is the highest version not
destroyed. Destroying overwrites the blobs with empty bytes (not just a flag), so a
destroyed key is gone from the live database even with the KEK at hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import sqlalchemy as sa

from sealbot.domain.errors import NotFound
from sealbot.store.models import Credential, ExchangeAccount
from sealbot.store.repositories._base import Repository
from sealbot.store.types import utcnow

ALGORITHMS = ("hmac-sha256", "ed25519", "rsa")


class CredentialRepository(Repository):
    def add(self, owner_id: int, account_id: int, *, algorithm: str, kek_id: str, wrapped_key: bytes,
            nonce: bytes, ciphertext: bytes, api_key_hint: str = "", version: int | None = None,
            hsm_label: str | None = None, public_key: str | None = None) -> Credential:
        """Store a sealed credential for an account the owner owns.

        ``version`` must be the one the blob's associated data was bound to; when None,
        the next free version is used (only correct if the caller sealed with it —
        use ``next_version`` first).
        """
        if algorithm not in ALGORITHMS:
            raise ValueError(f"credential algorithm must be one of {', '.join(ALGORITHMS)}")
        if len(api_key_hint) > 4:
            raise ValueError("api_key_hint holds at most the key's last 4 characters")
        self._owned(ExchangeAccount, owner_id, account_id, "account")
        row = Credential(owner_id=owner_id, account_id=account_id,
                         version=version if version is not None else self.next_version(owner_id, account_id),
                         algorithm=algorithm, kek_id=kek_id, wrapped_key=wrapped_key, nonce=nonce,
                         ciphertext=ciphertext, api_key_hint=api_key_hint, hsm_label=hsm_label,
                         public_key=public_key)
        self.session.add(row)
        self.session.flush()
        return row

    def next_version(self, owner_id: int, account_id: int) -> int:
        self._owned(ExchangeAccount, owner_id, account_id, "account")
        top = self.session.scalar(sa.select(sa.func.max(Credential.version)).where(Credential.account_id == account_id))
        return int(top or 0) + 1

    def current(self, owner_id: int, account_id: int) -> Credential:
        """The live (highest, not destroyed) credential of the account, or NotFound."""
        row = self.session.scalar(
            sa.select(Credential)
            .where(Credential.owner_id == owner_id, Credential.account_id == account_id,
                   Credential.destroyed_at.is_(None))
            .order_by(Credential.version.desc())
            .limit(1))
        if row is None:
            raise NotFound("credential for account", account_id)
        return row

    def get(self, owner_id: int, credential_id: int) -> Credential:
        return self._owned(Credential, owner_id, credential_id, "credential")

    def list_for_account(self, owner_id: int, account_id: int) -> list[Credential]:
        return list(self.session.scalars(
            sa.select(Credential).where(Credential.owner_id == owner_id, Credential.account_id == account_id)
            .order_by(Credential.version)))

    # -- KEK rotation (system-wide, by design not owner-scoped) --
    def batch_by_kek(self, kek_id: str, after_id: int = 0, limit: int = 500) -> list[Credential]:
        """Up to ``limit`` live credentials wrapped by ``kek_id`` with id > ``after_id``, by id."""
        return list(self.session.scalars(
            sa.select(Credential)
            .where(Credential.kek_id == kek_id, Credential.id > after_id, Credential.destroyed_at.is_(None))
            .order_by(Credential.id)
            .limit(limit)))

    def iter_by_kek(self, kek_id: str, after_id: int = 0, batch_size: int = 500) -> Iterator[list[Credential]]:
        """``batch_by_kek`` batches until none is left (the cursor is the last id of each batch)."""
        while batch := self.batch_by_kek(kek_id, after_id, batch_size):
            yield batch
            after_id = batch[-1].id

    def update_wrapping(self, credential_id: int, kek_id: str, wrapped_key: bytes,
                        *, expected_kek_id: str | None = None) -> None:
        """Replace one credential's data-key wrapping (ciphertext and nonce are untouched).

        With ``expected_kek_id`` the update applies only if the row is still wrapped by
        it, so a rotation re-run never rewraps twice.
        """
        stmt = sa.update(Credential).where(Credential.id == credential_id, Credential.destroyed_at.is_(None))
        if expected_kek_id is not None:
            stmt = stmt.where(Credential.kek_id == expected_kek_id)
        result = self.session.execute(stmt.values(kek_id=kek_id, wrapped_key=wrapped_key)
                                      .execution_options(synchronize_session="fetch"))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise NotFound("credential to rewrap", credential_id)

    def count_by_kek(self) -> dict[str, int]:
        rows = self.session.execute(
            sa.select(Credential.kek_id, sa.func.count()).where(Credential.destroyed_at.is_(None))
            .group_by(Credential.kek_id))
        return {kek: int(n) for kek, n in rows}

    # -- destruction (revocation, panic) --
    def destroy_for_account(self, owner_id: int, account_id: int, *, at: datetime | None = None) -> int:
        return self._destroy((Credential.owner_id == owner_id) & (Credential.account_id == account_id), at)

    def destroy_for_owner(self, owner_id: int, *, at: datetime | None = None) -> int:
        return self._destroy(Credential.owner_id == owner_id, at)

    def destroy_all(self, *, at: datetime | None = None) -> int:
        return self._destroy(sa.true(), at)

    def _destroy(self, where: sa.ColumnElement[bool], at: datetime | None) -> int:
        """Overwrite the blobs with empty bytes and stamp destroyed_at; the number destroyed."""
        result = self.session.execute(
            sa.update(Credential)
            .where(where, Credential.destroyed_at.is_(None))
            .values(ciphertext=b"", wrapped_key=b"", nonce=b"", destroyed_at=at or utcnow())
            .execution_options(synchronize_session="fetch"))
        return int(result.rowcount)  # type: ignore[attr-defined]
