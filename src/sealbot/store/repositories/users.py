"""Users. Emails are compared lower-cased, so ``A@x.io`` and ``a@x.io`` are one account."""

from __future__ import annotations

import builtins
from datetime import datetime

import sqlalchemy as sa

from sealbot.domain.errors import NotFound
from sealbot.store.models import User
from sealbot.store.repositories._base import Repository
from sealbot.store.types import utcnow


def normalize_email(email: str) -> str:
    return email.strip().lower()


class UserRepository(Repository):
    def add(self, email: str, password_hash: str, *, is_admin: bool = False) -> User:
        user = User(email=normalize_email(email), password_hash=password_hash, is_admin=is_admin)
        self.session.add(user)
        self.session.flush()
        return user

    def get(self, user_id: int) -> User:
        user = self.session.get(User, user_id)
        if user is None:
            raise NotFound("user", user_id)
        return user

    def by_email(self, email: str) -> User:
        user = self.session.scalar(sa.select(User).where(User.email == normalize_email(email)))
        if user is None:
            raise NotFound("user", normalize_email(email))
        return user

    def list(self) -> builtins.list[User]:
        return list(self.session.scalars(sa.select(User).order_by(User.id)))

    def count(self) -> int:
        return int(self.session.scalar(sa.select(sa.func.count()).select_from(User)) or 0)

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        self.get(user_id).password_hash = password_hash

    def set_totp_secret(self, user_id: int, sealed: bytes | None) -> None:
        """Store the TOTP secret *sealed* by custody (or None to turn 2FA off)."""
        self.get(user_id).totp_secret_sealed = sealed

    def enable_totp(self, user_id: int, sealed: bytes) -> bool:
        """Store the sealed TOTP secret only if the user has none: one ``UPDATE ... WHERE
        totp_secret_sealed IS NULL``, so of two sessions confirming two setups at once the
        second finds 2FA on and changes nothing (a read first, then a write, let it
        replace the first's secret). False: 2FA was on already."""
        result = self.session.execute(
            sa.update(User)
            .where(User.id == user_id, User.totp_secret_sealed.is_(None))
            .values(totp_secret_sealed=sealed)
            .execution_options(synchronize_session="fetch"))
        return bool(getattr(result, "rowcount", 0) == 1)

    def advance_totp_step(self, user_id: int, step: int) -> bool:
        """Record ``step`` as the user's last accepted TOTP time step, only if it is later
        than the stored one: one ``UPDATE ... WHERE totp_last_step < :step``, so of two
        transactions accepting the same code only one changes the row (PostgreSQL's row lock
        and SQLite's single writer make the second see the first's step once it commits).
        False means the code, or a later one, was accepted already: a replay."""
        result = self.session.execute(
            sa.update(User)
            .where(User.id == user_id, sa.or_(User.totp_last_step.is_(None), User.totp_last_step < step))
            .values(totp_last_step=step)
            .execution_options(synchronize_session="fetch"))
        return bool(getattr(result, "rowcount", 0) == 1)

    def disable(self, user_id: int, at: datetime | None = None) -> None:
        self.get(user_id).disabled_at = at or utcnow()
