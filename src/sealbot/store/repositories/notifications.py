"""Alert delivery channels of one user. Every read and write takes the owner, so
another user's channel is simply not found; the notifier reads the enabled ones."""

from __future__ import annotations

import builtins
from datetime import datetime

import sqlalchemy as sa

from sealbot.store.models import NotificationChannel
from sealbot.store.repositories._base import Repository
from sealbot.store.types import utcnow

ERROR_MAX = 500  # a delivery error is a short diagnosis, never a whole response body


class NotificationChannelRepository(Repository):
    def add(self, owner_id: int, kind: str, target: str, *, min_level: str = "warning", enabled: bool = True,
            at: datetime | None = None) -> NotificationChannel:
        """A new channel; a webhook gets its sealed key with ``set_sealed_key`` (the
        channel's id is part of what the key is sealed to, so the row comes first)."""
        row = NotificationChannel(owner_id=owner_id, kind=kind, target=target, min_level=min_level, enabled=enabled,
                                  created_at=at or utcnow())
        self.session.add(row)
        self.session.flush()
        return row

    @staticmethod
    def set_sealed_key(row: NotificationChannel, *, version: int, kek_id: str, wrapped_key: bytes, nonce: bytes,
                       ciphertext: bytes) -> None:
        """Store a webhook's signing key as custody sealed it (never the key itself)."""
        row.secret_version, row.secret_kek_id = version, kek_id
        row.secret_wrapped_key, row.secret_nonce, row.secret_ciphertext = wrapped_key, nonce, ciphertext

    def sealed_key(self, owner_id: int, channel_id: int) -> NotificationChannel | None:
        """The webhook channel of this owner whose sealed key the signer opens, or None."""
        return self.session.scalar(sa.select(NotificationChannel).where(
            NotificationChannel.id == channel_id, NotificationChannel.owner_id == owner_id,
            NotificationChannel.kind == "webhook", NotificationChannel.secret_ciphertext.is_not(None)))

    def count_sealed_by_kek(self) -> dict[str, int]:
        """Sealed webhook keys per KEK id (``keys status``, KEK rotation)."""
        stmt = (sa.select(NotificationChannel.secret_kek_id, sa.func.count())
                .where(NotificationChannel.secret_kek_id.is_not(None)).group_by(NotificationChannel.secret_kek_id))
        return {str(kek): int(n) for kek, n in self.session.execute(stmt)}

    def sealed_batch_by_kek(self, kek_id: str, limit: int = 500) -> builtins.list[NotificationChannel]:
        """Up to ``limit`` channels whose key is wrapped by ``kek_id`` (rotation takes them
        batch by batch until none is left)."""
        return list(self.session.scalars(sa.select(NotificationChannel).where(
            NotificationChannel.secret_kek_id == kek_id).order_by(NotificationChannel.id).limit(limit)))

    def get(self, owner_id: int, channel_id: int) -> NotificationChannel:
        return self._owned(NotificationChannel, owner_id, channel_id, "notification channel")

    def list(self, owner_id: int) -> builtins.list[NotificationChannel]:
        return list(self.session.scalars(sa.select(NotificationChannel).where(
            NotificationChannel.owner_id == owner_id).order_by(NotificationChannel.id)))

    def enabled(self, owner_id: int) -> builtins.list[NotificationChannel]:
        """The channels the notifier sends this user's alerts to."""
        return list(self.session.scalars(sa.select(NotificationChannel).where(
            NotificationChannel.owner_id == owner_id, NotificationChannel.enabled.is_(True))
            .order_by(NotificationChannel.id)))

    def update(self, owner_id: int, channel_id: int, *, enabled: bool | None = None,
               min_level: str | None = None) -> NotificationChannel:
        row = self.get(owner_id, channel_id)
        if enabled is not None:
            row.enabled = enabled
        if min_level is not None:
            row.min_level = min_level
        return row

    def delete(self, owner_id: int, channel_id: int) -> None:
        self.session.delete(self.get(owner_id, channel_id))
        self.session.flush()

    def record_delivery(self, owner_id: int, channel_id: int, *, error: str | None,
                        at: datetime | None = None) -> None:
        """Remember the outcome of a delivery: success sets ``last_delivery_at`` and clears
        the error; a failure keeps the last success and notes what went wrong and when.
        A channel deleted meanwhile is not an error (the alert went out, or not, anyway)."""
        row = self.session.scalar(sa.select(NotificationChannel).where(
            NotificationChannel.id == channel_id, NotificationChannel.owner_id == owner_id))
        if row is None:
            return
        when = at or utcnow()
        if error is None:
            row.last_delivery_at, row.last_error, row.last_error_at = when, None, None
        else:
            row.last_error, row.last_error_at = error[:ERROR_MAX], when
