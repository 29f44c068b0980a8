"""Changing the password: needs the current one (wrong ones count towards the lockout),
ends every other session, is audited; the old password stops working at once."""

from __future__ import annotations

from sealbot.services.platform import Platform

from .test_web_auth_elevation import legacy_session
from .webkit import PASSWORD, Clients, signup

NEW = "a much longer passphrase than before"


async def test_changing_the_password_ends_the_other_sessions_and_the_old_password(
        http: Clients, platform: Platform) -> None:
    user = await signup(http, "change@example.org", two_factor=False)
    http.leaks.never.add(NEW)
    intruder = http.new()  # someone who learnt the old password
    r = await intruder.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert r.status_code == 200
    r = await user.client.post("/api/v1/auth/password", json={"current_password": "wrong password!",
                                                              "new_password": NEW})
    assert r.status_code == 422 and r.json()["field"] == "current_password"
    r = await user.client.post("/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": "short"})
    assert r.status_code == 422 and r.json()["field"] == "new_password"
    r = await user.client.post("/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": NEW})
    assert r.status_code == 204, r.text

    assert (await intruder.get("/api/v1/users/me")).status_code == 401  # the other session ended
    assert (await user.client.get("/api/v1/users/me")).status_code == 200  # this one stays
    r = await http.new().post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert r.status_code == 401
    r = await http.new().post("/api/v1/auth/login", json={"email": user.email, "password": NEW})
    assert r.status_code == 200
    audit = (await user.client.get("/api/v1/audit", params={"action": "auth."})).json()["items"]
    actions = [a["action"] for a in audit]
    assert "auth.password_changed" in actions and "auth.password_change_failed" in actions


async def test_wrong_current_passwords_lock_the_account_and_a_token_cannot_change_it(http: Clients) -> None:
    user = await signup(http, "guess@example.org", two_factor=False)
    r = await user.client.post("/api/v1/tokens", json={"name": "t", "scopes": ["bots:read"]})
    http.leaks.once.add(r.json()["token"])
    script = http.new(headers={"Authorization": f"Bearer {r.json()['token']}"})
    r = await script.post("/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": NEW})
    assert r.status_code == 403 and r.json()["rule"] == "session"
    for _ in range(5):  # a stolen cookie guessing the password
        r = await user.client.post("/api/v1/auth/password", json={"current_password": "guess guess guess",
                                                                  "new_password": NEW})
        assert r.status_code == 422 and r.json()["field"] == "current_password"
    r = await user.client.post("/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": NEW})
    assert r.status_code == 429
    r = await http.new().post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert r.status_code == 429


async def test_the_security_page_changes_the_password(http: Clients) -> None:
    user = await signup(http, "page@example.org", two_factor=False)
    http.leaks.never.add(NEW)
    page = (await user.client.get("/security")).text
    assert 'action="/security/password"' in page
    form = {"csrf_token": user.csrf, "current_password": "not it at all", "new_password": NEW}
    r = await user.client.post("/security/password", data=form)
    assert r.status_code == 422 and "current_password" in r.text
    r = await user.client.post("/security/password", data={**form, "current_password": PASSWORD})
    assert r.status_code == 200 and "password changed" in r.text.lower()
    r = await http.new().post("/api/v1/auth/login", json={"email": user.email, "password": NEW})
    assert r.status_code == 200


async def test_a_session_that_never_passed_2fa_cannot_change_the_password_once_it_is_on(
        http: Clients, platform: Platform) -> None:
    """Else whoever logged in with a stolen password before the user turned 2FA on could
    change it and end the user's sessions: locked out of their own account."""
    user = await signup(http, "late@example.org")
    owner = user.client
    stale = await legacy_session(http, platform, user)

    r = await stale.post("/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": NEW})
    assert r.status_code == 403 and r.json()["rule"] == "2fa", r.text
    assert (await owner.get("/api/v1/users/me")).status_code == 200
    r = await owner.post("/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": NEW})
    assert r.status_code == 204  # the session that turned 2FA on passed it
    assert (await stale.get("/api/v1/users/me")).status_code == 401
