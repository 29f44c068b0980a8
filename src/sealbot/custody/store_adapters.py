"""Custody's ports (credential source, audit sink, rotation store) over sealbot.store.

Each adapter opens its own short unit of work: the signer runs outside any request's
transaction, and its audit records must commit even when the caller's work fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from sealbot import audit
from sealbot.custody.envelope import Binding, SealedBlob
from sealbot.custody.errors import CredentialNotFound, CustodyError
from sealbot.custody.material import SigningAlgorithm
from sealbot.custody.policy import compact_symbol
from sealbot.custody.rotation import RotationRow
from sealbot.custody.signer import StoredCredential
from sealbot.domain.errors import NotFound
from sealbot.store.models import Credential
from sealbot.store.uow import UnitOfWork


def blob_of(row: Credential) -> SealedBlob:
    return SealedBlob(kek_id=row.kek_id, wrapped_key=bytes(row.wrapped_key), nonce=bytes(row.nonce),
                      ciphertext=bytes(row.ciphertext))


def binding_of(row: Credential) -> Binding:
    return Binding(row.owner_id, row.account_id, row.version)


class StoreCredentialSource:
    """The live credential of an account plus the account's allow-list, from the database."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._factory = session_factory

    def load(self, owner_id: int, account_id: int) -> StoredCredential:
        with UnitOfWork(self._factory) as uow:
            try:
                account = uow.accounts.get(owner_id, account_id)
                row = uow.credentials.current(owner_id, account_id)
            except NotFound:
                raise CredentialNotFound(owner_id, account_id) from None
            if account.status == "revoked":
                raise CredentialNotFound(owner_id, account_id)
            allowed = (None if account.allowed_pairs is None
                       else frozenset(compact_symbol(p) for p in account.allowed_pairs))
            return StoredCredential(row.owner_id, row.account_id, row.version, SigningAlgorithm(row.algorithm),
                                    blob_of(row), row.hsm_label, allowed)


class StoreAuditSink:
    """Each record in its own committed transaction (an audited refusal must survive)."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._factory = session_factory

    def record(self, actor: str, action: str, subject: str, details: Mapping[str, object]) -> None:
        with UnitOfWork(self._factory) as uow:
            audit.record(uow.session, actor=actor, action=action, subject=subject, details=dict(details))


class StoreRotationStore:
    """``custody.rotation.RotationStore`` over the credentials and kek_rotations tables."""

    def __init__(self, session_factory: sessionmaker[Session], actor: str = "system") -> None:
        self._factory, self._actor = session_factory, actor

    def start(self, old_kek_id: str, new_kek_id: str) -> tuple[int, int]:
        with UnitOfWork(self._factory) as uow:
            fresh = uow.kek_rotations.unfinished(old_kek_id, new_kek_id) is None
            row = uow.kek_rotations.start_or_resume(old_kek_id, new_kek_id)
            audit.record(uow.session, actor=self._actor, action="kek.rotation_started" if fresh else
                         "kek.rotation_resumed", subject=f"kek_rotation:{row.id}",
                         details={"from": old_kek_id, "to": new_kek_id, "cursor": row.cursor})
            return row.id, row.cursor

    def counts(self) -> dict[str, int]:
        with UnitOfWork(self._factory) as uow:
            return uow.credentials.count_by_kek()

    def batch(self, kek_id: str, after_id: int, limit: int) -> list[RotationRow]:
        with UnitOfWork(self._factory) as uow:
            return [RotationRow(row.id, binding_of(row), blob_of(row))
                    for row in uow.credentials.batch_by_kek(kek_id, after_id, limit)]

    def save(self, rotation_id: int, updates: Sequence[tuple[int, SealedBlob]], cursor: int) -> None:
        with UnitOfWork(self._factory) as uow:
            rotation = uow.kek_rotations.get(rotation_id)
            self._apply(uow, rotation.from_kek, updates)
            uow.kek_rotations.advance(rotation_id, cursor, len(updates))

    @staticmethod
    def _apply(uow: UnitOfWork, from_kek: str, updates: Sequence[tuple[int, SealedBlob]]) -> None:
        """One executemany UPDATE for the batch (row-by-row ORM updates cost ~0.5 ms each),
        guarded by the old KEK id, then checked: every row of the batch must now carry
        its new wrapping, or the whole batch rolls back."""
        table = cast(sa.Table, Credential.__table__)
        stmt = (sa.update(table)
                .where(table.c.id == sa.bindparam("row_id"), table.c.kek_id == from_kek,
                       table.c.destroyed_at.is_(None))
                .values(kek_id=sa.bindparam("new_kek"), wrapped_key=sa.bindparam("new_wrapped")))
        uow.session.connection().execute(stmt, [
            {"row_id": row_id, "new_kek": blob.kek_id, "new_wrapped": blob.wrapped_key} for row_id, blob in updates])
        ids = [row_id for row_id, _ in updates]
        moved = uow.session.scalar(sa.select(sa.func.count()).select_from(table).where(
            table.c.id.in_(ids), table.c.kek_id.in_({blob.kek_id for _, blob in updates})))
        if moved != len(updates):
            raise CustodyError(f"custody: {len(updates) - int(moved or 0)} credential(s) changed during "
                               "rotation; rerun `sealbot keys rotate-kek` to continue")

    def finish(self, rotation_id: int) -> None:
        with UnitOfWork(self._factory) as uow:
            row = uow.kek_rotations.finish(rotation_id)
            audit.record(uow.session, actor=self._actor, action="kek.rotation_finished",
                         subject=f"kek_rotation:{rotation_id}",
                         details={"from": row.from_kek, "to": row.to_kek, "rewrapped": row.done})
