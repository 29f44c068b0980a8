"""Bot configs through the real HTTP API: what is stored is exactly what was validated,
and absurd amounts, prices and delays are refused with 422 naming the field, never
accepted (to crash the engine later) or answered with a 500."""

from __future__ import annotations

from sealbot.simex import SimexServer

from .webkit import DCA_CONFIG, Clients, User, signup, simex_key


async def _linked(http: Clients, simex: SimexServer, email: str) -> tuple[User, int]:
    user = await signup(http, email)
    key, secret = simex_key(simex, ip_whitelist=["127.0.0.1"])
    http.leaks.never.add(secret)
    r = await user.client.post("/api/v1/accounts", json={"exchange": "binance", "label": "main", "api_key": key,
                                                         "api_secret": secret})
    assert r.status_code == 201, r.text
    return user, r.json()["id"]


async def test_the_stored_config_is_the_validated_one_not_the_raw_input(http: Clients, simex: SimexServer) -> None:
    user, account_id = await _linked(http, simex, "typed@example.org")
    raw = {**DCA_CONFIG, "max_safety_orders": "3", "take_profit": 0.5}
    r = await user.client.post("/api/v1/bots", json={"kind": "dca", "name": "d", "account_id": account_id,
                                                     "config": raw})
    assert r.status_code == 201, r.text
    bot_id = r.json()["id"]
    stored = (await user.client.get(f"/api/v1/bots/{bot_id}")).json()["config"]
    assert stored["max_safety_orders"] == 3 and stored["take_profit"] == "0.5"
    assert stored["bot_id"] == str(bot_id) and stored["active_safety_orders_count"] == 1  # defaults included
    r = await user.client.patch(f"/api/v1/bots/{bot_id}", json={"config": {**raw, "cooldown": "60"}})
    assert r.status_code == 200, r.text
    stored = (await user.client.get(f"/api/v1/bots/{bot_id}")).json()["config"]
    assert stored["cooldown"] == 60 and stored["max_safety_orders"] == 3
