"""Smart trades and backtests over the API: scoped, isolated, validated with field paths."""

from __future__ import annotations

from sealbot.services.platform import Platform
from sealbot.simex import SimexServer

from .webkit import Clients, linked_user, signup

MARKET = {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"}
SMART = {"market": MARKET, "amount": "0.001", "entry_type": "limit", "entry_price": "20000",
         "take_profit_steps": [{"amount_percentage": "100", "profit_percentage": "2"}]}
BUNDLED = "bundled/BTC-PERP-1m-20211231-20220107.csv.gz"
DCA = {"markets": [MARKET], "base_order_volume": "100", "safety_order_volume": "100", "max_safety_orders": 3,
       "safety_order_step_percentage": "1", "take_profit": "1"}


async def test_smart_trades_are_their_own_scoped_resource(http: Clients, simex: SimexServer,
                                                          platform: Platform) -> None:
    alice, account = await linked_user(http, simex, "alice@example.org")
    r = await alice.client.post("/api/v1/smart-trades", json={"account_id": account, "name": "dip", "config": SMART})
    assert r.status_code == 201, r.text
    trade = r.json()["trade"]
    assert trade["kind"] == "smart" and trade["status"] == "running" and r.json()["deals"] == []

    bad = await alice.client.post("/api/v1/smart-trades", json={"account_id": account, "name": "bad",
                                                                "config": {**SMART, "amount": "-1"}})
    assert bad.status_code == 422 and "amount" in bad.text
    dca = await alice.client.post("/api/v1/bots", json={"kind": "dca", "name": "d", "account_id": account,
                                                        "config": DCA})
    assert (await alice.client.get(f"/api/v1/smart-trades/{dca.json()['id']}")).status_code == 404
    listed = (await alice.client.get("/api/v1/smart-trades")).json()
    assert [t["id"] for t in listed["items"]] == [trade["id"]]

    # nothing filled yet: closing is refused with the field and reason, cancelling stops it
    r = await alice.client.post(f"/api/v1/smart-trades/{trade['id']}/close")
    assert r.status_code == 422 and r.json()["field"] == "status"
    r = await alice.client.post(f"/api/v1/smart-trades/{trade['id']}/cancel")
    assert r.status_code == 200 and r.json()["trade"]["status"] == "stopped"

    bob = await signup(http, "bob@example.org")
    for method, path in (("GET", f"/api/v1/smart-trades/{trade['id']}"),
                         ("POST", f"/api/v1/smart-trades/{trade['id']}/close"),
                         ("POST", f"/api/v1/smart-trades/{trade['id']}/cancel")):
        assert (await bob.client.request(method, path)).status_code == 404, path
    assert (await bob.client.get("/api/v1/smart-trades")).json()["items"] == []

    token = (await alice.client.post("/api/v1/tokens", json={"name": "bots only",
                                                             "scopes": ["bots:read", "bots:write"]})).json()
    http.leaks.once.add(token["token"])
    scripted = http.new(headers={"Authorization": f"Bearer {token['token']}"})
    assert (await scripted.get("/api/v1/smart-trades")).status_code == 403


async def test_backtests_run_on_the_server_and_stay_with_their_owner(http: Clients) -> None:
    alice = await signup(http, "carol@example.org", two_factor=False)
    files = (await alice.client.get("/api/v1/backtests/candle-files")).json()
    assert BUNDLED in files
    r = await alice.client.post("/api/v1/backtests", json={"name": "week", "kind": "dca", "config": DCA,
                                                           "candles": BUNDLED})
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["pairs"] == ["BTC/USDT"] and run["deals"] > 0 and run["metrics"]["deals_closed"] > 0
    assert [x["id"] for x in (await alice.client.get("/api/v1/backtests")).json()] == [run["id"]]
    full = (await alice.client.get(f"/api/v1/backtests/{run['id']}/result")).json()
    assert len(full["deals"]) == run["deals"] and full["metrics"] == run["metrics"]
    report = await alice.client.get(run["report_url"])
    assert report.status_code == 200 and "plotly" in report.text.lower()

    bad = await alice.client.post("/api/v1/backtests", json={"kind": "dca", "config": DCA, "candles": "../etc"})
    assert bad.status_code == 422 and bad.json()["field"] == "candles"
    bad = await alice.client.post("/api/v1/backtests", json={"kind": "dca", "config": {**DCA, "take_profit": "-1"},
                                                             "candles": BUNDLED})
    assert bad.status_code == 422 and "take_profit" in bad.text
    assert len((await alice.client.get("/api/v1/backtests")).json()) == 1  # nothing kept from bad runs

    dave = await signup(http, "dave@example.org", two_factor=False)
    for path in (f"/api/v1/backtests/{run['id']}", f"/api/v1/backtests/{run['id']}/result"):
        assert (await dave.client.get(path)).status_code == 404
    assert (await dave.client.get("/api/v1/backtests")).json() == []


async def test_a_backtest_reads_as_the_services_summary_plus_its_report_link(http: Clients,
                                                                            platform: Platform) -> None:
    """The API's run is the service's ``RunSummary`` field for field, in its order, with
    ``report_url`` last: the same JSON from the create, list and read routes."""
    from dataclasses import fields

    from sealbot.services import backtest_runs

    user = await signup(http, "erin@example.org", two_factor=False)
    created = await user.client.post("/api/v1/backtests", json={"name": "week", "kind": "dca", "config": DCA,
                                                                 "candles": BUNDLED})
    assert created.status_code == 201, created.text
    run = created.json()
    summary = backtest_runs.get_run(platform, user.user_id, run["id"])
    assert list(run) == [f.name for f in fields(backtest_runs.RunSummary)] + ["report_url"]
    created_at = summary.created_at.isoformat().replace("+00:00", "Z")
    assert run == {"id": summary.id, "name": "week", "created_at": created_at,
                   "kind": "dca", "candles": BUNDLED, "pairs": ["BTC/USDT"], "timeframe": summary.timeframe,
                   "start": summary.start, "end": summary.end, "metrics": summary.metrics, "deals": summary.deals,
                   "report_url": f"/backtests/{summary.id}/report"}
    assert (await user.client.get(f"/api/v1/backtests/{run['id']}")).json() == run
    assert (await user.client.get("/api/v1/backtests")).json() == [run]


async def test_cancelling_answers_the_stopped_trade_as_stored_and_never_stops_another_kind(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    from sealbot.store.models import AuditRecord

    frank, account = await linked_user(http, simex, "frank@example.org")
    trade = (await frank.client.post("/api/v1/smart-trades", json={"account_id": account, "name": "dip",
                                                                   "config": SMART})).json()["trade"]
    cancelled = await frank.client.post(f"/api/v1/smart-trades/{trade['id']}/cancel")
    assert cancelled.status_code == 200
    answer = cancelled.json()
    assert answer["trade"]["status"] == "stopped" and answer["trade"]["pause_reason"] == "cancelled by its owner"
    # the answer is the stored row: a later read (its version included) is the same
    assert answer["trade"]["version"] > trade["version"]
    assert (await frank.client.get(f"/api/v1/smart-trades/{trade['id']}")).json() == answer

    dca = (await frank.client.post("/api/v1/bots", json={"kind": "dca", "name": "d", "account_id": account,
                                                         "config": DCA})).json()
    started = (await frank.client.post(f"/api/v1/bots/{dca['id']}/start")).json()
    assert started["status"] == "running"
    assert (await frank.client.post(f"/api/v1/smart-trades/{dca['id']}/cancel")).status_code == 404
    assert (await frank.client.get(f"/api/v1/bots/{dca['id']}")).json() == started  # untouched
    with platform.uow() as uow:
        stopped = [e.subject for e in uow.session.query(AuditRecord).filter_by(action="bot.stopped")]
    assert stopped == [f"bot:{trade['id']}"]
