"""Authentication: cookies, CSRF, 2FA (required before keys), recovery codes, lockout,
scoped tokens, sessions and the admin role — each audited."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from sealbot.services.platform import Platform
from sealbot.simex import SimexServer

from .webkit import PASSWORD, Clients, CodeClock, LeakScan, signup, simex_key


def _actions(platform: Platform) -> list[str]:
    with platform.session_factory() as session:
        return list(session.scalars(sa.text("select action from audit_log order by seq")))


async def test_the_session_cookie_is_httponly_lax_and_secure_behind_tls(http: Clients) -> None:
    client = http.new()
    await client.post("/api/v1/auth/register", json={"email": "a@example.org", "password": PASSWORD})
    r = await client.post("/api/v1/auth/login", json={"email": "a@example.org", "password": PASSWORD})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    r = await http.new().post("/api/v1/auth/login", json={"email": "a@example.org", "password": PASSWORD},
                              headers={"X-Forwarded-Proto": "https"})
    assert "; secure" in r.headers["set-cookie"].lower()
    assert r.headers["strict-transport-security"]


async def test_state_changes_with_the_cookie_need_the_csrf_token(http: Clients) -> None:
    user = await signup(http, "b@example.org", two_factor=False)
    del user.client.headers["X-CSRF-Token"]
    r = await user.client.post("/api/v1/tokens", json={"name": "t", "scopes": ["bots:read"]})
    assert r.status_code == 403 and r.json()["rule"] == "csrf"
    r = await user.client.post("/api/v1/tokens", json={"name": "t", "scopes": ["bots:read"]},
                               headers={"X-CSRF-Token": "0" * 64})
    assert r.status_code == 403
    assert (await user.client.get("/api/v1/users/me")).status_code == 200  # reads need none
    r = await user.client.post("/api/v1/tokens", json={"name": "t", "scopes": ["bots:read"]},
                               headers={"X-CSRF-Token": user.csrf})
    assert r.status_code == 201


async def test_two_factor_is_required_before_a_key_is_linked(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    user = await signup(http, "c@example.org", two_factor=False)
    key, secret = simex_key(simex, ip_whitelist=["127.0.0.1"])
    http.leaks.never.add(secret)
    link = {"exchange": "binance", "label": "main", "api_key": key, "api_secret": secret}
    r = await user.client.post("/api/v1/accounts", json=link)
    assert r.status_code == 403 and r.json()["rule"] == "2fa"
    setup = (await user.client.post("/api/v1/auth/2fa/setup")).json()
    user.totp_secret = setup["secret"]
    http.leaks.once.add(setup["secret"])
    assert setup["uri"].startswith("otpauth://totp/")
    r = await user.client.post("/api/v1/auth/2fa/confirm", json={"code": "000000"})
    assert r.status_code == 422 and r.json()["field"] == "code"
    r = await user.client.post("/api/v1/auth/2fa/confirm", json={"code": user.code()})
    assert r.status_code == 200 and len(r.json()["recovery_codes"]) == 10
    assert (await user.client.post("/api/v1/accounts", json=link)).status_code == 201
    with platform.session_factory() as session:
        sealed = session.scalar(sa.text("select totp_secret_sealed from users where id = :i"), {"i": user.user_id})
    assert sealed is not None and setup["secret"].encode() not in sealed  # sealed, not plaintext
    assert "auth.2fa_enabled" in _actions(platform)


async def test_a_session_without_the_second_factor_cannot_link_even_when_2fa_is_on(
        http: Clients, simex: SimexServer) -> None:
    user = await signup(http, "d@example.org")
    other = http.new()
    r = await other.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert r.status_code == 401 and r.json()["reason"] == "totp_required"
    r = await other.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD,
                                                     "totp_code": user.next_code()})  # 30 s later: a fresh code
    assert r.status_code == 200 and r.json()["mfa"] is True


async def test_a_recovery_code_logs_in_once(http: Clients) -> None:
    client = http.new()
    await client.post("/api/v1/auth/register", json={"email": "e@example.org", "password": PASSWORD})
    r = await client.post("/api/v1/auth/login", json={"email": "e@example.org", "password": PASSWORD})
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    secret = (await client.post("/api/v1/auth/2fa/setup")).json()["secret"]
    http.leaks.once.add(secret)
    codes = (await client.post("/api/v1/auth/2fa/confirm", json={"code": http.clock.code(secret)})).json()[
        "recovery_codes"]
    for code in codes:
        http.leaks.once.add(code)
    body = {"email": "e@example.org", "password": PASSWORD, "totp_code": codes[0]}
    assert (await http.new().post("/api/v1/auth/login", json=body)).status_code == 200
    assert (await http.new().post("/api/v1/auth/login", json=body)).status_code == 401
    me = (await client.get("/api/v1/users/me")).json()
    assert me["totp_enabled"] and me["recovery_codes_left"] == 9


async def test_five_failures_lock_the_account_and_are_audited(http: Clients, platform: Platform) -> None:
    user = await signup(http, "f@example.org", two_factor=False)
    client = http.new()
    for _ in range(5):
        r = await client.post("/api/v1/auth/login", json={"email": user.email, "password": "wrong password!"})
        assert r.status_code == 401
    r = await client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    actions = _actions(platform)
    assert actions.count("auth.login_failed") == 5 and "auth.locked" in actions and "auth.login_locked" in actions
    from sealbot.services import auth

    later = datetime.now(UTC) + timedelta(minutes=16)
    assert auth.login(platform, user.email, PASSWORD, now=later).principal.user_id == user.user_id
    # unknown e-mails fail the same way (no account enumeration through login)
    r = await client.post("/api/v1/auth/login", json={"email": "nobody@example.org", "password": "whatever1234"})
    assert r.status_code == 401 and r.json()["reason"] == "wrong e-mail or password"


async def test_tokens_are_shown_once_scoped_and_revocable(http: Clients, platform: Platform) -> None:
    user = await signup(http, "g@example.org")
    r = await user.client.post("/api/v1/tokens", json={"name": "ci", "scopes": ["bots:read"]})
    assert r.status_code == 201
    token = r.json()["token"]
    http.leaks.once.add(token)
    listed = (await user.client.get("/api/v1/tokens")).json()
    assert listed[0]["prefix"] == token[:10] and "token" not in listed[0]
    script = http.new(headers={"Authorization": f"Bearer {token}"})
    assert (await script.get("/api/v1/bots")).status_code == 200
    r = await script.post("/api/v1/bots", json={"kind": "dca", "name": "x", "config": {}})
    assert r.status_code == 403 and r.json()["rule"] == "scope"
    assert (await script.get("/api/v1/accounts")).status_code == 403
    r = await script.post("/api/v1/tokens", json={"name": "more", "scopes": ["bots:write"]})
    assert r.status_code == 403
    r = await user.client.post("/api/v1/tokens", json={"name": "bad", "scopes": ["root"]})
    assert r.status_code == 422 and r.json()["field"] == "scopes.0"
    with platform.session_factory() as session:
        stored = list(session.scalars(sa.text("select token_hash from api_tokens")))
    assert token not in stored and len(stored[0]) == 64
    assert (await user.client.delete(f"/api/v1/tokens/{listed[0]['id']}")).status_code == 204
    assert (await script.get("/api/v1/bots")).status_code == 401
    assert {"token.created", "token.revoked"} <= set(_actions(platform))


async def test_sessions_are_listed_and_revocable_and_logout_ends_one(http: Clients) -> None:
    user = await signup(http, "h@example.org", two_factor=False)
    second = http.new()
    await second.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    sessions = (await user.client.get("/api/v1/auth/sessions")).json()
    assert len(sessions) == 2 and sum(s["current"] for s in sessions) == 1
    other = next(s for s in sessions if not s["current"])
    assert (await user.client.delete(f"/api/v1/auth/sessions/{other['id']}")).status_code == 204
    assert (await second.get("/api/v1/users/me")).status_code == 401
    assert (await user.client.post("/api/v1/auth/logout")).status_code == 204
    assert (await user.client.get("/api/v1/users/me")).status_code == 401


async def test_the_first_user_is_admin_and_only_admins_list_users(http: Clients) -> None:
    admin = await signup(http, "root@example.org", two_factor=False)
    user = await signup(http, "i@example.org", two_factor=False)
    assert (await admin.client.get("/api/v1/users/me")).json()["is_admin"] is True
    assert len((await admin.client.get("/api/v1/admin/users")).json()) == 2
    r = await user.client.get("/api/v1/admin/users")
    assert r.status_code == 403 and r.json()["rule"] == "admin"
    r = await http.new().post("/api/v1/auth/register", json={"email": "I@example.org", "password": PASSWORD})
    assert r.status_code == 422 and r.json()["field"] == "email"


async def test_anonymous_calls_get_401(http: Clients) -> None:
    client = http.new()
    for path in ("/api/v1/users/me", "/api/v1/bots", "/api/v1/accounts", "/api/v1/deals", "/api/v1/audit"):
        assert (await client.get(path)).status_code == 401
    assert (await client.get("/api/v1/bots", headers={"Authorization": "Bearer sbt_nope"})).status_code == 401


async def test_two_factor_works_through_the_api_when_the_kek_is_in_the_signer_process(
        tmp_path: Path, database_url: str, leaks: LeakScan, totp_clock: CodeClock) -> None:
    """signer = "socket": setup, confirm and a 2FA login through the HTTP API, while this
    process has no KEK (the secret is sealed and every code checked by the signer)."""
    import shutil
    import tempfile

    from sealbot.config import load_settings
    from sealbot.custody.runtime import local_signer
    from sealbot.custody.signer_socket import SignerServer
    from sealbot.services.instance import init_instance
    from sealbot.services.platform import open_platform
    from sealbot.web.app import create_app

    sock_dir = Path(tempfile.mkdtemp(prefix="sbw", dir="/tmp"))  # AF_UNIX paths are limited to 107 bytes
    settings = load_settings(data_dir=tmp_path / "data", config_dir=tmp_path / "config", database_url=database_url,
                             signer="socket", signer_socket=sock_dir / "signer.sock")
    init_instance(settings)
    server = SignerServer(settings.effective_signer_socket, local_signer(settings), {os.getuid()})
    server.start_in_thread()
    platform = open_platform(settings)
    http = Clients(create_app(platform), leaks, totp_clock)  # the signer thread follows the test's clock
    try:
        assert platform.loaded_keyring is None
        user = await signup(http, "socket@example.org")  # setup + confirm through the signer
        r = await http.new().post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD,
                                                              "totp_code": user.code()})
        assert r.status_code == 401 and r.json()["reason"] == "totp_required"  # spent by the confirmation
        r = await http.new().post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD,
                                                              "totp_code": user.next_code()})
        assert r.status_code == 200 and r.json()["mfa"] is True
        r = await http.new().post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD,
                                                              "totp_code": "12345"})
        assert r.status_code == 401 and r.json()["reason"] == "totp_required"
    finally:
        await http.close()
        server.shutdown()
        shutil.rmtree(sock_dir, ignore_errors=True)


async def test_wrong_codes_to_turn_2fa_off_lock_the_account_on_the_api_the_pages_and_the_login(
        http: Clients, platform: Platform) -> None:
    """An authenticated session guessing codes is stopped by the login lockout (in the
    database): five wrong codes and even a right one is refused, everywhere."""
    user = await signup(http, "h@example.org")
    wrong = "000000" if user.next_code() != "000000" else "111111"
    for _ in range(5):
        r = await user.client.post("/api/v1/auth/2fa/disable", json={"code": wrong})
        assert r.status_code == 422 and r.json()["field"] == "code"
    r = await user.client.post("/api/v1/auth/2fa/disable", json={"code": user.code()})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    r = await user.client.post("/security/2fa/recovery-codes", data={"csrf_token": user.csrf, "code": user.code()})
    assert r.status_code == 429 and "Too many wrong codes. Try again in" in r.text
    r = await user.client.post("/security/2fa/disable", data={"csrf_token": user.csrf, "code": user.code()})
    assert r.status_code == 429
    r = await http.new().post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD,
                                                          "totp_code": user.code()})
    assert r.status_code == 429
    assert (await user.client.get("/api/v1/users/me")).json()["totp_enabled"]  # still on
    actions = _actions(platform)
    assert actions.count("auth.2fa_code_failed") == 5 and "auth.locked" in actions
    assert actions.count("auth.2fa_locked") == 3 and "auth.login_locked" in actions
