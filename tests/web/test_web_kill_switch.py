"""Kill switches over HTTP: one account's bots, all of a user's, or (admin) everyone's;
never another user's, and audited."""

from __future__ import annotations

import sqlalchemy as sa

from sealbot.services.platform import Platform
from sealbot.simex import SimexServer

from .webkit import DCA_CONFIG, Clients, User, signup, simex_key


async def _account_with_bots(http: Clients, simex: SimexServer, user: User, label: str,
                             n: int) -> tuple[int, list[int]]:
    with_account: list[int] = []
    key, secret = simex_key(simex, ip_whitelist=["127.0.0.1"])
    http.leaks.never.add(secret)
    r = await user.client.post("/api/v1/accounts", json={"exchange": "binance", "label": label, "api_key": key,
                                                         "api_secret": secret})
    assert r.status_code == 201, r.text
    account = r.json()["id"]
    for i in range(n):
        r = await user.client.post("/api/v1/bots", json={"kind": "dca", "name": f"{label}-{i}", "config": DCA_CONFIG,
                                                         "account_id": account, "start": True})
        assert r.status_code == 201, r.text
        with_account.append(r.json()["id"])
    return account, with_account


def _statuses(platform: Platform) -> dict[int, tuple[str, str | None]]:
    with platform.session_factory() as session:
        return {r.id: (r.status, r.pause_reason) for r in session.execute(sa.text(
            "select id, status, pause_reason from bots"))}


async def test_kill_switches_stop_exactly_their_scope(http: Clients, platform: Platform, simex: SimexServer) -> None:
    admin = await signup(http, "admin@example.org", two_factor=False)  # the first user is the admin
    alice = await signup(http, "alice@example.org")
    bob = await signup(http, "bob@example.org")
    a1, a1_bots = await _account_with_bots(http, simex, alice, "a1", 2)
    _a2, a2_bots = await _account_with_bots(http, simex, alice, "a2", 1)
    _b1, b1_bots = await _account_with_bots(http, simex, bob, "b1", 1)

    r = await bob.client.post("/api/v1/kill-switch", json={"account_id": a1})
    assert r.status_code == 404  # never says whether alice's account exists
    assert {v[0] for v in _statuses(platform).values()} == {"running"}

    r = await alice.client.post("/api/v1/kill-switch", json={"account_id": a1})
    assert r.status_code == 200, r.text
    assert r.json() == {"scope": f"account:{a1}", "stopped_bots": a1_bots}
    statuses = _statuses(platform)
    assert {b: statuses[b] for b in a1_bots} == {b: ("stopped", "kill switch") for b in a1_bots}
    assert all(statuses[b][0] == "running" for b in a2_bots + b1_bots)

    r = await alice.client.post("/api/v1/kill-switch", json={})
    assert r.json() == {"scope": f"user:{alice.user_id}", "stopped_bots": a2_bots}
    assert _statuses(platform)[b1_bots[0]][0] == "running"

    assert (await bob.client.post("/api/v1/admin/kill-switch")).status_code == 403
    assert (await alice.client.post("/api/v1/kill-switch", json={"account_id": "x"})).status_code == 422
    # an id past the database's integer range is a clear 422 naming the field, not an overflow (schemathesis)
    r = await alice.client.post("/api/v1/kill-switch", json={"account_id": 2**63})
    assert r.status_code == 422 and r.json()["field"] == "account_id", r.text
    r = await admin.client.post("/api/v1/admin/kill-switch")
    assert r.json() == {"scope": "instance", "stopped_bots": b1_bots}
    assert {v[0] for v in _statuses(platform).values()} == {"stopped"}
    with platform.session_factory() as session:
        scopes = list(session.scalars(sa.text(
            "select subject from audit_log where action = 'kill_switch.engaged' order by seq")))
    assert scopes == [f"account:{a1}", f"user:{alice.user_id}", "instance"]
