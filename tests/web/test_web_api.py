"""Every REST endpoint through the real HTTP stack (ASGI), on each database backend."""

from __future__ import annotations

import sqlalchemy as sa

from sealbot.services.platform import Platform
from sealbot.simex import SimexServer

from .webkit import DCA_CONFIG, Clients, linked_user, seed_trading, signup, simex_key


async def test_linking_reports_the_permission_check_and_never_the_key(http: Clients, simex: SimexServer) -> None:
    user, account_id = await linked_user(http, simex, "alice@example.org")
    r = await user.client.get(f"/api/v1/accounts/{account_id}")
    body = r.json()
    assert r.status_code == 200 and body["permissions"]["verdict"] == "ok"
    assert body["permissions"]["can_withdraw"] is False and len(body["api_key_hint"]) == 4
    r = await user.client.get("/api/v1/accounts", params={"exchange": "kraken"})
    assert r.json()["total"] == 0
    r = await user.client.get("/api/v1/accounts", params={"exchange": "binance", "limit": 1})
    assert r.json()["total"] == 1 and r.json()["limit"] == 1


async def test_a_withdrawal_key_is_refused_with_403_and_nothing_is_stored(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    user = await signup(http, "bob@example.org")
    key, secret = simex_key(simex, permissions=["reading", "spot", "withdrawals"], ip_whitelist=["127.0.0.1"])
    http.leaks.never.add(secret)
    r = await user.client.post("/api/v1/accounts", json={"exchange": "binance", "label": "risky", "api_key": key,
                                                         "api_secret": secret})
    assert r.status_code == 403 and "withdraw" in r.json()["reason"]
    with platform.session_factory() as session:
        assert session.scalar(sa.text("select count(*) from credentials")) == 0
    assert (await user.client.get("/api/v1/accounts")).json()["items"] == []


async def test_revoking_an_account_destroys_its_key_and_stops_its_bots(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    user, account_id = await linked_user(http, simex, "carol@example.org")
    r = await user.client.post("/api/v1/bots", json={"kind": "dca", "name": "d", "account_id": account_id,
                                                     "config": DCA_CONFIG, "start": True})
    bot_id = r.json()["id"]
    r = await user.client.delete(f"/api/v1/accounts/{account_id}")
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == f"account:{account_id}"
    assert (await user.client.get(f"/api/v1/accounts/{account_id}")).json()["status"] == "revoked"
    assert (await user.client.get(f"/api/v1/bots/{bot_id}")).json()["status"] == "stopped"
    with platform.session_factory() as session:
        assert session.scalar(sa.text("select count(*) from credentials where destroyed_at is null")) == 0


async def test_bot_lifecycle_create_preview_edit_start_stop_delete(http: Clients, simex: SimexServer) -> None:
    user, account_id = await linked_user(http, simex, "dave@example.org")
    c = user.client
    bad = {**DCA_CONFIG, "take_profit": "-1"}
    r = await c.post("/api/v1/bots", json={"kind": "dca", "name": "bad", "account_id": account_id, "config": bad})
    assert r.status_code == 422 and r.json()["field"] == "take_profit" and r.json()["reason"]
    r = await c.post("/api/v1/bots/preview", json={"kind": "dca", "config": DCA_CONFIG, "price": "50000"})
    assert r.status_code == 200
    rows = r.json()["rows"]
    assert [row["order"] for row in rows] == ["bo", "so1", "so2", "so3"]
    assert rows[1]["price"] == "49750.00"
    r = await c.post("/api/v1/bots", json={"kind": "dca", "name": "btc", "account_id": account_id,
                                           "config": DCA_CONFIG})
    assert r.status_code == 201, r.text
    bot = r.json()
    assert bot["status"] == "stopped" and bot["config"]["bot_id"] == str(bot["id"])
    r = await c.patch(f"/api/v1/bots/{bot['id']}", json={"name": "btc dca", "config": {**DCA_CONFIG,
                                                                                      "take_profit": "1"}})
    assert r.status_code == 200 and r.json()["name"] == "btc dca" and r.json()["config"]["take_profit"] == "1"
    assert (await c.post(f"/api/v1/bots/{bot['id']}/start")).json()["status"] == "running"
    r = await c.patch(f"/api/v1/bots/{bot['id']}", json={"config": DCA_CONFIG})
    assert r.status_code == 422 and r.json()["field"] == "status"
    assert (await c.delete(f"/api/v1/bots/{bot['id']}")).status_code == 422
    assert (await c.get("/api/v1/bots", params={"status": "running"})).json()["total"] == 1
    r = await c.post(f"/api/v1/bots/{bot['id']}/pause")
    assert (r.json()["status"], r.json()["pause_reason"]) == ("paused", "paused by its owner"), r.text
    assert (await c.post(f"/api/v1/bots/{bot['id']}/start")).json()["status"] == "running"  # resumed
    assert (await c.post(f"/api/v1/bots/{bot['id']}/stop")).json()["status"] == "stopped"
    r = await c.post(f"/api/v1/bots/{bot['id']}/pause")  # nothing to hold: not running
    assert r.status_code == 422 and r.json()["field"] == "status", r.text
    assert (await c.delete(f"/api/v1/bots/{bot['id']}")).status_code == 204
    assert (await c.get(f"/api/v1/bots/{bot['id']}")).status_code == 404


async def test_deals_alerts_portfolio_and_audit(http: Clients, simex: SimexServer, platform: Platform) -> None:
    user, account_id = await linked_user(http, simex, "erin@example.org")
    c = user.client
    bot_id = (await c.post("/api/v1/bots", json={"kind": "dca", "name": "b", "account_id": account_id,
                                                 "config": DCA_CONFIG, "start": True})).json()["id"]
    seeded = seed_trading(platform, user.user_id, bot_id, account_id)
    r = await c.get("/api/v1/deals")
    assert r.status_code == 200 and r.json()["total"] == 2
    r = await c.get("/api/v1/deals", params={"status": "closed"})
    assert [d["no"] for d in r.json()["items"]] == [1] and r.json()["items"][0]["realized_profit"] == "1.3"
    assert (await c.get("/api/v1/deals", params={"status": "nonsense"})).json()["field"] == "status"
    r = await c.get(f"/api/v1/bots/{bot_id}/deals/2")
    detail = r.json()
    assert r.status_code == 200 and detail["orders"][0]["client_order_id"] == seeded.client_order_id
    assert detail["fills"][0]["price"] == "50000" and detail["deal"]["status"] == "open"
    r = await c.post(f"/api/v1/bots/{bot_id}/deals/2/close")
    assert r.status_code == 202 and r.json()["queued"] >= 1
    r = await c.post(f"/api/v1/bots/{bot_id}/deals/1/close")
    assert r.status_code == 422 and r.json()["field"] == "status"
    r = await c.post(f"/api/v1/bots/{bot_id}/deals/2/add-funds", json={"amount": "25"})
    assert r.status_code == 202
    from sealbot.domain import AddFunds, CloseAtMarket
    from sealbot.services import inbox

    events = [i.event for i in inbox.pending(platform, bot_ids=[bot_id])]
    assert isinstance(events[0], CloseAtMarket) and isinstance(events[1], AddFunds) and events[1].deal == 2
    # a stopped bot is in no engine: its deal's requests are refused, not queued to be dropped
    assert (await c.post(f"/api/v1/bots/{bot_id}/stop")).json()["status"] == "stopped"
    for path, body in (("close", None), ("add-funds", {"amount": "25"})):
        r = await c.post(f"/api/v1/bots/{bot_id}/deals/2/{path}", json=body)
        assert r.status_code == 403 and r.json()["rule"] == "bot.status" and "stopped" in r.json()["reason"], r.text
    assert len(inbox.pending(platform, bot_ids=[bot_id])) == 2
    r = await c.get("/api/v1/alerts", params={"unacknowledged": True})
    assert [a["id"] for a in r.json()["items"]] == [seeded.alert_id]
    r = await c.post(f"/api/v1/alerts/{seeded.alert_id}/acknowledge")
    assert r.status_code == 200 and r.json()["acknowledged_at"]
    assert (await c.get("/api/v1/alerts", params={"unacknowledged": True})).json()["total"] == 0
    r = await c.get("/api/v1/portfolio")
    usdt = r.json()["by_quote"][0]
    assert usdt["quote"] == "USDT" and usdt["profit_total"] == "1.3" and usdt["open_deals"] == 1
    r = await c.get("/api/v1/audit", params={"action": "deal."})
    assert {e["action"] for e in r.json()["items"]} == {"deal.close_requested", "deal.add_funds_requested"}


async def test_validation_errors_name_the_field(http: Clients) -> None:
    user = await signup(http, "frank@example.org", two_factor=False)
    r = await user.client.post("/api/v1/bots", json={"kind": "dca", "name": "x"})
    assert r.status_code == 422 and r.json()["field"] == "config" and r.json()["reason"]
    r = await user.client.get("/api/v1/bots", params={"limit": 0})
    assert r.status_code == 422 and r.json()["field"] == "limit"
    r = await user.client.post("/api/v1/bots", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


async def test_the_openapi_description_covers_every_route_with_models(http: Clients) -> None:
    client = http.new()
    schema = (await client.get("/api/openapi.json")).json()
    paths = schema["paths"]
    for path in ("/api/v1/accounts", "/api/v1/bots", "/api/v1/deals", "/api/v1/alerts", "/api/v1/audit",
                 "/api/v1/portfolio", "/api/v1/signals", "/api/v1/tokens", "/api/v1/users/me",
                 "/api/v1/bots/{bot_id}/deals/{no}"):
        assert path in paths
    for path, ops in paths.items():
        for method, op in ops.items():
            if method in ("get", "post", "put", "patch", "delete"):
                assert "401" in op["responses"] or path in ("/healthz", "/api/v1/auth/register"), (method, path)
    assert schema["components"]["schemas"]["ErrorOut"]["required"] == ["reason"]


async def test_security_headers_on_every_response(http: Clients) -> None:
    r = await http.new().get("/healthz")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "unsafe-inline" not in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
