"""Portfolio holdings over HTTP against simex: balances valued from simex's real tickers
(through ETH/BTC and BTC/USDT when there is no direct pair), the currency setting,
history from snapshots, and isolation (B never sees A's holdings)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sealbot.services import portfolio
from sealbot.services.platform import Platform
from sealbot.simex import SimexServer
from sealbot.store.repositories.portfolio import PortfolioRepository, SnapshotLine

from .webkit import Clients, User, signup, simex_key


async def _linked(http: Clients, simex: SimexServer, email: str, balances: dict[str, str]) -> tuple[User, int]:
    user = await signup(http, email)
    key, secret = simex_key(simex, balances=balances, ip_whitelist=["127.0.0.1"])
    http.leaks.never.add(secret)
    r = await user.client.post("/api/v1/accounts", json={"exchange": "binance", "label": "main", "api_key": key,
                                                         "api_secret": secret})
    assert r.status_code == 201, r.text
    return user, r.json()["id"]


def _mid(simex: SimexServer, symbol: str) -> Decimal:
    m = next(m for m in simex.admin.markets() if m["symbol"] == symbol)
    return (Decimal(m["bid"]) + Decimal(m["ask"])) / 2


async def test_holdings_are_valued_from_simex_tickers_in_the_chosen_currency(http: Clients, simex: SimexServer) -> None:
    alice, account_id = await _linked(http, simex, "pf-alice@example.org",
                                      {"USDT": "1000", "BTC": "0.5", "ETH": "2", "XRP": "100"})
    c = alice.client
    assert (await c.get("/api/v1/portfolio/settings")).json() == {"currency": "USDT"}
    before = (await c.get("/api/v1/portfolio/holdings")).json()
    assert before["accounts"] == [] and before["pending"] == [account_id] and before["total_value"] == "0"

    r = await c.post("/api/v1/portfolio/refresh")
    assert r.status_code == 200, r.text
    body = r.json()
    btc, eth, xrp = _mid(simex, "BTCUSDT"), _mid(simex, "ETHBTC"), _mid(simex, "XRPETH")
    lines = {h["asset"]: h for h in body["accounts"][0]["holdings"]}
    assert lines["USDT"]["value"] == "1000.0000000000" and lines["USDT"]["route"] == "="
    assert Decimal(lines["BTC"]["value"]) == (Decimal("0.5") * btc).quantize(Decimal("1E-10"))
    assert lines["ETH"]["route"] == "ETH/BTC>BTC/USDT"
    assert Decimal(lines["ETH"]["price"]) == eth * btc
    assert lines["XRP"]["route"] == "XRP/ETH>ETH/BTC>BTC/USDT"
    assert Decimal(lines["XRP"]["value"]) == (100 * xrp * eth * btc).quantize(Decimal("1E-10"))
    assert Decimal(body["total_value"]) == sum(Decimal(h["value"]) for h in lines.values())
    assert body["unvalued"] == [] and body["pending"] == []

    again = (await c.post("/api/v1/portfolio/refresh")).json()  # seconds later: served from the snapshot
    assert again["accounts"][0]["taken_at"] == body["accounts"][0]["taken_at"]

    r = await c.put("/api/v1/portfolio/settings", json={"currency": "btc"})
    assert r.json() == {"currency": "BTC"}
    stale = (await c.get("/api/v1/portfolio/holdings")).json()
    assert stale["currency"] == "BTC" and stale["accounts"] == [] and stale["pending"] == [account_id]
    in_btc = (await c.post("/api/v1/portfolio/refresh", params={"account_id": account_id})).json()
    lines = {h["asset"]: h for h in in_btc["accounts"][0]["holdings"]}
    assert lines["BTC"]["value"] == "0.5000000000" and lines["USDT"]["route"] == "1/BTC/USDT"

    await c.put("/api/v1/portfolio/settings", json={"currency": "EUR"})
    in_eur = (await c.post("/api/v1/portfolio/refresh")).json()
    assert in_eur["total_value"] == "0" and in_eur["unvalued"] == ["BTC", "ETH", "USDT", "XRP"]
    assert all(h["value"] is None for h in in_eur["accounts"][0]["holdings"])

    r = await c.put("/api/v1/portfolio/settings", json={"currency": "US$"})
    assert r.status_code == 422 and r.json()["field"] == "currency"


async def test_history_sums_accounts_carrying_the_last_value_forward(http: Clients, simex: SimexServer,
                                                                     platform: Platform) -> None:
    alice = await signup(http, "pf-hist@example.org", two_factor=False)
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    with platform.uow() as uow:
        a1 = uow.accounts.add(alice.user_id, "binance", "one").id
        a2 = uow.accounts.add(alice.user_id, "binance", "two").id
        repo = PortfolioRepository(uow.session)
        line = SnapshotLine("USDT", Decimal(1), Decimal(0), Decimal(1), Decimal(1), Decimal(1), "=")
        for minutes, account, value in ((0, a1, "100"), (0, a2, "50"), (5, a1, "110"), (10, a2, "70"),
                                        (15, a1, "90")):
            repo.add_snapshot(alice.user_id, account, t0 + timedelta(minutes=minutes), "USDT", Decimal(value), [],
                              [line])
        repo.add_snapshot(alice.user_id, a1, t0 + timedelta(minutes=20), "BTC", Decimal("0.1"), [], [line])
    r = await alice.client.get("/api/v1/portfolio/history")
    points = [(p["at"][11:16], p["value"], p["accounts"]) for p in r.json()["points"]]
    assert points == [("00:00", "150", 2), ("00:05", "160", 2), ("00:10", "180", 2), ("00:15", "160", 2)]
    r = await alice.client.get("/api/v1/portfolio/history", params={"account_id": a2})
    assert [p["value"] for p in r.json()["points"]] == ["50", "70"]
    r = await alice.client.get("/api/v1/portfolio/history", params={"max_points": 2})
    assert [p["value"] for p in r.json()["points"]] == ["150", "160"]
    since = (t0 + timedelta(minutes=5)).isoformat()
    r = await alice.client.get("/api/v1/portfolio/history", params={"since": since})
    # a window starting at 00:05 reads 00:05 as the whole history does: account two's 50
    # of 00:00 is carried in (it read 110, one account)
    assert [(p["value"], p["accounts"]) for p in r.json()["points"]] == [("160", 2), ("180", 2), ("160", 2)]
    r = await alice.client.get("/api/v1/portfolio/history", params={"since": since, "account_id": a1})
    assert [p["value"] for p in r.json()["points"]] == ["110", "90"]
    assert portfolio.history(platform, alice.user_id, account_id=a1).points[-1].value == Decimal(90)
    with platform.uow() as uow:  # account two revoked at 00:12: not carried into 00:15
        uow.accounts.set_status(alice.user_id, a2, "revoked", at=t0 + timedelta(minutes=12))
    points = [(p.value, p.accounts) for p in portfolio.history(platform, alice.user_id).points]
    assert points == [(Decimal(150), 2), (Decimal(160), 2), (Decimal(180), 2), (Decimal(90), 1)]


async def test_another_users_portfolio_is_invisible(http: Clients, simex: SimexServer) -> None:
    alice, account_id = await _linked(http, simex, "pf-a@example.org", {"USDT": "777"})
    assert (await alice.client.post("/api/v1/portfolio/refresh")).status_code == 200
    bob = await signup(http, "pf-b@example.org", two_factor=False)
    mine = (await bob.client.get("/api/v1/portfolio/holdings")).json()
    assert mine["accounts"] == [] and mine["total_value"] == "0" and mine["pending"] == []
    assert (await bob.client.get("/api/v1/portfolio/history")).json()["points"] == []
    r = await bob.client.get("/api/v1/portfolio/history", params={"account_id": account_id})
    assert r.status_code == 404
    r = await bob.client.post("/api/v1/portfolio/refresh", params={"account_id": account_id})
    assert r.status_code == 404
    await bob.client.put("/api/v1/portfolio/settings", json={"currency": "BTC"})
    assert (await alice.client.get("/api/v1/portfolio/settings")).json() == {"currency": "USDT"}
    assert (await alice.client.get("/api/v1/portfolio/holdings")).json()["total_value"] == "777.0000000000"


async def test_a_read_only_token_cannot_change_the_currency(http: Clients) -> None:
    alice = await signup(http, "pf-token@example.org", two_factor=False)
    r = await alice.client.post("/api/v1/tokens", json={"name": "ro", "scopes": ["portfolio:read"]})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    http.leaks.once.add(token)  # shown once, on creation
    client = http.new(headers={"Authorization": f"Bearer {token}"})
    assert (await client.get("/api/v1/portfolio/holdings")).status_code == 200
    assert (await client.put("/api/v1/portfolio/settings", json={"currency": "BTC"})).status_code == 403
