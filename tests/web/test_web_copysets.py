"""Copy sets and per-account guard limits over HTTP: create with per-account sizing,
start/stop together, the set's webhook secret, and isolation (another user's account
cannot join; another user's set is 404)."""

from __future__ import annotations

from datetime import UTC, datetime

from sealbot.services import inbox
from sealbot.services.platform import Platform
from sealbot.simex import SimexServer

from .webkit import SIGNAL_CONFIG, Clients, User, signup, simex_key


async def _linked(http: Clients, simex: SimexServer, user: User, label: str) -> int:
    key, secret = simex_key(simex, ip_whitelist=["127.0.0.1"])
    http.leaks.never.add(secret)
    r = await user.client.post("/api/v1/accounts", json={"exchange": "binance", "label": label, "api_key": key,
                                                         "api_secret": secret})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_a_copy_set_over_the_api(http: Clients, simex: SimexServer, platform: Platform) -> None:
    alice = await signup(http, "cs-alice@example.org")
    a1, a2 = await _linked(http, simex, alice, "one"), await _linked(http, simex, alice, "two")
    c = alice.client
    r = await c.post("/api/v1/copy-sets", json={
        "kind": "signal", "name": "tv", "config": SIGNAL_CONFIG, "start": True,
        "members": [{"account_id": a1}, {"account_id": a2, "multiplier": "3"}]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert [(m["account_id"], m["config"]["amount"], m["status"]) for m in body["members"]] == [
        (a1, "50.00000000", "running"), (a2, "150.00000000", "running")]
    set_id, route = body["id"], body["webhook_route"]
    assert route == f"copy-{set_id}" and body["has_webhook_secret"] is False
    bot_ids = [m["bot_id"] for m in body["members"]]
    assert {b["id"] for b in (await c.get("/api/v1/bots")).json()["items"]} == set(bot_ids)

    r = await c.post(f"/api/v1/copy-sets/{set_id}/webhook-secret")
    secret = r.json()["secret"]
    http.leaks.once.add(secret)
    assert r.json()["route"] == route and r.json()["url_path"] == "/api/v1/signals"
    signal = {"secret": secret, "max_lag": "300", "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "trigger_price": "50000", "tv_exchange": "BINANCE", "tv_instrument": "BTCUSDT",
              "action": "enter_long", "bot_uuid": route}
    r = await c.put(f"/api/v1/copy-sets/{set_id}/webhook-policy", json={"allowed_ips": ["tradingview"]})
    assert r.status_code == 200 and len(r.json()["allowed_ips"]) == 4
    r = await http.new().post("/api/v1/signals", json=signal)
    assert r.status_code == 403 and r.json()["kind"] == "forbidden"  # the test client is 127.0.0.1
    r = await c.put(f"/api/v1/copy-sets/{set_id}/webhook-policy", json={"allowed_ips": ["nope"]})
    assert r.status_code == 422 and r.json()["field"] == "allowed_ips.0"
    r = await c.put(f"/api/v1/copy-sets/{set_id}/webhook-policy",
                    json={"allowed_ips": ["127.0.0.0/8"], "max_per_minute": 1})
    assert r.json() == {"copy_set_id": set_id, "allowed_ips": ["127.0.0.0/8"], "max_per_minute": 1}
    assert (await c.get(f"/api/v1/copy-sets/{set_id}/webhook-policy")).json()["max_per_minute"] == 1
    r = await http.new().post("/api/v1/signals", json=signal)
    assert r.status_code == 202, r.text
    assert sorted(i.bot_id for i in inbox.pending(platform)) == sorted(bot_ids)
    r = await http.new().post("/api/v1/signals", json={**signal, "action": "exit_long"})
    assert r.status_code == 429 and r.json()["kind"] == "rate_limited"

    r = await c.post(f"/api/v1/copy-sets/{set_id}/members", json={"account_id": a1})
    assert r.status_code == 422 and r.json()["field"] == "account_id"
    r = await c.post(f"/api/v1/copy-sets/{set_id}/members", json={"account_id": a1 + a2 + 1000})
    assert r.status_code == 404
    new_config = {**SIGNAL_CONFIG, "amount": "20"}
    r = await c.patch(f"/api/v1/copy-sets/{set_id}", json={"config": new_config})
    assert r.status_code == 422 and r.json()["field"] == "status"  # members are running
    r = await c.delete(f"/api/v1/copy-sets/{set_id}/members/{a2}")
    assert r.status_code == 422 and r.json()["field"] == "status"
    r = await c.post(f"/api/v1/copy-sets/{set_id}/pause")
    assert {m["status"] for m in r.json()["members"]} == {"paused"}
    r = await c.patch(f"/api/v1/copy-sets/{set_id}", json={"config": new_config, "name": "tv2"})
    assert r.status_code == 200, r.text
    assert [m["config"]["amount"] for m in r.json()["members"]] == ["20.00000000", "60.00000000"]
    assert r.json()["name"] == "tv2" and r.json()["config"]["amount"] == "20"
    r = await c.patch(f"/api/v1/copy-sets/{set_id}", json={"config": {**SIGNAL_CONFIG, "amount": "-1"}})
    assert r.status_code == 422 and r.json()["field"].startswith("amount")
    r = await c.delete(f"/api/v1/copy-sets/{set_id}/members/{a2}")
    assert [m["account_id"] for m in r.json()["members"]] == [a1]
    assert (await c.get("/api/v1/bots")).json()["total"] == 1
    assert (await c.delete(f"/api/v1/copy-sets/{set_id}/members/{a2}")).status_code == 404
    assert (await c.delete(f"/api/v1/copy-sets/{set_id}")).status_code == 204  # paused (not running): allowed
    assert (await c.get(f"/api/v1/copy-sets/{set_id}")).status_code == 404
    assert (await c.get("/api/v1/bots")).json()["total"] == 0

    r = await c.post("/api/v1/copy-sets", json={"kind": "signal", "name": "x", "config": SIGNAL_CONFIG,
                                                "members": [{"account_id": a1, "multiplier": "0"}]})
    assert r.status_code == 422 and r.json()["field"] == "members.0.multiplier"
    r = await c.post("/api/v1/copy-sets", json={"kind": "grid", "name": "x", "config": SIGNAL_CONFIG,
                                                "members": [{"account_id": a1}]})
    assert r.status_code == 422

    r = await c.put(f"/api/v1/accounts/{a2}/guard-limits", json={"max_order_notional": "40",
                                                                "allowed_pairs": ["btc/usdt"]})
    assert r.status_code == 200, r.text
    assert r.json()["limits"] == {"max_order_notional": "40", "allowed_pairs": ["BTC/USDT"]}
    assert (await c.get(f"/api/v1/accounts/{a2}/guard-limits")).json()["limits"]["max_order_notional"] == "40"
    r = await c.put(f"/api/v1/accounts/{a2}/guard-limits", json={"max_deviation_pct": "0"})
    assert r.status_code == 422 and r.json()["field"] == "limits.max_deviation_pct"
    assert (await c.delete(f"/api/v1/accounts/{a2}/guard-limits")).status_code == 204
    assert (await c.get(f"/api/v1/accounts/{a2}/guard-limits")).json()["limits"] is None


async def test_copy_sets_are_isolated_between_users(http: Clients, simex: SimexServer) -> None:
    alice = await signup(http, "cs-a@example.org")
    bob = await signup(http, "cs-b@example.org")
    mine, theirs = await _linked(http, simex, alice, "a"), await _linked(http, simex, bob, "b")
    r = await alice.client.post("/api/v1/copy-sets", json={
        "kind": "signal", "name": "steal", "config": SIGNAL_CONFIG,
        "members": [{"account_id": mine}, {"account_id": theirs, "multiplier": "10"}]})
    assert r.status_code == 404
    assert (await alice.client.get("/api/v1/copy-sets")).json() == []
    assert (await bob.client.get("/api/v1/bots")).json()["total"] == 0
    r = await alice.client.post("/api/v1/copy-sets", json={"kind": "signal", "name": "ok", "config": SIGNAL_CONFIG,
                                                           "members": [{"account_id": mine}]})
    set_id = r.json()["id"]
    for method, path in (("get", f"/api/v1/copy-sets/{set_id}"), ("post", f"/api/v1/copy-sets/{set_id}/start"),
                         ("post", f"/api/v1/copy-sets/{set_id}/webhook-secret"),
                         ("delete", f"/api/v1/copy-sets/{set_id}"), ("get", f"/api/v1/accounts/{mine}/guard-limits")):
        assert (await getattr(bob.client, method)(path)).status_code == 404, path
    r = await bob.client.post(f"/api/v1/copy-sets/{set_id}/members", json={"account_id": theirs})
    assert r.status_code == 404
    assert (await bob.client.patch(f"/api/v1/copy-sets/{set_id}", json={"name": "mine"})).status_code == 404
    assert (await bob.client.get(f"/api/v1/copy-sets/{set_id}/webhook-policy")).status_code == 404
    r = await bob.client.put(f"/api/v1/copy-sets/{set_id}/webhook-policy", json={"allowed_ips": None})
    assert r.status_code == 404
    assert (await bob.client.delete(f"/api/v1/copy-sets/{set_id}/members/{mine}")).status_code == 404
    r = await bob.client.put(f"/api/v1/accounts/{mine}/guard-limits", json={"max_order_notional": "1"})
    assert r.status_code == 404
    assert (await bob.client.get("/api/v1/copy-sets")).json() == []
    assert (await alice.client.get(f"/api/v1/copy-sets/{set_id}")).json()["members"][0]["status"] == "stopped"
