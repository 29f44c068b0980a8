"""What the API must not take on trust, through the real HTTP stack: a pair the
exchange does not list (it froze every bot of the account), market rules typed by the
user (a step of 0 sent an amount of 0.0002141556911874933076346503908), an exchange
sealbot cannot sign for (linked, sealed and stored), and a bot started with no account
(shown "running", run by nothing)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from sealbot.domain import Pair
from sealbot.services.bots import market_spec
from sealbot.services.platform import Platform
from sealbot.simex import SimexServer

from .webkit import DCA_CONFIG, Clients, linked_user, signup, simex_key

BTC = Pair("BTC", "USDT")


def _dca(pair: str, tick: str = "0.01", step: str = "0.00001") -> dict[str, Any]:
    return {**DCA_CONFIG, "markets": [{"pair": pair, "tick_size": tick, "step_size": step}]}


@pytest.mark.parametrize("pair", ["BTC/USDTT", "FOO/BAR"])
async def test_a_pair_the_exchange_does_not_list_is_refused_naming_the_market(
        http: Clients, simex: SimexServer, platform: Platform, pair: str) -> None:
    user, account = await linked_user(http, simex, "typo@example.org")
    r = await user.client.post("/api/v1/bots", json={"kind": "dca", "name": "typo", "account_id": account,
                                                     "start": True, "config": _dca(pair)})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "markets.0.pair" and f"does not list {pair}" in r.json()["reason"]
    assert (await user.client.get("/api/v1/bots")).json()["total"] == 0
    grid = {"market": {"pair": pair}, "lower_price": "40000", "upper_price": "50000", "grids_quantity": 10,
            "investment": "1000"}
    r = await user.client.post("/api/v1/bots", json={"kind": "grid", "name": "g", "account_id": account,
                                                     "config": grid})
    assert r.status_code == 422 and r.json()["field"] == "market.pair", r.text


async def test_market_rules_come_from_the_exchange_on_create_and_edit(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    user, account = await linked_user(http, simex, "rules@example.org")
    exchange = await market_spec(platform, user.user_id, account, BTC)
    assert exchange["tick_size"] != "0" and exchange["step_size"] != "0"
    r = await user.client.post("/api/v1/bots", json={"kind": "dca", "name": "zero", "account_id": account,
                                                     "config": _dca("btc/usdt", "0", "0")})
    assert r.status_code == 201, r.text
    [market] = r.json()["config"]["markets"]
    rules = ("pair", "tick_size", "step_size", "min_amount", "min_notional")
    assert {k: market.get(k) for k in rules} == {k: exchange[k] for k in rules}, market
    bot = r.json()["id"]
    r = await user.client.patch(f"/api/v1/bots/{bot}", json={"config": _dca("BTC/USDT", "0.5", "0")})
    assert r.status_code == 200, r.text
    [market] = r.json()["config"]["markets"]
    assert {k: market.get(k) for k in rules} == {k: exchange[k] for k in rules}, market
    r = await user.client.patch(f"/api/v1/bots/{bot}", json={"config": _dca("FOO/BAR")})
    assert r.status_code == 422 and r.json()["field"] == "markets.0.pair", r.text


async def test_a_smart_trade_gets_the_exchange_rules_too_and_an_unlisted_pair_is_refused(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    user, account = await linked_user(http, simex, "smart@example.org")
    exchange = await market_spec(platform, user.user_id, account, BTC)
    trade = {"market": {"pair": "BTC/USDT", "tick_size": "0", "step_size": "0"}, "direction": "long",
             "volume": "20", "entry_type": "market",
             "take_profit_steps": [{"amount_percentage": "100", "profit_percentage": "50"}]}
    r = await user.client.post("/api/v1/smart-trades", json={"account_id": account, "name": "t", "config": trade})
    assert r.status_code == 201, r.text
    market = r.json()["trade"]["config"]["market"]
    assert (market["tick_size"], market["step_size"]) == (exchange["tick_size"], exchange["step_size"]), market
    unlisted = {**trade, "market": {"pair": "BTC/USDTT", "tick_size": "0.01", "step_size": "0.00001"}}
    r = await user.client.post("/api/v1/smart-trades", json={"account_id": account, "name": "u", "config": unlisted})
    assert r.status_code == 422 and r.json()["field"] == "market.pair", r.text


async def test_an_exchange_sealbot_cannot_sign_for_is_refused_and_nothing_is_stored(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    user = await signup(http, "nosuch@example.org")
    key, secret = simex_key(simex, ip_whitelist=["127.0.0.1"])
    http.leaks.never.add(secret)
    r = await user.client.post("/api/v1/accounts", json={"exchange": "nosuchex", "label": "x", "api_key": key,
                                                         "api_secret": secret})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "exchange"
    assert all(name in r.json()["reason"] for name in ("binance", "bybit", "kucoin"))
    with platform.session_factory() as session:
        assert session.scalar(sa.text("select count(*) from credentials")) == 0
        assert session.scalar(sa.text("select count(*) from exchange_accounts")) == 0


async def test_a_bot_without_an_account_cannot_be_started(http: Clients) -> None:
    user = await signup(http, "orphan@example.org", two_factor=False)
    r = await user.client.post("/api/v1/bots", json={"kind": "dca", "name": "o", "config": DCA_CONFIG,
                                                     "start": True})
    assert r.status_code == 422 and r.json()["field"] == "account_id", r.text
    assert (await user.client.get("/api/v1/bots")).json()["total"] == 0
    r = await user.client.post("/api/v1/bots", json={"kind": "dca", "name": "o", "config": DCA_CONFIG})
    assert r.status_code == 201 and r.json()["account_id"] is None, r.text
    bot = r.json()["id"]
    r = await user.client.post(f"/api/v1/bots/{bot}/start")
    assert r.status_code == 422 and r.json()["field"] == "account_id" and "account" in r.json()["reason"], r.text
    assert (await user.client.get(f"/api/v1/bots/{bot}")).json()["status"] == "stopped"
