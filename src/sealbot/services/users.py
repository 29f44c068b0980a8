"""Users as the API shows them: one's own profile, and the admin's list of users."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sealbot.services.platform import Platform
from sealbot.store.repositories.web import RecoveryCodeRepository


@dataclass(frozen=True, slots=True)
class UserView:
    id: int
    email: str
    is_admin: bool
    totp_enabled: bool
    recovery_codes_left: int
    created_at: datetime
    disabled: bool


def get_user(platform: Platform, user_id: int) -> UserView:
    with platform.uow() as uow:
        user = uow.users.get(user_id)
        return UserView(user.id, user.email, user.is_admin, user.totp_secret_sealed is not None,
                        RecoveryCodeRepository(uow.session).remaining(user.id), user.created_at,
                        user.disabled_at is not None)


def list_users(platform: Platform) -> list[UserView]:
    """Every user (admins only; the caller checks ``require_admin``)."""
    with platform.uow() as uow:
        ids = [u.id for u in uow.users.list()]
    return [get_user(platform, i) for i in ids]
