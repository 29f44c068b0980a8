"""Backtests of every bot kind over the API and the dashboard's forms, the per-user quota
on kept runs (oldest removed, a run too big alone refused), deleting a run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ByteSize

from sealbot.services.platform import Platform
from sealbot.web import backtest_forms

from .webkit import Clients, User, signup

BUNDLED = "bundled/BTC-PERP-1m-20211231-20220107.csv.gz"
MARKET = {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"}
DCA = {"markets": [MARKET], "base_order_volume": "100", "safety_order_volume": "100", "max_safety_orders": 3,
       "safety_order_step_percentage": "1", "take_profit": "1"}
GRID = {"market": MARKET, "lower_price": "45000", "upper_price": "48500", "grids_quantity": 15,
        "investment": "1000", "order_currency_type": "quote"}
SMART = {"market": MARKET, "volume": "100",
         "take_profit_steps": [{"amount_percentage": "100", "profit_percentage": "1"}], "stop_loss_percentage": "2"}
SIGNAL = {"markets": [MARKET], "amount": "0.002", "amount_type": "base"}
SIGNALS = [{"at": "2022-01-01T06:00:00Z", "action": "enter_long"},
           {"at": "2022-01-02T06:00:00Z", "action": "exit_long"}]


async def _run(user: User, kind: str = "dca", config: dict[str, Any] | None = None, **extra: Any) -> Any:
    return await user.client.post("/api/v1/backtests", json={"name": f"{kind} run", "kind": kind,
                                                             "config": config or DCA, "candles": BUNDLED, **extra})


def _kept_bytes(platform: Platform, user: User) -> int:
    root = platform.settings.data_dir / "backtests" / str(user.user_id)
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


async def test_every_bot_kind_backtests_over_the_api(http: Clients) -> None:
    user = await signup(http, "kinds@example.org", two_factor=False)
    for kind, config, extra in (("grid", GRID, {}), ("smart", SMART, {}), ("signal", SIGNAL, {"signals": SIGNALS})):
        r = await _run(user, kind, config, **extra)
        assert r.status_code == 201, r.text
        run = r.json()
        assert run["kind"] == kind and run["metrics"]["fills"] > 0, run
    signal_run = r.json()
    full = (await user.client.get(f"/api/v1/backtests/{signal_run['id']}/result")).json()
    assert [f["side"] for f in full["fills"]] == ["buy", "sell"]  # the two recorded signals, one round trip
    assert full["fills"][0]["at"] >= "2022-01-01T06:00"

    bad = await _run(user, "signal", SIGNAL, signals=[{"at": "2022-01-01T06:00:00Z", "action": "buy_now"}])
    assert bad.status_code == 422 and bad.json()["field"] == "signals.0.action"
    bad = await _run(user, "signal", SIGNAL, signals=[{"at": "2022-01-01T06:00:00Z", "action": "enter_long",
                                                       "pair": "NOT A PAIR"}])
    assert bad.status_code == 422 and bad.json()["field"] == "signals" and "row 0" in bad.json()["reason"]
    bad = await _run(user, "smart", {**SMART, "volume": "-1"})
    assert bad.status_code == 422 and bad.json() == {"field": "volume", "reason": "Input should be greater than 0"}
    assert len((await user.client.get("/api/v1/backtests")).json()) == 3  # nothing kept from refused runs


async def test_past_the_run_limit_a_users_oldest_runs_are_removed(http: Clients, platform: Platform) -> None:
    platform.settings.backtest_max_runs = 2
    bob = await signup(http, "bob-quota@example.org", two_factor=False)
    bobs = (await _run(bob)).json()["id"]
    alice = await signup(http, "alice-quota@example.org", two_factor=False)
    ids, evicted = [], []
    for _ in range(3):
        r = await _run(alice)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
        evicted.append(r.headers.get("sealbot-evicted"))
    assert evicted == [None, None, ids[0]]
    assert [x["id"] for x in (await alice.client.get("/api/v1/backtests")).json()] == [ids[2], ids[1]]
    assert (await alice.client.get(f"/api/v1/backtests/{ids[0]}")).status_code == 404
    usage = (await alice.client.get("/api/v1/backtests/usage")).json()
    assert usage == {"runs": 2, "bytes": _kept_bytes(platform, alice), "max_runs": 2, "max_bytes": 100_000_000}
    assert [x["id"] for x in (await bob.client.get("/api/v1/backtests")).json()] == [bobs]  # a quota is per user


async def test_past_the_byte_limit_the_oldest_go_and_a_run_too_big_alone_is_refused(
        http: Clients, platform: Platform) -> None:
    user = await signup(http, "bytes@example.org", two_factor=False)
    first = (await _run(user)).json()["id"]
    one_run = _kept_bytes(platform, user)
    assert 100_000 < one_run < 2_000_000  # a week of 1m candles: ~0.9 MB (the report keeps no plotly.js)
    platform.settings.backtest_max_bytes = ByteSize(one_run * 3 // 2)
    r = await _run(user)
    assert r.status_code == 201 and r.headers["sealbot-evicted"] == first
    second = r.json()["id"]

    platform.settings.backtest_max_bytes = ByteSize(1000)
    r = await _run(user)
    assert r.status_code == 403 and r.json()["rule"] == "backtest_max_bytes", r.text
    assert "more than the 1,000 a user may keep" in r.json()["reason"]
    assert [x["id"] for x in (await user.client.get("/api/v1/backtests")).json()] == [second]  # nothing evicted
    root = platform.settings.data_dir / "backtests" / str(user.user_id)
    assert [p.name for p in root.iterdir()] == [second]  # and nothing of the refused run left on disk


async def test_a_user_deletes_their_own_runs_only(http: Clients) -> None:
    alice = await signup(http, "del-a@example.org", two_factor=False)
    bob = await signup(http, "del-b@example.org", two_factor=False)
    run = (await _run(alice)).json()["id"]
    assert (await bob.client.delete(f"/api/v1/backtests/{run}")).status_code == 404
    assert (await alice.client.get(f"/api/v1/backtests/{run}")).status_code == 200
    assert (await alice.client.delete(f"/api/v1/backtests/{run}")).status_code == 204
    assert (await alice.client.get(f"/api/v1/backtests/{run}")).status_code == 404
    assert (await alice.client.get("/api/v1/backtests/usage")).json()["runs"] == 0


def _form(user: User, kind: str, **changes: str) -> dict[str, str]:
    form = backtest_forms.FORMS[kind]
    data = {k: v for k, v in backtest_forms.values(form, None).items() if v}
    return {"csrf_token": user.csrf, "kind": kind, "name": f"{kind} from the form", "candles": BUNDLED,
            **data, **changes}


async def test_the_dashboard_has_a_form_for_every_kind_that_runs_and_reports_like_the_api(http: Clients) -> None:
    user = await signup(http, "forms@example.org", two_factor=False)
    for kind, form in backtest_forms.FORMS.items():
        page = await user.client.get(f"/backtests?kind={kind}")
        assert page.status_code == 200
        assert f'<input type="hidden" name="kind" value="{kind}">' in page.text
        for item in form.inputs:
            assert f'name="{item.path}"' in page.text, (kind, item.path)
        assert ('name="signals"' in page.text) == (kind == "signal")
        r = await user.client.post("/backtests", data=_form(user, kind))
        assert r.status_code == 303, r.text
        run = (await user.client.get(r.headers["location"])).text
        assert f"{kind} from the form" in run and re.search(r'id="bt-fills">[1-9]', run), kind

    bad_target = {"take_profit_steps.0.profit_percentage": "-1"}
    r = await user.client.post("/backtests", data=_form(user, "smart", **bad_target))
    assert r.status_code == 422
    assert "take_profit_steps.0.profit_percentage: Input should be greater than 0" in r.text  # the API's words
    assert re.search(r'name="take_profit_steps\.0\.profit_percentage" value="-1"[^>]*aria-invalid="true"', r.text)
    assert '<a href="/backtests?kind=smart" aria-current="page"' in r.text  # the same form again
    r = await user.client.post("/backtests", data=_form(user, "grid", grids_quantity="1"))
    assert r.status_code == 422 and "grids_quantity: Input should be greater than or equal to 2" in r.text
    r = await user.client.post("/backtests", data=_form(user, "signal", signals="when,what\n1,2"))
    assert r.status_code == 422 and "signals: the first line names the columns" in r.text
    r = await user.client.post("/backtests", data=_form(user, "signal", signals="at,action\nsoon,enter_long"))
    assert r.status_code == 422 and "signals: row 0:" in r.text
    r = await user.client.post("/backtests", data={**_form(user, "dca"), "kind": "wizard"})
    assert r.status_code == 422 and "kind: must be one of dca, grid, smart, signal" in r.text
    assert len((await user.client.get("/api/v1/backtests")).json()) == 4


async def test_the_dashboard_says_when_old_runs_made_room_and_deletes_a_run(
        http: Clients, platform: Platform) -> None:
    platform.settings.backtest_max_runs = 1
    user = await signup(http, "room@example.org", two_factor=False)
    first = await user.client.post("/backtests", data=_form(user, "grid"))
    assert first.status_code == 303 and "evicted" not in first.headers["location"]
    second = await user.client.post("/backtests", data=_form(user, "grid"))
    assert second.headers["location"].endswith("?evicted=1")
    page = await user.client.get(second.headers["location"])
    assert "Your 1 oldest backtest was removed to stay within the limit of 1 runs and 100 MB." in page.text
    listing = (await user.client.get("/backtests")).text
    assert "1 of 1 runs kept" in listing
    run = second.headers["location"].split("/")[-1].split("?")[0]
    r = await user.client.post(f"/backtests/{run}/delete", data={"csrf_token": user.csrf})
    assert r.status_code == 303 and (await user.client.get(f"/backtests/{run}")).status_code == 404
    assert not Path(platform.settings.data_dir / "backtests" / str(user.user_id) / run).exists()


async def test_runs_kept_before_summaries_and_slim_reports_still_list_and_serve(
        http: Clients, platform: Platform) -> None:
    """A run kept by an earlier version has only name, time and candles in meta.json and
    plotly.js inside its report: it is listed from its result and served as it is."""
    import json

    user = await signup(http, "legacy@example.org", two_factor=False)
    run = (await _run(user)).json()
    folder = platform.settings.data_dir / "backtests" / str(user.user_id) / run["id"]
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({k: meta[k] for k in ("name", "created_at", "candles")}))
    (folder / "report.html").write_text("<!doctype html><p id='old'>an old report with plotly inside</p>")
    assert (await user.client.get("/api/v1/backtests")).json() == [run]
    report = await user.client.get(run["report_url"])
    assert report.text == "<!doctype html><p id='old'>an old report with plotly inside</p>"


async def test_concurrent_runs_of_one_user_end_within_the_quota(http: Clients, platform: Platform) -> None:
    import asyncio

    platform.settings.backtest_max_runs = 2
    user = await signup(http, "busy@example.org", two_factor=False)
    answers = await asyncio.gather(*(_run(user, "grid", GRID) for _ in range(4)))
    assert [r.status_code for r in answers] == [201] * 4
    kept = [x["id"] for x in (await user.client.get("/api/v1/backtests")).json()]
    evicted = {i for r in answers for i in (r.headers.get("sealbot-evicted") or "").split(",") if i}
    assert len(kept) == 2 and evicted == {r.json()["id"] for r in answers} - set(kept)
    root = platform.settings.data_dir / "backtests" / str(user.user_id)
    assert sorted(p.name for p in root.iterdir()) == sorted(kept)
