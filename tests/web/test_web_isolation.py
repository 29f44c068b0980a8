"""The isolation matrix: user B against each of user A's resources gets 404 (never
data, never a change), and B's lists never show A's rows."""

from __future__ import annotations

from sealbot.services.platform import Platform
from sealbot.simex import SimexServer

from .webkit import DCA_CONFIG, Clients, seed_trading, signup, simex_key


async def test_user_b_gets_404_for_every_resource_of_user_a(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    alice = await signup(http, "alice@example.org")
    key, secret = simex_key(simex, ip_whitelist=["127.0.0.1"])
    http.leaks.never.add(secret)
    r = await alice.client.post("/api/v1/accounts", json={"exchange": "binance", "label": "alice-secret-label",
                                                          "api_key": key, "api_secret": secret})
    account = r.json()["id"]
    bot = (await alice.client.post("/api/v1/bots", json={"kind": "dca", "name": "alice-bot", "account_id": account,
                                                         "config": DCA_CONFIG, "start": True})).json()["id"]
    seeded = seed_trading(platform, alice.user_id, bot, account)
    token = (await alice.client.post("/api/v1/tokens", json={"name": "t", "scopes": ["bots:read"]})).json()
    http.leaks.once.add(token["token"])
    session = (await alice.client.get("/api/v1/auth/sessions")).json()[0]["id"]

    bob = await signup(http, "bob@example.org")
    deal, alert = seeded.deal_no, seeded.alert_id
    attempts = [
        ("GET", f"/api/v1/accounts/{account}", None),
        ("DELETE", f"/api/v1/accounts/{account}", None),
        ("GET", f"/api/v1/bots/{bot}", None),
        ("PATCH", f"/api/v1/bots/{bot}", {"name": "mine now"}),
        ("DELETE", f"/api/v1/bots/{bot}", None),
        ("POST", f"/api/v1/bots/{bot}/start", None),
        ("POST", f"/api/v1/bots/{bot}/stop", None),
        ("POST", f"/api/v1/bots/{bot}/webhook-secret", None),
        ("GET", f"/api/v1/bots/{bot}/webhook-policy", None),
        ("PUT", f"/api/v1/bots/{bot}/webhook-policy", {"allowed_ips": None, "max_per_minute": 5}),
        ("GET", f"/api/v1/bots/{bot}/deals/{deal}", None),
        ("GET", f"/api/v1/bots/{bot}/deals/{deal}/chart", None),
        ("POST", f"/api/v1/bots/{bot}/deals/{deal}/close", None),
        ("POST", f"/api/v1/bots/{bot}/deals/{deal}/add-funds", {"amount": "10"}),
        ("GET", "/api/v1/deals?bot_id=" + str(bot), None),
        ("POST", "/api/v1/bots", {"kind": "dca", "name": "x", "account_id": account, "config": DCA_CONFIG}),
        ("POST", f"/api/v1/alerts/{alert}/acknowledge", None),
        ("DELETE", f"/api/v1/tokens/{token['id']}", None),
        ("DELETE", f"/api/v1/auth/sessions/{session}", None),
    ]
    for method, path, body in attempts:
        r = await bob.client.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert "alice" not in r.text and seeded.client_order_id not in r.text

    for path in ("/api/v1/accounts", "/api/v1/bots", "/api/v1/deals", "/api/v1/alerts", "/api/v1/audit"):
        r = await bob.client.get(path)
        assert r.status_code == 200
        if path != "/api/v1/audit":
            assert r.json()["total"] == 0, path
        assert "alice" not in r.text and f"account:{account}" not in r.text
    portfolio = (await bob.client.get("/api/v1/portfolio")).json()
    assert portfolio["by_quote"] == [] and portfolio["open_deals"] == 0

    # nothing of Alice's changed
    assert (await alice.client.get(f"/api/v1/accounts/{account}")).json()["status"] == "active"
    mine = (await alice.client.get(f"/api/v1/bots/{bot}")).json()
    assert mine["status"] == "running" and mine["name"] == "alice-bot" and not mine["has_webhook_secret"]
    assert (await alice.client.get("/api/v1/alerts", params={"unacknowledged": True})).json()["total"] == 1
    assert len((await alice.client.get("/api/v1/tokens")).json()) == 1
    from sealbot.services import inbox

    assert inbox.pending(platform, bot_ids=[bot]) == []
