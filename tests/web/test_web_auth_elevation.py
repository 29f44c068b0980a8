"""Second-factor and scope elevation: what a session that never passed 2FA, or a narrow
API token, must not be able to turn into (the user's 2FA, a key link, admin actions)."""

from __future__ import annotations

import httpx

from sealbot.services.platform import Platform
from sealbot.simex import SimexServer

from .webkit import PASSWORD, Clients, simex_key


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

    http.clock.tick()
    r = await stale.post("/api/v1/auth/2fa/confirm", json={"code": http.clock.code(intruder_secret)})
    assert r.status_code == 403 and r.json()["rule"] == "2fa", r.text
    http.clock.tick()
    r = await stale.post("/api/v1/auth/2fa/confirm", json={"code": http.clock.code(intruder_secret)})
    assert r.status_code == 403  # the pending secret is gone, not merely refused once

    # The user's own app still logs in; the intruder's does not.
    http.clock.tick()
    r = await http.new().post("/api/v1/auth/login", json={"email": "victim@example.org", "password": PASSWORD,
                                                          "totp_code": http.clock.code(intruder_secret)})
    assert r.status_code == 401
    r = await http.new().post("/api/v1/auth/login", json={"email": "victim@example.org", "password": PASSWORD,
                                                          "totp_code": http.clock.code(owner_secret)})
    assert r.status_code == 200 and r.json()["mfa"] is True
    assert (await stale.get("/api/v1/users/me")).json()["recovery_codes_left"] == 10


async def test_a_token_made_without_the_second_factor_cannot_link_or_revoke_keys(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    # A token made before 2FA was on, and one made afterwards by a session opened before it.
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
    r = await stale.post("/api/v1/tokens", json={"name": "late", "scopes": ["accounts:write", "accounts:read"]})
    late = r.json()["token"]
    http.leaks.once.add(late)
    r = await owner.post("/api/v1/tokens", json={"name": "good", "scopes": ["accounts:write", "accounts:read"]})
    good = r.json()["token"]
    http.leaks.once.add(good)

    key, api_secret = simex_key(simex, ip_whitelist=["127.0.0.1"])
    http.leaks.never.add(api_secret)
    link = {"exchange": "binance", "label": "main", "api_key": key, "api_secret": api_secret}
    for token in (early, late):
        script = http.new(headers={"Authorization": f"Bearer {token}"})
        r = await script.post("/api/v1/accounts", json=link)
        assert r.status_code == 403 and r.json()["rule"] == "2fa", r.text
    script = http.new(headers={"Authorization": f"Bearer {good}"})
    r = await script.post("/api/v1/accounts", json=link)
    assert r.status_code == 201, r.text
    account = r.json()["id"]
    r = await http.new(headers={"Authorization": f"Bearer {late}"}).delete(f"/api/v1/accounts/{account}")
    assert r.status_code == 403
    assert (await script.get(f"/api/v1/accounts/{account}")).json()["status"] == "active"
