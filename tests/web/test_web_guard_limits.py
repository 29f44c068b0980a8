"""A user's own guard limits over HTTP: stored, read back, refused with the field named,
cleared, audited, scoped (a read-only token cannot loosen them) and isolated (one
user's limits are never another's)."""

from __future__ import annotations

import sqlalchemy as sa

from sealbot.services.platform import Platform

from .webkit import Clients, signup


def _audited(platform: Platform, user_id: int) -> list[str]:
    with platform.session_factory() as session:
        return list(session.scalars(sa.text("select action from audit_log where subject = :s "
                                            "and action like 'user.guard_limits%' order by seq"),
                                    {"s": f"user:{user_id}"}))


async def test_a_user_stores_reads_and_clears_their_own_limits(http: Clients, platform: Platform) -> None:
    alice = await signup(http, "gl-alice@example.org", two_factor=False)
    bob = await signup(http, "gl-bob@example.org", two_factor=False)
    c = alice.client
    assert (await c.get("/api/v1/guard-limits")).json() == {"limits": None}

    r = await c.put("/api/v1/guard-limits", json={"max_daily_notional": "400", "max_order_notional": "150",
                                                  "allowed_pairs": ["btc/usdt", "ETH/USDT"]})
    assert r.status_code == 200, r.text
    stored = {"max_daily_notional": "400", "max_order_notional": "150", "allowed_pairs": ["BTC/USDT", "ETH/USDT"]}
    assert r.json() == {"limits": stored}
    assert (await c.get("/api/v1/guard-limits")).json() == {"limits": stored}
    assert (await bob.client.get("/api/v1/guard-limits")).json() == {"limits": None}  # Alice's are hers alone

    # bad input names the field and keeps what was stored
    for body, field in (({"max_daily_notional": "-5"}, "limits.max_daily_notional"),
                        ({"max_deviation_pct": "0"}, "limits.max_deviation_pct"),
                        ({"max_deviation_pct": None}, "limits.max_deviation_pct"),
                        ({"min_quote_volume_24h": None}, "limits.min_quote_volume_24h"),
                        ({"allowed_pairs": ["BTCUSDT"]}, "limits.allowed_pairs"),
                        ({"max_order_notional": "a lot"}, "max_order_notional")):
        r = await c.put("/api/v1/guard-limits", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["field"].endswith(field), (body, r.json())
    r = await c.put("/api/v1/guard-limits", json={"max_oder_notional": "1"})
    assert r.status_code == 422 and "max_oder_notional" in r.json()["field"]
    assert (await c.get("/api/v1/guard-limits")).json() == {"limits": stored}

    # a limit switched off is stored as off (null), not as "the default"
    r = await c.put("/api/v1/guard-limits", json={"max_daily_notional": None})
    assert r.json() == {"limits": {"max_daily_notional": None}}

    assert (await c.delete("/api/v1/guard-limits")).status_code == 204
    assert (await c.get("/api/v1/guard-limits")).json() == {"limits": None}
    r = await c.delete("/api/v1/guard-limits")
    assert r.status_code == 404
    assert _audited(platform, alice.user_id) == ["user.guard_limits_set", "user.guard_limits_set",
                                                 "user.guard_limits_cleared"]
    assert _audited(platform, bob.user_id) == []


async def test_a_read_only_token_cannot_change_the_limits(http: Clients) -> None:
    alice = await signup(http, "gl-token@example.org", two_factor=False)
    await alice.client.put("/api/v1/guard-limits", json={"max_order_notional": "50"})
    r = await alice.client.post("/api/v1/tokens", json={"name": "reader", "scopes": ["accounts:read"]})
    token = r.json()["token"]
    http.leaks.once.add(token)
    reader = http.new(headers={"Authorization": f"Bearer {token}"})
    assert (await reader.get("/api/v1/guard-limits")).json() == {"limits": {"max_order_notional": "50"}}
    r = await reader.put("/api/v1/guard-limits", json={"max_order_notional": None})
    assert r.status_code == 403
    assert (await reader.delete("/api/v1/guard-limits")).status_code == 403
    assert (await alice.client.get("/api/v1/guard-limits")).json() == {"limits": {"max_order_notional": "50"}}


async def test_the_security_page_shows_saves_and_resets_the_limits(http: Clients) -> None:
    user = await signup(http, "gl-page@example.org", two_factor=False)
    page = (await user.client.get("/security")).text
    assert 'id="guard-limits"' in page and 'id="guard-limits-clear"' not in page  # nothing stored yet

    r = await user.client.post("/security/guard-limits", data={
        "csrf_token": user.csrf, "max_order_notional": " 250 ", "max_daily_notional": "off",
        "max_deviation_pct": "", "allowed_pairs": "btc/usdt, ETH/USDT"})
    assert r.status_code == 200 and "Trading limits saved" in r.text
    assert (await user.client.get("/api/v1/guard-limits")).json() == {"limits": {
        "max_order_notional": "250", "max_daily_notional": None, "allowed_pairs": ["BTC/USDT", "ETH/USDT"]}}
    page = (await user.client.get("/security")).text
    assert 'name="max_order_notional" size="14" placeholder="default"\n    value="250"' in page
    assert 'value="off"' in page and 'value="BTC/USDT, ETH/USDT"' in page

    r = await user.client.post("/security/guard-limits", data={"csrf_token": user.csrf,
                                                               "max_deviation_pct": "off"})
    assert r.status_code == 422 and "limits.max_deviation_pct: cannot be switched off" in r.text
    assert (await user.client.get("/api/v1/guard-limits")).json()["limits"]["max_order_notional"] == "250"
    r = await user.client.post("/security/guard-limits", data={"csrf_token": "0" * 64, "max_order_notional": "1"})
    assert r.status_code == 403  # a stale or forged form changes nothing
    assert (await user.client.get("/api/v1/guard-limits")).json()["limits"]["max_order_notional"] == "250"

    r = await user.client.post("/security/guard-limits/clear", data={"csrf_token": user.csrf})
    assert r.status_code == 200 and "back to the defaults" in r.text
    assert (await user.client.get("/api/v1/guard-limits")).json() == {"limits": None}
