"""Linking a key with a malformed credential: 422 naming the field, before anything is
sealed, stored or sent to the exchange, and the value never echoed."""

from __future__ import annotations

import sqlalchemy as sa

from sealbot.services.platform import Platform
from sealbot.simex import SimexServer

from .webkit import Clients, signup, simex_key


def _count(platform: Platform, table: str) -> int:
    with platform.session_factory() as session:
        return int(session.scalar(sa.text(f"select count(*) from {table}")) or 0)


async def test_a_malformed_credential_is_422_naming_the_field_and_stores_nothing(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    user = await signup(http, "paste@example.org")
    key, secret = simex_key(simex, ip_whitelist=["127.0.0.1"])
    http.leaks.never.update({key, secret})
    base = {"exchange": "binance", "label": "main", "api_key": key, "api_secret": secret}
    cases = [
        ({**base, "api_key": key + "\x00"}, "api_key"),            # reached the exchange's header: a 500 before
        ({**base, "api_key": key[:20] + "\r\nX-Evil: 1"}, "api_key"),
        ({**base, "api_key": key[:20] + " " + key[20:]}, "api_key"),
        ({**base, "api_secret": secret + "\x07"}, "api_secret"),
        ({**base, "exchange": "kucoin"}, "passphrase"),            # a KuCoin key without its passphrase: 400 before
        ({**base, "exchange": "kucoin", "passphrase": "pass\nword"}, "passphrase"),
    ]
    for body, field in cases:
        r = await user.client.post("/api/v1/accounts", json=body)
        assert r.status_code == 422 and r.json()["field"] == field, (field, r.status_code, r.text)
    assert _count(platform, "exchange_accounts") == 0 and _count(platform, "credentials") == 0

    # the dashboard's form says the same
    form = {"csrf_token": user.csrf, "exchange": "binance", "label": "main", "api_key": key + "\x00",
            "api_secret": secret}
    r = await user.client.post("/accounts", data=form)
    assert r.status_code == 422 and "api_key" in r.text
    assert _count(platform, "exchange_accounts") == 0

    r = await user.client.post("/api/v1/accounts", json=base)
    assert r.status_code == 201, r.text


async def test_the_dashboard_form_takes_a_kucoin_passphrase(http: Clients, platform: Platform) -> None:
    user = await signup(http, "kucoin@example.org")
    page = (await user.client.get("/accounts")).text
    assert 'name="passphrase"' in page and 'value="okx"' not in page  # only exchanges sealbot can sign for
    form = {"csrf_token": user.csrf, "exchange": "kucoin", "label": "k", "api_key": "k" * 24, "api_secret": "s" * 36}
    r = await user.client.post("/accounts", data=form)
    assert r.status_code == 422 and "needs the passphrase" in r.text
    r = await user.client.post("/accounts", data={**form, "passphrase": "pass\x01word"})
    assert r.status_code == 422 and "must not contain control characters" in r.text  # the field reached the check
    assert _count(platform, "exchange_accounts") == 0


async def test_the_accounts_pair_allow_list_is_checked_and_stored_as_pairs(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    user = await signup(http, "pairs@example.org")
    key, secret = simex_key(simex, ip_whitelist=["127.0.0.1"])
    http.leaks.never.add(secret)
    base = {"exchange": "binance", "label": "main", "api_key": key, "api_secret": secret}
    for pairs, field in ((["BTC/USDT", "nope"], "allowed_pairs.1"), (["X" * 5000 + "/USDT"], "allowed_pairs.0")):
        r = await user.client.post("/api/v1/accounts", json={**base, "allowed_pairs": pairs})
        assert r.status_code == 422 and r.json()["field"] == field, r.text  # "nope" was stored before
    assert _count(platform, "exchange_accounts") == 0 and _count(platform, "credentials") == 0
    r = await user.client.post("/api/v1/accounts", json={**base, "allowed_pairs": ["btc-usdt", "ETH/BTC"]})
    assert r.status_code == 201, r.text
    with platform.session_factory() as session:
        stored = session.scalar(sa.text("select allowed_pairs from exchange_accounts"))
    assert "BTC/USDT" in str(stored) and "ETH/BTC" in str(stored) and "btc-usdt" not in str(stored)


async def test_the_dashboard_forms_refuse_overlong_names_and_ids_naming_the_field(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    """The forms have no schema in front of them: these reached the database (a server
    error on PostgreSQL), and an empty label was linked."""
    user = await signup(http, "forms@example.org")
    key, secret = simex_key(simex, ip_whitelist=["127.0.0.1"])
    http.leaks.never.add(secret)
    link = {"csrf_token": user.csrf, "exchange": "binance", "api_key": key, "api_secret": secret}
    for label in ("L" * 121, "   "):
        r = await user.client.post("/accounts", data={**link, "label": label})
        assert r.status_code == 422 and "label" in r.text, (label, r.status_code)
    assert _count(platform, "exchange_accounts") == 0 and _count(platform, "credentials") == 0
    r = await user.client.post("/accounts", data={**link, "label": "main"})
    assert r.status_code == 303
    account = (await user.client.get("/api/v1/accounts")).json()["items"][0]["id"]
    bot = {"csrf_token": user.csrf, "kind": "dca", "account_id": str(account), "pair": "BTC/USDT",
           "base_order_volume": "10", "safety_order_volume": "10", "max_safety_orders": "1",
           "safety_order_step_percentage": "1", "take_profit": "1"}
    r = await user.client.post("/bots", data={**bot, "name": "N" * 121})
    assert r.status_code == 422 and "name" in r.text
    r = await user.client.post("/bots", data={**bot, "account_id": "9" * 25})
    assert r.status_code == 422 and "account_id" in r.text
    assert _count(platform, "bots") == 0
