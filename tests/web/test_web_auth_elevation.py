"""Second-factor and scope elevation: what a session that never passed 2FA, or a narrow
API token, must not be able to turn into (the user's 2FA, a key link, admin actions)."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from sealbot.services.platform import Platform
from sealbot.simex import SimexServer

from .webkit import PASSWORD, Clients, User, signup, simex_key


async def _pre_2fa_session(http: Clients, email: str) -> httpx.AsyncClient:
    """A logged-in browser of a user who has no 2FA yet (registered here)."""
    client = http.new()
    assert (await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})).status_code == 201
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


async def test_a_setup_begun_before_2fa_was_enabled_elsewhere_cannot_replace_the_users_secret(
        http: Clients, platform: Platform) -> None:
    # Someone with the password logs in before the user turns 2FA on and starts a setup.
    stale = await _pre_2fa_session(http, "victim@example.org")
    r = await stale.post("/api/v1/auth/2fa/setup")
    intruder_secret = r.json()["secret"]
    http.leaks.once.add(intruder_secret)
    # The user turns 2FA on in their own browser.
    owner = http.new()
    r = await owner.post("/api/v1/auth/login", json={"email": "victim@example.org", "password": PASSWORD})
    owner.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    owner_secret = (await owner.post("/api/v1/auth/2fa/setup")).json()["secret"]
    http.leaks.once.add(owner_secret)
    r = await owner.post("/api/v1/auth/2fa/confirm", json={"code": http.clock.code(owner_secret)})
    assert r.status_code == 200
    http.leaks.once.update(r.json()["recovery_codes"])

    # Turning 2FA on ended the intruder's session, pending setup and all (were it still
    # open, the confirm would be refused: tests/services/test_services_totp_enable_race.py).
    http.clock.tick()
    r = await stale.post("/api/v1/auth/2fa/confirm", json={"code": http.clock.code(intruder_secret)})
    assert r.status_code == 401, r.text

    # The user's own app still logs in; the intruder's does not.
    http.clock.tick()
    r = await http.new().post("/api/v1/auth/login", json={"email": "victim@example.org", "password": PASSWORD,
                                                          "totp_code": http.clock.code(intruder_secret)})
    assert r.status_code == 401
    r = await http.new().post("/api/v1/auth/login", json={"email": "victim@example.org", "password": PASSWORD,
                                                          "totp_code": http.clock.code(owner_secret)})
    assert r.status_code == 200 and r.json()["mfa"] is True
    assert (await owner.get("/api/v1/users/me")).json()["recovery_codes_left"] == 10


async def test_a_token_made_without_the_second_factor_cannot_link_or_revoke_keys(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    # A token made before 2FA was on (one made afterwards by a session opened before it is
    # refused outright: test_a_session_that_never_passed_2fa_cannot_mint_tokens...).
    stale = await _pre_2fa_session(http, "tokens@example.org")
    r = await stale.post("/api/v1/tokens", json={"name": "early", "scopes": ["accounts:write", "accounts:read"]})
    early = r.json()["token"]
    http.leaks.once.add(early)
    owner = http.new()
    r = await owner.post("/api/v1/auth/login", json={"email": "tokens@example.org", "password": PASSWORD})
    owner.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    secret = (await owner.post("/api/v1/auth/2fa/setup")).json()["secret"]
    http.leaks.once.add(secret)
    r = await owner.post("/api/v1/auth/2fa/confirm", json={"code": http.clock.code(secret)})
    http.leaks.once.update(r.json()["recovery_codes"])
    r = await owner.post("/api/v1/tokens", json={"name": "good", "scopes": ["accounts:write", "accounts:read"]})
    good = r.json()["token"]
    http.leaks.once.add(good)

    key, api_secret = simex_key(simex, ip_whitelist=["127.0.0.1"])
    http.leaks.never.add(api_secret)
    link = {"exchange": "binance", "label": "main", "api_key": key, "api_secret": api_secret}
    r = await http.new(headers={"Authorization": f"Bearer {early}"}).post("/api/v1/accounts", json=link)
    assert r.status_code == 403 and r.json()["rule"] == "2fa", r.text
    assert "make a new one" in r.json()["reason"]
    script = http.new(headers={"Authorization": f"Bearer {good}"})
    r = await script.post("/api/v1/accounts", json=link)
    assert r.status_code == 201, r.text
    account = r.json()["id"]
    r = await http.new(headers={"Authorization": f"Bearer {early}"}).delete(f"/api/v1/accounts/{account}")
    assert r.status_code == 403
    assert (await script.get(f"/api/v1/accounts/{account}")).json()["status"] == "active"


async def test_an_admins_narrow_token_cannot_act_as_the_admin(http: Clients) -> None:
    admin = await signup(http, "root@example.org")
    assert (await admin.client.get("/api/v1/users/me")).json()["is_admin"] is True
    r = await admin.client.post("/api/v1/tokens", json={"name": "monitor", "scopes": ["bots:read"]})
    monitor = http.new(headers={"Authorization": f"Bearer {r.json()['token']}"})
    http.leaks.once.add(r.json()["token"])
    for method, path in (("POST", "/api/v1/admin/kill-switch"), ("GET", "/api/v1/admin/users")):
        r = await monitor.request(method, path)
        assert r.status_code == 403 and r.json()["rule"] == "scope", (path, r.text)
    r = await admin.client.post("/api/v1/tokens", json={"name": "ops", "scopes": ["admin"]})
    assert r.status_code == 201
    ops = http.new(headers={"Authorization": f"Bearer {r.json()['token']}"})
    http.leaks.once.add(r.json()["token"])
    assert (await ops.get("/api/v1/admin/users")).status_code == 200
    assert (await ops.post("/api/v1/admin/kill-switch")).json()["scope"] == "instance"
    assert (await admin.client.get("/api/v1/admin/users")).status_code == 200  # a session carries every scope

    user = await signup(http, "plain@example.org", two_factor=False)
    r = await user.client.post("/api/v1/tokens", json={"name": "x", "scopes": ["bots:read", "admin"]})
    assert r.status_code == 422 and r.json()["field"] == "scopes.1"


async def test_an_api_token_cannot_manage_the_users_sessions_tokens_or_second_factor(http: Clients) -> None:
    user = await signup(http, "owner@example.org")
    r = await user.client.post("/api/v1/tokens", json={"name": "all", "scopes": ["bots:read", "accounts:write"]})
    token_id = r.json()["id"]
    script = http.new(headers={"Authorization": f"Bearer {r.json()['token']}"})
    http.leaks.once.add(r.json()["token"])
    session_id = (await user.client.get("/api/v1/auth/sessions")).json()[0]["id"]
    for method, path, body in (("GET", "/api/v1/auth/sessions", None),
                               ("DELETE", f"/api/v1/auth/sessions/{session_id}", None),
                               ("GET", "/api/v1/tokens", None),
                               ("DELETE", f"/api/v1/tokens/{token_id}", None),
                               ("POST", "/api/v1/auth/2fa/disable", {"code": user.next_code()}),
                               ("POST", "/api/v1/auth/2fa/recovery-codes", {"code": user.next_code()})):
        r = await script.request(method, path, json=body)
        assert r.status_code == 403 and r.json()["rule"] == "session", (path, r.text)
    me = (await user.client.get("/api/v1/users/me")).json()
    assert me["totp_enabled"] is True and me["recovery_codes_left"] == 10
    assert len((await user.client.get("/api/v1/auth/sessions")).json()) == 1
    assert [t["id"] for t in (await user.client.get("/api/v1/tokens")).json()] == [token_id]


async def legacy_session(http: Clients, platform: Platform, user: User) -> httpx.AsyncClient:
    """A session that never passed 2FA although 2FA is on: one that was open when the user
    turned 2FA on before that ended the other sessions (made here by clearing the flag)."""
    client = http.new()
    r = await client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD,
                                                      "totp_code": user.next_code()})
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    session_id = next(s["id"] for s in (await client.get("/api/v1/auth/sessions")).json() if s["current"])
    with platform.session_factory() as session:
        session.execute(sa.text("update sessions set mfa_verified = :no where id = :id"),
                        {"no": False, "id": session_id})
        session.commit()
    return client


async def test_turning_2fa_on_ends_the_other_sessions(http: Clients) -> None:
    other_user = await signup(http, "other@example.org")
    stale = await _pre_2fa_session(http, "ended@example.org")
    user = http.new()
    r = await user.post("/api/v1/auth/login", json={"email": "ended@example.org", "password": PASSWORD})
    user.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    secret = (await user.post("/api/v1/auth/2fa/setup")).json()["secret"]
    http.leaks.once.add(secret)
    r = await user.post("/api/v1/auth/2fa/confirm", json={"code": http.clock.code(secret)})
    assert r.status_code == 200
    http.leaks.once.update(r.json()["recovery_codes"])
    assert (await stale.get("/api/v1/users/me")).status_code == 401  # password-only: ended
    assert (await user.get("/api/v1/users/me")).status_code == 200  # the one that turned it on stays
    assert (await other_user.client.get("/api/v1/users/me")).status_code == 200  # another user's: untouched


async def test_a_session_that_never_passed_2fa_cannot_mint_tokens_or_end_sessions_once_it_is_on(
        http: Clients, platform: Platform) -> None:
    """A token would outlive the stale session (a way to keep access the user cannot see
    coming), and ending sessions and tokens would let it push the user out."""
    user = await signup(http, "persist@example.org")
    owner = user.client
    stale = await legacy_session(http, platform, user)
    r = await owner.post("/api/v1/tokens", json={"name": "mine", "scopes": ["bots:read"]})
    http.leaks.once.add(r.json()["token"])
    token_id = r.json()["id"]
    owner_session = next(s["id"] for s in (await owner.get("/api/v1/auth/sessions")).json() if s["current"])

    for method, path, body in (("POST", "/api/v1/tokens", {"name": "keep", "scopes": ["bots:read"]}),
                               ("DELETE", f"/api/v1/tokens/{token_id}", None),
                               ("DELETE", f"/api/v1/auth/sessions/{owner_session}", None)):
        r = await stale.request(method, path, json=body)
        assert r.status_code == 403 and r.json()["rule"] == "2fa", (path, r.text)
    assert [t["id"] for t in (await owner.get("/api/v1/tokens")).json()] == [token_id]
    assert (await owner.get("/api/v1/users/me")).status_code == 200
    stale_session = next(s["id"] for s in (await owner.get("/api/v1/auth/sessions")).json() if not s["current"])
    assert (await owner.delete(f"/api/v1/auth/sessions/{stale_session}")).status_code == 204
    assert (await stale.get("/api/v1/users/me")).status_code == 401
