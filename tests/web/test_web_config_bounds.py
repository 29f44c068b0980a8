"""Bot configs through the real HTTP API: what is stored is exactly what was validated,
and absurd amounts, prices and delays are refused with 422 naming the field, never
accepted (to crash the engine later) or answered with a 500."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sealbot.domain.money import MAX_AMOUNT
from sealbot.simex import SimexServer

from .webkit import DCA_CONFIG, Clients, linked_user, signup


async def test_the_stored_config_is_the_validated_one_not_the_raw_input(http: Clients, simex: SimexServer) -> None:
    user, account_id = await linked_user(http, simex, "typed@example.org")
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


GRID_CONFIG = {
    "market": {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"},
    "lower_price": "40000", "upper_price": "50000", "grids_quantity": 5, "quantity_per_grid": "0.001",
}
SMART_CONFIG = {
    "market": {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"},
    "volume": "100", "entry_type": "limit", "entry_price": "40000",
}
SIGNAL_CONFIG = {
    "markets": [{"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"}],
    "amount": "50",
}
HUGE = "1" + "0" * 200
ABSURD: list[tuple[str, dict[str, Any], str, Any, str]] = [
    # kind, valid config, field, absurd value, reason
    ("dca", DCA_CONFIG, "base_order_volume", "1e400", "at most 1000000000000"),
    ("dca", DCA_CONFIG, "base_order_volume", 1e308, "at most 1000000000000"),
    ("dca", DCA_CONFIG, "base_order_volume", HUGE, "at most 1000000000000"),
    ("dca", DCA_CONFIG, "base_order_volume", "0.0000000000001", "more than 12 decimal places"),
    ("dca", DCA_CONFIG, "take_profit", "1e400", "at most 1000"),
    ("dca", DCA_CONFIG, "cooldown", 10**20, "less than or equal to"),
    ("grid", GRID_CONFIG, "upper_price", "1e400", "at most 1000000000000"),
    ("grid", {**GRID_CONFIG, "quantity_per_grid": None}, "investment", "1e400", "at most 1000000000000"),
    ("signal", SIGNAL_CONFIG, "amount", "1e400", "at most 1000000000000"),
    ("signal", SIGNAL_CONFIG, "max_signal_age_seconds", 10**12, "less than or equal to 86400"),
    ("smart", SMART_CONFIG, "volume", "1e400", "at most 1000000000000"),
    ("smart", SMART_CONFIG, "entry_price", "1e400", "at most 1000000000000"),
]


@pytest.mark.parametrize(("kind", "config", "field", "value", "reason"), ABSURD,
                         ids=[f"{k}-{f}-{str(v)[:8]}" for k, _, f, v, _ in ABSURD])
async def test_an_absurd_amount_is_refused_with_422_naming_the_field(
        http: Clients, simex: SimexServer, kind: str, config: dict[str, Any], field: str, value: Any,
        reason: str) -> None:
    user, account_id = await linked_user(http, simex, "absurd@example.org")
    body = {"kind": kind, "name": "x", "account_id": account_id, "config": {**config, field: value}}
    r = await user.client.post("/api/v1/bots", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and reason in r.json()["reason"], r.json()
    assert (await user.client.get("/api/v1/bots")).json()["total"] == 0
    if kind == "smart":
        r = await user.client.post("/api/v1/smart-trades", json={"name": "x", "account_id": account_id,
                                                                 "config": {**config, field: value}})
        assert r.status_code == 422 and r.json()["field"] == field, r.text


async def test_the_largest_allowed_amounts_are_accepted(http: Clients, simex: SimexServer) -> None:
    user, account_id = await linked_user(http, simex, "largest@example.org")
    config = {**DCA_CONFIG, "base_order_volume": f"{MAX_AMOUNT - 1}", "safety_order_volume": "1",
              "max_safety_orders": 1, "active_safety_orders_count": 1}  # a deal commits exactly MAX_AMOUNT
    r = await user.client.post("/api/v1/bots", json={"kind": "dca", "name": "x", "account_id": account_id,
                                                     "config": config})
    assert r.status_code == 201, r.text
    r = await user.client.post("/api/v1/bots", json={"kind": "dca", "name": "y", "account_id": account_id,
                                                     "config": {**config, "safety_order_volume": "1.000000000001"}})
    assert r.status_code == 422 and r.json()["field"] == "safety_order_volume", r.text
    assert r.json()["reason"] == "a deal would commit 1000000000000.000000000001, more than the maximum 1000000000000"


async def test_a_martingale_that_compounds_past_the_bound_is_refused(http: Clients, simex: SimexServer) -> None:
    user, account_id = await linked_user(http, simex, "martingale@example.org")
    config = {**DCA_CONFIG, "max_safety_orders": 60, "martingale_volume_coefficient": "2",
              "safety_order_step_percentage": "0.1"}
    r = await user.client.post("/api/v1/bots", json={"kind": "dca", "name": "x", "account_id": account_id,
                                                     "config": config})
    assert r.status_code == 422 and r.json()["field"] == "martingale_volume_coefficient", r.text
    assert "more than the maximum 1000000000000" in r.json()["reason"]


async def test_the_documented_dca_defaults_are_valid(http: Clients, simex: SimexServer) -> None:
    """docs/bots-dca.md: max_safety_orders defaults to 0 and active_safety_orders_count to 1."""
    user, account_id = await linked_user(http, simex, "defaults@example.org")
    config = {"markets": DCA_CONFIG["markets"], "base_order_volume": "100"}
    r = await user.client.post("/api/v1/bots", json={"kind": "dca", "name": "x", "account_id": account_id,
                                                     "config": config})
    assert r.status_code == 201, r.text
    stored = r.json()["config"]
    assert stored["max_safety_orders"] == 0 and stored["active_safety_orders_count"] == 1
    r = await user.client.post("/api/v1/bots", json={"kind": "dca", "name": "y", "account_id": account_id,
                                                     "config": {**config, "active_safety_orders_count": 2}})
    assert r.status_code == 422 and r.json()["field"] == "active_safety_orders_count", r.text


@pytest.mark.parametrize(("limits", "field", "reason"), [
    ({"max_order_notional": "1e400"}, "limits.max_order_notional", "at most 1000000000000"),
    ({"max_daily_notional": 1e308}, "limits.max_daily_notional", "at most 1000000000000"),
    ({"max_deviation_pct": "5000"}, "limits.max_deviation_pct", "at most 1000"),
])
async def test_an_absurd_guard_limit_is_refused(http: Clients, limits: dict[str, Any], field: str,
                                                reason: str) -> None:
    user = await signup(http, "limits@example.org", two_factor=False)
    r = await user.client.put("/api/v1/guard-limits", json=limits)
    assert r.status_code == 422, r.text
    assert r.json()["field"].endswith(field) and reason in r.json()["reason"], r.json()
    assert (await user.client.get("/api/v1/guard-limits")).json() == {"limits": None}


@pytest.mark.parametrize(("body", "field", "reason"), [
    ({"message_type": "bot", "bot_id": 999, "email_token": "wrong", "pair": "USDT_BTC",
      "delay_seconds": 1_000_000_000_000}, "delay_seconds", "at most 86400"),
    ({"message_type": "bot", "bot_id": 999, "email_token": "wrong", "action": "add_funds_in_quote",
      "volume": "1e400"}, "volume", "at most 1000000000000"),
    ({"secret": "wrong", "bot_uuid": "999", "action": "enter_long", "order": {"amount": "1e400"},
      "timestamp": "now"},
     "order.amount", "at most 1000000000000"),
    ({"secret": "wrong", "bot_uuid": "999", "action": "enter_long", "max_lag": 10**20},
     "max_lag", "at most 86400"),
])
async def test_an_absurd_signal_is_refused_with_422_not_500(http: Clients, body: dict[str, Any], field: str,
                                                            reason: str) -> None:
    if body.get("timestamp") == "now":  # when the request is sent: the suite may run long after collection
        body = {**body, "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    r = await http.new().post("/api/v1/signals", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and reason in r.json()["reason"], r.json()
