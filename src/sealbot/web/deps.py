"""Request dependencies: the platform, the calling principal, scopes and CSRF.

Tenant isolation lives here and in the owner-scoped repositories below the services:
every route gets the caller from ``principal`` (or ``scoped(...)``) and passes only
``principal.user_id`` down, so another user's row is simply not found (404).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request

from sealbot.domain.errors import Refused
from sealbot.services.auth import (
    NotAuthenticated,
    Principal,
    csrf_matches,
    principal_from_session,
    principal_from_token,
    require_scope,
)
from sealbot.services.platform import Platform

COOKIE = "sealbot_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def is_secure(request: Request) -> bool:
    """Served over TLS, directly or behind a proxy that says so."""
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def session_principal(request: Request) -> Principal | None:
    """The cookie's principal, or None (pages redirect to the login form)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        return principal_from_session(get_platform(request), token)
    except NotAuthenticated:
        return None


def principal(request: Request) -> Principal:
    """Bearer token (``Authorization: Bearer sbt_...``) or session cookie. With the cookie,
    a state-changing request must carry the session's CSRF token in ``X-CSRF-Token``."""
    platform = get_platform(request)
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return principal_from_token(platform, auth[7:].strip())
    token = request.cookies.get(COOKIE)
    if not token:
        raise NotAuthenticated()
    who = principal_from_session(platform, token)
    if request.method not in SAFE_METHODS and not csrf_matches(token, request.headers.get(CSRF_HEADER)):
        raise Refused("csrf", "missing or wrong X-CSRF-Token header")
    return who


def scoped(scope: str) -> Callable[[Principal], Principal]:
    """A dependency: the principal, if its token carries ``scope`` (sessions carry all)."""

    def check(who: Principal = Depends(principal)) -> Principal:
        require_scope(who, scope)
        return who

    return check
