"""Registration, login/logout, 2FA, sessions, personal API tokens, the admin's user list."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status

from sealbot.services import auth, users
from sealbot.services.auth import Principal
from sealbot.services.platform import Platform
from sealbot.web.api.common import IdPath
from sealbot.web.deps import COOKIE, client_ip, get_platform, is_secure, principal
from sealbot.web.schemas import (
    CodeIn,
    ErrorOut,
    LoginIn,
    LoginOut,
    PasswordChangeIn,
    RecoveryCodesOut,
    RegisterIn,
    SessionOut,
    TokenCreated,
    TokenIn,
    TokenOut,
    TotpSetupOut,
    UserOut,
)

router = APIRouter(prefix="/api/v1", tags=["auth"])


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(COOKIE, token, max_age=int(auth.SESSION_TTL.total_seconds()), httponly=True,
                        samesite="lax", secure=is_secure(request), path="/")


@router.post("/auth/register", status_code=status.HTTP_201_CREATED, response_model=UserOut,
             responses={429: {"model": ErrorOut, "description": "too many sign-ups from this address"}})
def register(body: RegisterIn, request: Request, platform: Platform = Depends(get_platform)) -> UserOut:
    """Create a user (argon2id password hash). The instance's first user is its admin.
    With ``registration = "closed"`` only that first user may (403, rule ``registration``);
    ten sign-ups an hour per client address."""
    user_id = auth.register(platform, body.email, body.password.get_secret_value(), ip=client_ip(request))
    return UserOut.model_validate(users.get_user(platform, user_id))


@router.post("/auth/login", response_model=LoginOut,
             responses={429: {"model": ErrorOut, "description": "locked out (the e-mail or this address)"}})
def login(body: LoginIn, request: Request, response: Response,
          platform: Platform = Depends(get_platform)) -> LoginOut:
    """Open a session (HttpOnly, SameSite=Lax cookie; Secure over TLS). Five failures in
    15 minutes lock the e-mail for 15 minutes; twenty from one client address in 15
    minutes refuse that address until the 15 minutes end. With 2FA on, ``totp_code`` is
    required."""
    issued = auth.login(platform, body.email, body.password.get_secret_value(), totp_code=body.totp_code,
                        ip=client_ip(request), user_agent=request.headers.get("user-agent"))
    set_session_cookie(request, response, issued.token)
    return LoginOut(user_id=issued.principal.user_id, csrf_token=issued.csrf, mfa=issued.principal.mfa)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(response: Response, who: Principal = Depends(principal),
           platform: Platform = Depends(get_platform)) -> Response:
    auth.logout(platform, who)
    response.delete_cookie(COOKIE, path="/")
    response.status_code = status.HTTP_204_NO_CONTENT
    return response


@router.post("/auth/password", status_code=status.HTTP_204_NO_CONTENT, responses={429: {"description": "locked out"}})
def change_password(body: PasswordChangeIn, who: Principal = Depends(principal),
                    platform: Platform = Depends(get_platform)) -> Response:
    """Change the password (the current one is required; wrong ones count towards the
    login lockout) and end every other session. From a session, not a token."""
    auth.change_password(platform, who, body.current_password.get_secret_value(),
                         body.new_password.get_secret_value())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/users/me", response_model=UserOut, tags=["users"])
def me(who: Principal = Depends(principal), platform: Platform = Depends(get_platform)) -> UserOut:
    return UserOut.model_validate(users.get_user(platform, who.user_id))


@router.post("/auth/2fa/setup", response_model=TotpSetupOut)
def totp_setup(who: Principal = Depends(principal), platform: Platform = Depends(get_platform)) -> TotpSetupOut:
    """Start TOTP setup: a new secret for the authenticator app (kept sealed until confirmed)."""
    setup = auth.begin_totp(platform, who)
    return TotpSetupOut(secret=setup.secret, uri=setup.uri)


@router.post("/auth/2fa/confirm", response_model=RecoveryCodesOut)
def totp_confirm(body: CodeIn, who: Principal = Depends(principal),
                 platform: Platform = Depends(get_platform)) -> RecoveryCodesOut:
    """Turn 2FA on with a code from the app; returns ten one-time recovery codes."""
    return RecoveryCodesOut(recovery_codes=auth.confirm_totp(platform, who, body.code))


@router.post("/auth/2fa/disable", status_code=status.HTTP_204_NO_CONTENT)
def totp_disable(body: CodeIn, who: Principal = Depends(principal),
                 platform: Platform = Depends(get_platform)) -> Response:
    auth.disable_totp(platform, who, body.code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/auth/2fa/recovery-codes", response_model=RecoveryCodesOut)
def recovery_codes(body: CodeIn, who: Principal = Depends(principal),
                   platform: Platform = Depends(get_platform)) -> RecoveryCodesOut:
    """New recovery codes (the old ones stop working)."""
    return RecoveryCodesOut(recovery_codes=auth.regenerate_recovery_codes(platform, who, body.code))


@router.get("/auth/sessions", response_model=list[SessionOut])
def sessions(who: Principal = Depends(principal), platform: Platform = Depends(get_platform)) -> list[SessionOut]:
    return [SessionOut.model_validate(s) for s in auth.list_sessions(platform, who)]


@router.delete("/auth/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
def end_session(session_id: IdPath, who: Principal = Depends(principal),
                platform: Platform = Depends(get_platform)) -> Response:
    auth.revoke_session(platform, who, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/tokens", response_model=list[TokenOut], tags=["tokens"])
def tokens(who: Principal = Depends(principal), platform: Platform = Depends(get_platform)) -> list[TokenOut]:
    return [TokenOut.model_validate(t) for t in auth.list_tokens(platform, who)]


@router.post("/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenCreated, tags=["tokens"])
def create_token(body: TokenIn, who: Principal = Depends(principal),
                 platform: Platform = Depends(get_platform)) -> TokenCreated:
    """A scoped personal API token (``Authorization: Bearer <token>``), shown once."""
    issued = auth.create_token(platform, who, body.name, body.scopes, body.expires_in_days)
    return TokenCreated(id=issued.id, name=issued.name, token=issued.token, prefix=issued.prefix,
                        scopes=list(issued.scopes), expires_at=issued.expires_at)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["tokens"])
def revoke_token(token_id: IdPath, who: Principal = Depends(principal),
                 platform: Platform = Depends(get_platform)) -> Response:
    auth.revoke_token(platform, who, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/admin/users", response_model=list[UserOut], tags=["admin"])
def admin_users(who: Principal = Depends(principal), platform: Platform = Depends(get_platform)) -> list[UserOut]:
    """Every user of the instance (admins only)."""
    auth.require_admin(who)
    return [UserOut.model_validate(u) for u in users.list_users(platform)]
