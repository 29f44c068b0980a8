"""Custody's ports (credential source, audit sink, rotation store) over sealbot.store, and
the rotation of the other sealed secrets (webhook keys, TOTP secrets).

Each adapter opens its own short unit of work: the signer runs outside any request's
transaction, and its audit records must commit even when the caller's work fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from sealbot import audit
from sealbot.custody.envelope import Binding, Kek, SealedBlob, rewrap
from sealbot.custody.errors import CredentialNotFound, CustodyError
from sealbot.custody.material import SigningAlgorithm
from sealbot.custody.notify_keys import ChannelBinding, StoredChannelKey
from sealbot.custody.policy import compact_symbol
from sealbot.custody.rotation import RotationRow
from sealbot.custody.signer import StoredCredential
from sealbot.custody.totp import decode_sealed, encode_sealed, totp_binding
from sealbot.domain.errors import NotFound
from sealbot.store.models import Credential, NotificationChannel, User, WebSession
from sealbot.store.repositories.notifications import NotificationChannelRepository
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


def channel_key_of(row: NotificationChannel) -> StoredChannelKey | None:
    """The sealed webhook key a channel row holds, or None (no key, or not a webhook)."""
    if row.secret_kek_id is None or row.secret_wrapped_key is None or row.secret_nonce is None \
            or row.secret_ciphertext is None:
        return None
    return StoredChannelKey(ChannelBinding(row.owner_id, row.id, row.secret_version),
                            SealedBlob(kek_id=row.secret_kek_id, wrapped_key=bytes(row.secret_wrapped_key),
                                       nonce=bytes(row.secret_nonce), ciphertext=bytes(row.secret_ciphertext)))


class StoreChannelKeySource:
    """``notify_keys.ChannelKeySource`` over ``notification_channels`` and ``alerts``."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._factory = session_factory

    def load(self, owner_id: int, channel_id: int) -> StoredChannelKey:
        with UnitOfWork(self._factory) as uow:
            row = NotificationChannelRepository(uow.session).sealed_key(owner_id, channel_id)
            key = None if row is None else channel_key_of(row)
        if key is None:
            raise CustodyError(f"custody: owner {owner_id} has no webhook channel {channel_id} with a signing key")
        return key

    def alert_matches(self, owner_id: int, alert_id: int, level: str, code: str, message: str) -> bool:
        with UnitOfWork(self._factory) as uow:
            try:
                row = uow.alerts.get(owner_id, alert_id)
            except NotFound:
                return False
            return (row.level, row.code, row.message) == (level, code, message)


def rewrap_channel_keys(session_factory: sessionmaker[Session], old: Kek, new: Kek, *, batch_size: int = 500,
                        actor: str = "system") -> int:
    """Move every sealed webhook key from ``old`` to ``new`` (part of ``rotate_kek``); the
    keys are never decrypted. Batches commit one by one and are selected by KEK id, so a
    rerun after an interruption continues where it stopped. Returns how many moved."""
    moved = 0
    while True:
        with UnitOfWork(session_factory) as uow:
            rows = NotificationChannelRepository(uow.session).sealed_batch_by_kek(old.kek_id, batch_size)
            for row in rows:
                key = channel_key_of(row)
                if key is None:
                    raise CustodyError(f"custody: notification channel {row.id}'s sealed key is incomplete")
                blob = rewrap(key.blob, key.binding, old, new)
                row.secret_kek_id, row.secret_wrapped_key = blob.kek_id, blob.wrapped_key
            if rows:
                audit.record(uow.session, actor=actor, action="kek.channel_keys_rewrapped",
                             subject="notification_channels",
                             details={"from": old.kek_id, "to": new.kek_id, "count": len(rows)})
        if not rows:
            return moved
        moved += len(rows)


def _totp_columns() -> tuple[tuple[str, sa.Table, sa.Column[bytes], sa.Column[int]], ...]:
    """Where sealed TOTP secrets live: users (2FA on) and sessions (a setup awaiting its first code)."""
    users, sessions = cast(sa.Table, User.__table__), cast(sa.Table, WebSession.__table__)
    return (("users", users, users.c.totp_secret_sealed, users.c.id),
            ("sessions", sessions, sessions.c.pending_totp_sealed, sessions.c.user_id))


def count_totp_secrets_by_kek(session: Session) -> dict[str, int]:
    """Users' sealed TOTP secrets per KEK id (``keys status``); pending setups are not counted."""
    users = cast(sa.Table, User.__table__)
    counts: dict[str, int] = {}
    for owner_id, sealed in session.execute(sa.select(users.c.id, users.c.totp_secret_sealed).where(
            users.c.totp_secret_sealed.is_not(None))):
        kek_id = decode_sealed(bytes(sealed), int(owner_id)).kek_id
        counts[kek_id] = counts.get(kek_id, 0) + 1
    return counts


def rewrap_totp_secrets(session_factory: sessionmaker[Session], old: Kek, new: Kek, *, batch_size: int = 500,
                        actor: str = "system") -> int:
    """Move every sealed TOTP secret (enabled, and pending on a session) from ``old`` to ``new``
    (part of ``rotate_kek``); the secrets are never decrypted. The KEK id sits inside the
    stored JSON, so rows are walked by id, batch by batch, each batch committed with an
    audit record; rows already under ``new`` are skipped, so a rerun continues. Returns
    how many moved."""
    moved = 0
    for name, table, column, owner in _totp_columns():
        after = 0
        while True:
            with UnitOfWork(session_factory) as uow:
                rows = list(uow.session.execute(
                    sa.select(table.c.id, owner, column).where(column.is_not(None), table.c.id > after)
                    .order_by(table.c.id).limit(batch_size)))
                updates = []
                for row_id, owner_id, sealed in rows:
                    blob = decode_sealed(bytes(sealed), int(owner_id))
                    if blob.kek_id == old.kek_id:
                        fresh = rewrap(blob, totp_binding(int(owner_id)), old, new)
                        updates.append({"row_id": row_id, "old_sealed": sealed, "new_sealed": encode_sealed(fresh)})
                if updates:
                    # guarded by the old value: a secret replaced meanwhile (2FA re-enrolled) is not overwritten
                    stmt = (sa.update(table).where(table.c.id == sa.bindparam("row_id"),
                                                   column == sa.bindparam("old_sealed"))
                            .values({column.name: sa.bindparam("new_sealed")}))
                    uow.session.connection().execute(stmt, updates)
                    audit.record(uow.session, actor=actor, action="kek.totp_secrets_rewrapped", subject=name,
                                 details={"from": old.kek_id, "to": new.kek_id, "count": len(updates)})
            moved += len(updates)
            if len(rows) < batch_size:
                break
            after = int(rows[-1][0])
    return moved
