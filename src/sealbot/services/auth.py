"""Authentication use cases: register, log in (throttled, locked out), sessions, TOTP
two-factor with recovery codes, scoped personal API tokens.

What is stored: argon2id password hashes; the sha256 of session tokens, API tokens and
recovery codes (all high-entropy random values, so a fast hash is enough); the TOTP
secret sealed by custody (AES-256-GCM under a data key wrapped by the KEK, bound to
the user). The secret is generated here and shown once, then sealed and every code
checked by the signer (``custody.totp``), in this process or, with ``signer = "socket"``,
in the ``sealbot signer`` process: this module never opens it. Nothing here ever logs or
raises with a secret in it.

A second-factor code is good once (RFC 6238 section 5.2): the signer says which time
step a code belongs to, and ``_accept_totp`` accepts it only by raising the user's stored
last step to it in the same transaction (a compare-and-set in the database, so it holds
across web workers, processes and restarts, and of two concurrent requests with one code
only one passes). A recovery code is marked used the same way. Every path that takes a
code goes through ``_accept_totp`` or ``_second_factor_ok``.

Wrong codes are limited by one mechanism, in the database: the login lockout
(``MAX_FAILURES`` per ``FAILURE_WINDOW`` per e-mail, then ``LOCKOUT``). Wrong passwords,
wrong or replayed codes at login, and wrong codes to turn 2FA off or to make new recovery
codes all count, and a locked account is refused on each of those paths. Confirming a new
setup is not counted: its secret was just shown to that same session. Every e-mail tried
gets a lockout row, unknown ones too (same work and same answers as for a real account,
so neither the time nor a lockout tells which e-mails exist); rows that no longer count
are deleted as failures come (``LoginThrottleRepository.prune``), so the table holds only
the e-mails tried within one window and those locked.

Per client address there are two more limits, kept in the database like the lockout (in
``ip_throttle``), so they hold across web workers, processes and restarts, as the
lockout does, and an attacker gains nothing by reaching another worker: failed logins
(``IP_MAX_FAILURES`` per ``IP_WINDOW``, whatever the e-mail: one password sprayed over
many e-mails, each costing an argon2 hash) and sign-ups (``IP_MAX_SIGNUPS`` per
``SIGNUP_WINDOW``). Past either, the address is refused (``TooManyAttempts``, 429 with
Retry-After) before any password is hashed, until its window ends. The address is the
one the web tier names (``web.deps.client_ip``: the socket's peer, or what a proxy that
uvicorn trusts, ``FORWARDED_ALLOW_IPS``, says); callers that name none (the CLI, the
demo) are not limited per address.

Sign-up follows the ``registration`` setting: ``closed`` refuses it (``Refused``, rule
``registration``) except for the first user of an empty instance, its admin.

The web tier calls these and maps the errors: ``NotAuthenticated`` 401,
``LockedOut`` 429, ``Refused`` 403, ``InvalidConfig`` 422.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from sealbot import audit
from sealbot.config import Registration, Settings
from sealbot.custody.errors import CustodyError
from sealbot.custody.secrets import Secret
from sealbot.custody.totp import TotpSigner
from sealbot.domain.errors import InvalidConfig, NotFound, Refused, SealbotError
from sealbot.services.accounts import MAX_EMAIL, register_user
from sealbot.services.platform import Platform, open_platform
from sealbot.store import UnitOfWork
from sealbot.store.repositories.web import (
    ApiTokenRepository,
    IpThrottleRepository,
    LoginThrottleRepository,
    RecoveryCodeRepository,
    SessionRepository,
)

SCOPES: Final = ("accounts:read", "accounts:write", "bots:read", "bots:write", "deals:read", "deals:write",
                 "smart_trades:read", "smart_trades:write", "alerts:read", "alerts:write", "audit:read",
                 "portfolio:read", "portfolio:write", "admin")
ADMIN_SCOPE: Final = "admin"  # an admin's token needs it for instance-wide actions (admins only)
SESSION_TTL: Final = timedelta(hours=12)
MAX_FAILURES: Final = 5  # failed logins within FAILURE_WINDOW before the e-mail is locked
FAILURE_WINDOW: Final = timedelta(minutes=15)
LOCKOUT: Final = timedelta(minutes=15)
IP_MAX_FAILURES: Final = 20  # failed logins from one address within IP_WINDOW, whatever the e-mails
IP_WINDOW: Final = timedelta(minutes=15)
IP_MAX_SIGNUPS: Final = 10  # sign-ups from one address within SIGNUP_WINDOW
SIGNUP_WINDOW: Final = timedelta(hours=1)
LOGIN_SCOPE: Final = "login"  # ip_throttle.scope of failed logins
SIGNUP_SCOPE: Final = "register"  # ip_throttle.scope of sign-ups
MAX_IP: Final = 64  # ip_throttle.ip's length
RECOVERY_CODES: Final = 10
TOKEN_PREFIX: Final = "sbt_"

_hasher = PasswordHasher()
_DUMMY_HASH: Final = _hasher.hash("sealbot timing equaliser")


class NotAuthenticated(SealbotError):
    """No valid session or token, wrong password or wrong code. Deliberately vague."""

    def __init__(self, reason: str = "not authenticated") -> None:
        super().__init__(reason)
        self.reason = reason


class TotpRequired(NotAuthenticated):
    """The password was right; the account has 2FA and no (or a wrong) code came with it."""

    def __init__(self) -> None:
        super().__init__("totp_required")


class LockedOut(SealbotError):
    """Too many failed logins for this e-mail: refused until ``retry_after`` seconds pass."""

    def __init__(self, retry_after: int, reason: str = "too many failed logins") -> None:
        super().__init__(f"{reason}; retry in {retry_after} s")
        self.retry_after, self.reason = retry_after, reason


class TooManyAttempts(LockedOut):
    """Too many failed logins, or sign-ups, from this client address (whatever the
    e-mails): refused until ``retry_after`` seconds pass. A ``LockedOut``, so every
    handler of the lockout (429 with Retry-After) handles it too."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user through a session cookie or a personal API token."""

    user_id: int
    email: str
    is_admin: bool
    via: str  # "session" | "token"
    scopes: frozenset[str]
    totp_enabled: bool
    mfa: bool  # this session passed 2FA (tokens: made by a session that had, and 2FA is still on)
    session_id: int | None = None
    token_id: int | None = None

    @property
    def actor(self) -> str:
        return f"user:{self.user_id}"


@dataclass(frozen=True, slots=True)
class IssuedSession:
    token: str  # goes into the cookie, never stored
    csrf: str
    principal: Principal


@dataclass(frozen=True, slots=True)
class IssuedToken:
    id: int
    name: str
    token: str  # shown once
    prefix: str
    scopes: tuple[str, ...]
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class SessionView:
    id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool


@dataclass(frozen=True, slots=True)
class TokenView:
    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class TotpSetup:
    secret: str  # the user's own second factor, shown once to put into an authenticator app
    uri: str


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def csrf_for(session_token: str) -> str:
    """The CSRF token of a session: derived from the (secret) session token, so it needs
    no storage and cannot be guessed without the cookie."""
    return hmac.new(session_token.encode(), b"sealbot csrf v1", hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(csrf_for(session_token), given)


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


# --- registration and login -------------------------------------------------------


def registration_open(platform: Platform) -> bool:
    """Whether anyone may sign up now: ``registration = "open"``, or an instance without
    users (its first user, who becomes admin, can always register)."""
    if platform.settings.registration is Registration.OPEN:
        return True
    with platform.uow() as uow:
        return uow.users.count() == 0


def register(platform: Platform, email: str, password: str, *, ip: str | None = None,
             now: datetime | None = None) -> int:
    """A new user; the instance's first user becomes its admin. Refused (rule
    ``registration``) when sign-up is closed and the instance has users, before anything
    about ``email`` is looked at; then, from ``ip``, at most ``IP_MAX_SIGNUPS`` attempts
    per ``SIGNUP_WINDOW`` (``TooManyAttempts``), each counted whatever its outcome: a
    refused one ("already registered") tells whether an e-mail has an account."""
    at = _now(now)
    with platform.uow() as uow:
        first = uow.users.count() == 0
        if not first and platform.settings.registration is Registration.CLOSED:
            raise Refused("registration", "sign-up is closed on this instance: ask its operator for an account")
        if ip is not None:
            _refuse_if_ip_limited(uow, SIGNUP_SCOPE, ip, at, IP_MAX_SIGNUPS, SIGNUP_WINDOW, "too many sign-ups")
            _count_ip(uow, SIGNUP_SCOPE, ip, at, IP_MAX_SIGNUPS, SIGNUP_WINDOW)
            uow.commit()
        try:
            uow.users.by_email(email)
        except NotFound:
            pass
        else:
            raise InvalidConfig("email", "is already registered")
    return register_user(platform, email, password, is_admin=first)


def add_user(settings: Settings, email: str, password: str, *, admin: bool = False) -> tuple[int, bool]:
    """A user made by the instance's operator (``sealbot users add``), whatever the
    ``registration`` setting: how users join an instance whose sign-up is closed. Admin
    with ``admin``, and always as the instance's first user. Returns (id, is admin)."""
    platform = open_platform(settings)
    with platform.uow() as uow:
        try:
            uow.users.by_email(email.strip().lower())
        except NotFound:
            is_admin = admin or uow.users.count() == 0
        else:
            raise InvalidConfig("email", "is already registered")
    return register_user(platform, email, password, is_admin=is_admin), is_admin


def login(platform: Platform, email: str, password: str, *, totp_code: str | None = None, ip: str | None = None,
          user_agent: str | None = None, now: datetime | None = None) -> IssuedSession:
    """Check the password (argon2id) and, when enabled, the TOTP or a recovery code; open
    a session. ``MAX_FAILURES`` failures within ``FAILURE_WINDOW`` lock the e-mail for
    ``LOCKOUT``; the lockout and every failure are audited. From ``ip``, more than
    ``IP_MAX_FAILURES`` failures within ``IP_WINDOW`` are refused (``TooManyAttempts``)
    before the password is checked."""
    at = _now(now)
    key = email.strip().lower()
    with platform.uow() as uow:
        if ip is not None:
            _refuse_if_ip_limited(uow, LOGIN_SCOPE, ip, at, IP_MAX_FAILURES, IP_WINDOW,
                                  "too many failed logins from your address")
        if len(key) > MAX_EMAIL:  # no user has it, and the lockout's row could not hold it
            _verify_password(_DUMMY_HASH, password)
            if ip is not None:
                _count_ip(uow, LOGIN_SCOPE, ip, at, IP_MAX_FAILURES, IP_WINDOW)
                uow.commit()
            raise NotAuthenticated("wrong e-mail or password")
        _refuse_if_locked(uow, key, at, actor="anonymous", action="auth.login_locked", ip=ip)
        try:
            user = uow.users.by_email(key)
        except NotFound:
            _verify_password(_DUMMY_HASH, password)  # same work as for a real user
            _fail(uow, key, at, ip, "unknown_email")
            raise NotAuthenticated("wrong e-mail or password") from None
        if not _verify_password(user.password_hash, password) or user.disabled_at is not None:
            _fail(uow, key, at, ip, "password")
            raise NotAuthenticated("wrong e-mail or password")
        totp_on = user.totp_secret_sealed is not None
        if totp_on:
            if not totp_code:
                raise TotpRequired()
            if not _second_factor_ok(platform, uow, user.id, user.totp_secret_sealed, totp_code, at):
                _fail(uow, key, at, ip, "totp")  # a wrong code and a replayed one alike
                raise TotpRequired()
        LoginThrottleRepository(uow.session).clear(key)
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
        token = secrets.token_urlsafe(32)
        row = SessionRepository(uow.session).add(user.id, sha256_hex(token), at + SESSION_TTL, mfa_verified=totp_on,
                                                  ip=ip, user_agent=user_agent)
        audit.record(uow.session, actor=f"user:{user.id}", action="auth.login", subject=f"user:{user.id}",
                     details={"ip": ip, "session": row.id, "mfa": totp_on})
        principal = Principal(user.id, user.email, user.is_admin, "session", frozenset(SCOPES), totp_on, totp_on,
                              session_id=row.id)
        return IssuedSession(token, csrf_for(token), principal)


def _subject(uow: UnitOfWork, email: str) -> str:
    try:
        return f"user:{uow.users.by_email(email).id}"
    except NotFound:
        return "user:unknown"


def _verify_password(stored: str, given: str) -> bool:
    try:
        return _hasher.verify(stored, given)
    except (VerificationError, InvalidHashError):
        return False


def _refuse_if_locked(uow: UnitOfWork, email: str, at: datetime, *, actor: str, action: str,
                      ip: str | None = None) -> None:
    """``LockedOut`` (audited, committed although the caller raises) while the e-mail is
    locked out; every path that takes a password or a second-factor code asks first."""
    throttle = LoginThrottleRepository(uow.session).get(email)
    if throttle is not None and throttle.locked_until is not None and throttle.locked_until > at:
        audit.record(uow.session, actor=actor, action=action, subject=_subject(uow, email), details={"ip": ip})
        uow.commit()
        raise LockedOut(int((throttle.locked_until - at).total_seconds()) + 1)


def _refuse_if_ip_limited(uow: UnitOfWork, scope: str, ip: str, at: datetime, limit: int, window: timedelta,
                          reason: str) -> None:
    """``TooManyAttempts`` while ``ip`` has used up its ``limit`` in its current window.
    Not audited (the limit being reached was, once): a refused flood adds no rows."""
    row = IpThrottleRepository(uow.session).get(scope, ip[:MAX_IP])
    if row is not None and row.attempts >= limit and row.window_start > at - window:
        raise TooManyAttempts(int((row.window_start + window - at).total_seconds()) + 1, reason)


def _count_ip(uow: UnitOfWork, scope: str, ip: str, at: datetime, limit: int, window: timedelta) -> None:
    """Count one attempt of ``ip``; audit the one that reaches the limit. The caller commits."""
    row = IpThrottleRepository(uow.session).attempt(scope, ip[:MAX_IP], at, window=window)
    if row.attempts == limit:
        audit.record(uow.session, actor="system", action="auth.ip_limited", subject=f"ip:{ip[:MAX_IP]}",
                     details={"scope": scope, "attempts": limit, "minutes": int(window.total_seconds() // 60)})


def _fail(uow: UnitOfWork, email: str, at: datetime, ip: str | None, why: str, *, actor: str = "anonymous",
          action: str = "auth.login_failed") -> None:
    """Count a failure (of the e-mail, and of ``ip`` when given: the login's callers),
    lock the e-mail at the limit, audit both; committed even though the caller raises
    (the failure must stick). Lockout rows that no longer count are pruned here."""
    throttle = LoginThrottleRepository(uow.session)
    throttle.prune(at, window_start=at - FAILURE_WINDOW, keep=email)
    if ip is not None:
        _count_ip(uow, LOGIN_SCOPE, ip, at, IP_MAX_FAILURES, IP_WINDOW)
    row = throttle.failed(email, at, window_start=at - FAILURE_WINDOW)
    subject = _subject(uow, email)
    audit.record(uow.session, actor=actor, action=action, subject=subject,
                 details={"ip": ip, "why": why, "failures": row.failures})
    if row.failures >= MAX_FAILURES:
        row.locked_until = at + LOCKOUT
        audit.record(uow.session, actor="system", action="auth.locked", subject=subject,
                     details={"ip": ip, "minutes": int(LOCKOUT.total_seconds() // 60)})
    uow.commit()


MIN_PASSWORD: Final = 10


def change_password(platform: Platform, principal: Principal, current: str, new: str,
                    now: datetime | None = None) -> int:
    """Set a new password (argon2id) and end every other session of the user, so whoever
    learnt the old password and logged in with it is out; returns how many sessions
    ended. Needs the current password, checked and throttled as a login is (a wrong one
    counts towards the lockout, a locked account is refused), so a stolen cookie can
    neither change it nor guess it. From a session only. API tokens stay: the user sees
    and revokes them on the same page. With 2FA on, only a session that passed it: one
    opened with the password alone before 2FA was turned on must not lock the user out."""
    require_verified_session(principal)
    if len(new) < MIN_PASSWORD:
        raise InvalidConfig("new_password", f"must be at least {MIN_PASSWORD} characters")
    at = _now(now)
    with platform.uow() as uow:
        user = uow.users.get(principal.user_id)
        _refuse_if_locked(uow, user.email, at, actor=principal.actor, action="auth.password_change_locked")
        if not _verify_password(user.password_hash, current):
            _fail(uow, user.email, at, None, "password_change", actor=principal.actor,
                  action="auth.password_change_failed")
            raise InvalidConfig("current_password", "is not your current password")
        user.password_hash = _hasher.hash(new)
        ended = SessionRepository(uow.session).revoke_all(user.id, except_id=principal.session_id, at=at)
        audit.record(uow.session, actor=principal.actor, action="auth.password_changed", subject=principal.actor,
                     details={"sessions_ended": ended})
        return ended


def logout(platform: Platform, principal: Principal) -> None:
    if principal.session_id is None:
        return
    with platform.uow() as uow:
        row = SessionRepository(uow.session).get(principal.user_id, principal.session_id)
        row.revoked_at = datetime.now(UTC)
        audit.record(uow.session, actor=principal.actor, action="auth.logout", subject=principal.actor,
                     details={"session": row.id})


def principal_from_session(platform: Platform, token: str, now: datetime | None = None) -> Principal:
    at = _now(now)
    with platform.uow() as uow:
        row = SessionRepository(uow.session).by_hash(sha256_hex(token))
        if row is None or row.expires_at <= at:
            raise NotAuthenticated()
        user = uow.users.get(row.user_id)
        if user.disabled_at is not None:
            raise NotAuthenticated()
        if (at - row.last_seen_at) > timedelta(minutes=1):
            row.last_seen_at = at
        return Principal(user.id, user.email, user.is_admin, "session", frozenset(SCOPES),
                         user.totp_secret_sealed is not None, row.mfa_verified, session_id=row.id)


def principal_from_token(platform: Platform, token: str, now: datetime | None = None) -> Principal:
    at = _now(now)
    if not token.startswith(TOKEN_PREFIX):
        raise NotAuthenticated()
    with platform.uow() as uow:
        row = ApiTokenRepository(uow.session).token_by_hash(sha256_hex(token))
        if row is None or (row.expires_at is not None and row.expires_at <= at):
            raise NotAuthenticated()
        user = uow.users.get(row.user_id)
        if user.disabled_at is not None:
            raise NotAuthenticated()
        if row.last_used_at is None or (at - row.last_used_at) > timedelta(minutes=1):
            row.last_used_at = at
        totp_on = user.totp_secret_sealed is not None
        # 2FA-verified only if 2FA is on now *and* a session that had passed it made the token:
        # one made before 2FA was on, or by a session opened without it, stays unverified.
        return Principal(user.id, user.email, user.is_admin, "token", frozenset(row.scopes), totp_on,
                         totp_on and row.mfa_verified, token_id=row.id)


def require_scope(principal: Principal, scope: str) -> None:
    if scope not in principal.scopes:
        raise Refused("scope", f"this token lacks the {scope} scope")


def require_second_factor(principal: Principal) -> None:
    """Linking, revealing or revoking a credential needs 2FA on the account and a
    2FA-verified session (or a token of such an account)."""
    if not principal.totp_enabled:
        raise Refused("2fa", "enable two-factor authentication before linking, revealing or revoking keys")
    if not principal.mfa and principal.via == "token":
        raise Refused("2fa", "this token was not made from a session that passed two-factor authentication: "
                             "make a new one after logging in with your code")
    if not principal.mfa:
        raise Refused("2fa", "log in again with your two-factor code")


def require_admin(principal: Principal) -> None:
    """An instance admin, through a session or a token with the ``admin`` scope: an admin's
    narrow token (say ``bots:read`` for a monitor) must not stop every user's bots."""
    if not principal.is_admin:
        raise Refused("admin", "only an instance admin may do this")
    require_scope(principal, ADMIN_SCOPE)


def require_verified_session(principal: Principal) -> None:
    """A session, which passed 2FA if 2FA is on: what makes tokens or ends sessions and
    tokens. A session opened with the password alone before 2FA was turned on could
    otherwise mint a token that outlives it, or push the user's own sessions out."""
    require_session(principal)
    if principal.totp_enabled and not principal.mfa:
        raise Refused("2fa", "log in again with your two-factor code")


def require_session(principal: Principal) -> None:
    """The account's own security (sessions, tokens, 2FA) is managed from a logged-in
    session: a token, whatever its scopes, must not end the user's sessions, revoke their
    other tokens, nor turn 2FA off."""
    if principal.via != "session":
        raise Refused("session", "this needs a logged-in session, not an API token")


# --- sessions ---------------------------------------------------------------------


def list_sessions(platform: Platform, principal: Principal) -> list[SessionView]:
    require_session(principal)
    with platform.uow() as uow:
        now = datetime.now(UTC)
        return [SessionView(r.id, r.created_at, r.last_seen_at, r.expires_at, r.ip, r.user_agent,
                            r.id == principal.session_id)
                for r in SessionRepository(uow.session).list(principal.user_id) if r.expires_at > now]


def revoke_session(platform: Platform, principal: Principal, session_id: int) -> None:
    require_verified_session(principal)
    with platform.uow() as uow:
        row = SessionRepository(uow.session).get(principal.user_id, session_id)
        if row.revoked_at is not None:
            raise NotFound("session", session_id)
        row.revoked_at = datetime.now(UTC)
        audit.record(uow.session, actor=principal.actor, action="auth.session_revoked", subject=principal.actor,
                     details={"session": session_id})


# --- TOTP two-factor ----------------------------------------------------------------


def _totp_signer(platform: Platform) -> TotpSigner:
    """Where TOTP secrets are sealed and codes checked: the in-process signer, or the
    ``sealbot signer`` process in socket mode (this process then has no KEK)."""
    signer = platform.signer
    if not isinstance(signer, TotpSigner):
        raise CustodyError(f"custody: {type(signer).__name__} cannot seal or check two-factor secrets")
    return signer


def _accept_totp(platform: Platform, uow: UnitOfWork, user_id: int, sealed: bytes, code: str) -> bool:
    """Whether ``code`` is a current TOTP code of ``sealed`` that was not accepted before:
    the signer names the code's time step, and the code is accepted only if the user's
    stored last step rises to it (``advance_totp_step``, a compare-and-set committed with
    whatever the caller does on the code). A code of that step or an earlier one is
    refused (RFC 6238 section 5.2). The one way this module accepts a TOTP code."""
    step = _totp_signer(platform).match_totp(user_id, sealed, code)
    if step is None:
        return False
    if not uow.users.advance_totp_step(user_id, step):
        audit.record(uow.session, actor="system", action="auth.totp_replayed", subject=f"user:{user_id}",
                     details={"step": step})
        return False
    return True


def _second_factor_ok(platform: Platform, uow: UnitOfWork, user_id: int, sealed: bytes | None, code: str,
                      at: datetime) -> bool:
    """A recovery code (used up here, once) or a current TOTP code not used before."""
    normalized = code.strip().lower()
    if "-" in normalized:  # recovery codes are "hex-hex"; TOTP codes never hold a dash
        if RecoveryCodeRepository(uow.session).use(user_id, sha256_hex(normalized), at):
            audit.record(uow.session, actor=f"user:{user_id}", action="auth.recovery_code_used",
                         subject=f"user:{user_id}",
                         details={"remaining": RecoveryCodeRepository(uow.session).remaining(user_id)})
            return True
        return False
    return sealed is not None and _accept_totp(platform, uow, user_id, sealed, code)


def begin_totp(platform: Platform, principal: Principal) -> TotpSetup:
    """A fresh TOTP secret, kept sealed on the session until ``confirm_totp`` proves the
    user's app produces its codes."""
    if principal.session_id is None:
        raise Refused("2fa", "two-factor setup needs a logged-in session, not an API token")
    if principal.totp_enabled:
        raise Refused("2fa", "two-factor authentication is already enabled")
    secret = pyotp.random_base32()  # made here and shown once; the signer keeps only the sealed form
    sealed = _totp_signer(platform).seal_totp_secret(principal.user_id, Secret(secret))
    with platform.uow() as uow:
        row = SessionRepository(uow.session).get(principal.user_id, principal.session_id)
        row.pending_totp_sealed = sealed
        audit.record(uow.session, actor=principal.actor, action="auth.2fa_setup_started", subject=principal.actor,
                     details={})
    return TotpSetup(secret, pyotp.TOTP(secret).provisioning_uri(name=principal.email, issuer_name="sealbot"))


def confirm_totp(platform: Platform, principal: Principal, code: str) -> list[str]:
    """Turn 2FA on if ``code`` matches the pending secret (checked by the signer, against
    its clock); returns the recovery codes (shown once). The code counts as used: the
    same code cannot then log in (the user's last step is never lowered, even by a new
    secret). Wrong codes here are not counted by the lockout: the secret was just shown
    to this very session, so guessing its codes gains nothing. The user's other sessions
    end: they were opened with the password alone, which is no longer enough (whoever had
    stolen it keeps nothing)."""
    if principal.session_id is None:
        raise Refused("2fa", "two-factor setup needs a logged-in session, not an API token")
    with platform.uow() as uow:
        row = SessionRepository(uow.session).get(principal.user_id, principal.session_id)
        if uow.users.get(principal.user_id).totp_secret_sealed is not None:
            # A setup begun before 2FA was turned on (in another session) must not replace
            # the secret and recovery codes: that would hand the second factor to whoever
            # held this session without it, and lock the user out of their own app.
            row.pending_totp_sealed = None
            uow.commit()
            raise Refused("2fa", "two-factor authentication is already enabled")
        if row.pending_totp_sealed is None:
            raise InvalidConfig("code", "start two-factor setup first")
        if not _accept_totp(platform, uow, principal.user_id, row.pending_totp_sealed, code):
            uow.commit()  # a replay's audit record stays
            raise InvalidConfig("code", "does not match the authenticator app (each code works once; "
                                        "check the device's clock)")
        if not uow.users.enable_totp(principal.user_id, row.pending_totp_sealed):  # turned on meanwhile
            row.pending_totp_sealed = None
            uow.commit()
            raise Refused("2fa", "two-factor authentication is already enabled")
        row.pending_totp_sealed = None
        row.mfa_verified = True
        ended = SessionRepository(uow.session).revoke_all(principal.user_id, except_id=principal.session_id)
        codes = _new_recovery_codes(uow, principal.user_id)
        audit.record(uow.session, actor=principal.actor, action="auth.2fa_enabled", subject=principal.actor,
                     details={"recovery_codes": len(codes), "sessions_ended": ended})
        return codes


def disable_totp(platform: Platform, principal: Principal, code: str, now: datetime | None = None) -> None:
    """Turn 2FA off, for a current TOTP code or a recovery code. Throttled with the login:
    a wrong code counts as a failed login of this account, and a locked-out account is
    refused here too (``LockedOut``), so a stolen session cannot guess codes."""
    require_session(principal)
    at = _now(now)
    with platform.uow() as uow:
        user = uow.users.get(principal.user_id)
        if user.totp_secret_sealed is None:
            raise InvalidConfig("code", "two-factor authentication is not enabled")
        _refuse_if_locked(uow, user.email, at, actor=principal.actor, action="auth.2fa_locked")
        if not _second_factor_ok(platform, uow, user.id, user.totp_secret_sealed, code, at):
            _fail(uow, user.email, at, None, "2fa_disable", actor=principal.actor, action="auth.2fa_code_failed")
            raise InvalidConfig("code", "is not a valid code (each code works once)")
        uow.users.set_totp_secret(user.id, None)
        RecoveryCodeRepository(uow.session).replace(user.id, [])
        audit.record(uow.session, actor=principal.actor, action="auth.2fa_disabled", subject=principal.actor,
                     details={})


def regenerate_recovery_codes(platform: Platform, principal: Principal, code: str,
                              now: datetime | None = None) -> list[str]:
    """New recovery codes, for a current TOTP code (not a recovery code). Throttled with
    the login, as ``disable_totp``."""
    require_session(principal)
    at = _now(now)
    with platform.uow() as uow:
        user = uow.users.get(principal.user_id)
        if user.totp_secret_sealed is None:
            raise InvalidConfig("code", "two-factor authentication is not enabled")
        _refuse_if_locked(uow, user.email, at, actor=principal.actor, action="auth.2fa_locked")
        if "-" in code or not _accept_totp(platform, uow, user.id, user.totp_secret_sealed, code):
            _fail(uow, user.email, at, None, "recovery_codes", actor=principal.actor, action="auth.2fa_code_failed")
            raise InvalidConfig("code", "is not a valid code (each code works once)")
        codes = _new_recovery_codes(uow, user.id)
        audit.record(uow.session, actor=principal.actor, action="auth.recovery_codes_regenerated",
                     subject=principal.actor, details={"recovery_codes": len(codes)})
        return codes


def recovery_codes_left(platform: Platform, principal: Principal) -> int:
    with platform.uow() as uow:
        return RecoveryCodeRepository(uow.session).remaining(principal.user_id)


def _new_recovery_codes(uow: UnitOfWork, user_id: int) -> list[str]:
    codes = [f"{secrets.token_hex(5)}-{secrets.token_hex(5)}" for _ in range(RECOVERY_CODES)]  # 80 bits each
    RecoveryCodeRepository(uow.session).replace(user_id, [sha256_hex(c) for c in codes])
    return codes


def totp_now(secret: str, at: datetime | None = None) -> str:
    """The current code for ``secret`` (what an authenticator app shows); for tests and the demo."""
    return pyotp.TOTP(secret).at(_now(at))


# --- personal API tokens --------------------------------------------------------------


def create_token(platform: Platform, principal: Principal, name: str, scopes: Iterable[str],
                 expires_in_days: int | None = None) -> IssuedToken:
    """A new token with ``scopes``; the plaintext is returned once and only its hash kept."""
    if principal.via != "session":
        raise Refused("scope", "API tokens are created from a logged-in session")
    require_verified_session(principal)
    wanted = tuple(dict.fromkeys(scopes))
    for i, scope in enumerate(wanted):
        if scope not in SCOPES:
            raise InvalidConfig(f"scopes.{i}", f"must be one of {', '.join(SCOPES)}")
        if scope == ADMIN_SCOPE and not principal.is_admin:
            raise InvalidConfig(f"scopes.{i}", "only an instance admin may give a token the admin scope")
    if not wanted:
        raise InvalidConfig("scopes", "name at least one scope")
    if not name.strip() or len(name) > 120:
        raise InvalidConfig("name", "must be 1 to 120 characters")
    if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
        raise InvalidConfig("expires_in_days", "must be between 1 and 3650")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    prefix = token[: len(TOKEN_PREFIX) + 6]
    expires = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
    with platform.uow() as uow:
        row = ApiTokenRepository(uow.session).add_token(principal.user_id, name.strip(), sha256_hex(token), prefix,
                                                        wanted, expires, mfa_verified=principal.mfa)
        audit.record(uow.session, actor=principal.actor, action="token.created", subject=f"token:{row.id}",
                     details={"name": row.name, "scopes": list(wanted), "prefix": prefix})
        return IssuedToken(row.id, row.name, token, prefix, wanted, expires)


def list_tokens(platform: Platform, principal: Principal) -> list[TokenView]:
    require_session(principal)
    with platform.uow() as uow:
        return [TokenView(r.id, r.name, r.prefix, tuple(r.scopes), r.created_at, r.last_used_at, r.expires_at)
                for r in ApiTokenRepository(uow.session).list_tokens(principal.user_id)]


def revoke_token(platform: Platform, principal: Principal, token_id: int) -> None:
    require_verified_session(principal)
    with platform.uow() as uow:
        row = ApiTokenRepository(uow.session).get_token(principal.user_id, token_id)
        if row.revoked_at is not None:
            raise NotFound("token", token_id)
        row.revoked_at = datetime.now(UTC)
        audit.record(uow.session, actor=principal.actor, action="token.revoked", subject=f"token:{token_id}",
                     details={"name": row.name})
