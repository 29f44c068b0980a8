"""The admin API and its Python helpers: what tests, the demo and the CLI rely on."""

from __future__ import annotations

import ast
import pathlib
import time

import pytest

from sealbot.simex import SimexServer
from sealbot.simex.admin_client import SimexAdminError, create_key_cli

SIMEX_DIR = pathlib.Path(__file__).resolve().parents[2] / "src" / "sealbot" / "simex"


def test_simex_imports_nothing_else_of_sealbot() -> None:
    for path in SIMEX_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                assert not name.startswith("sealbot") or name.startswith("sealbot.simex"), (path.name, name)


def test_create_key_cli_makes_an_account_and_a_key(simex: SimexServer) -> None:
    made = create_key_cli(simex.base_url, simex.admin_token, account_name="cli", balances={"USDT": "250"},
                          permissions=["spot"], ip_whitelist=["127.0.0.1"], passphrase="pp")
    assert made["kind"] == "hmac" and made["secret"] and made["ip_whitelist"] == ["127.0.0.1"]
    account = simex.admin.account(made["account_id"])
    assert account["balances"]["USDT"] == {"free": "250", "locked": "0"}
    again = create_key_cli(simex.base_url, simex.admin_token, account_id=made["account_id"])
    assert again["account_id"] == made["account_id"] and again["key"] != made["key"]


def test_admin_refusals_name_the_problem(simex: SimexServer) -> None:
    account = simex.admin.create_account("bad", {})
    with pytest.raises(SimexAdminError, match="unknown permission"):
        simex.admin.create_key(account["id"], permissions=["spot", "teleport"])
    with pytest.raises(SimexAdminError, match=r"balances\.USDT"):
        simex.admin.create_account("x", {"USDT": "lots"})
    with pytest.raises(SimexAdminError, match=r"Ed25519|PEM|key"):
        simex.admin.create_key(account["id"], public_key_pem="not a pem")
    with pytest.raises(SimexAdminError, match="unknown fault kind"):
        simex.admin.add_fault("gremlins")
    with pytest.raises(SimexAdminError, match="back in time"):
        simex.admin.set_clock(set_ms=0)


def test_disabled_key_and_updated_permissions(simex: SimexServer) -> None:
    import ccxt

    from .ccxt_simex import point_at_simex

    account = simex.admin.create_account("upd", {"USDT": "100"})
    key = simex.admin.create_key(account["id"], permissions=["reading"])
    client = point_at_simex(ccxt.binance({"apiKey": key["key"], "secret": key["secret"]}), simex.base_url)
    assert client.fetch_balance()["USDT"]["free"] == 100
    simex.admin.update_key(key["key"], enabled=False)
    fresh = point_at_simex(ccxt.binance({"apiKey": key["key"], "secret": key["secret"]}), simex.base_url)
    with pytest.raises(ccxt.AuthenticationError):
        fresh.fetch_balance()


def test_accelerated_clock_runs_the_replay() -> None:
    with SimexServer(speed=600) as server:
        first = server.admin.clock()["now_ms"]
        time.sleep(0.3)
        later = server.admin.clock()
        assert later["now_ms"] - first >= 150_000 and later["speed"] == 600
        server.admin.set_clock(speed=0)
        frozen = server.admin.clock()["now_ms"]
        time.sleep(0.05)
        assert server.admin.clock()["now_ms"] == frozen


def test_orders_view_exposes_trades_for_assertions(simex: SimexServer) -> None:
    import ccxt

    from .ccxt_simex import point_at_simex

    account = simex.admin.create_account("view", {"USDT": "1000"})
    key = simex.admin.create_key(account["id"])
    client = point_at_simex(ccxt.binance({"apiKey": key["key"], "secret": key["secret"]}), simex.base_url)
    client.load_markets()
    client.create_order("BTC/USDT", "market", "buy", 0.001, None, {"clientOrderId": "sb9-9-9"})
    (order,) = simex.admin.orders(account["id"])
    assert order["client_id"] == "sb9-9-9" and order["status"] == "FILLED"
    assert order["trades"][0]["commission"] == "0.000001" and order["trades"][0]["commission_asset"] == "BTC"
    assert key["key"] not in str(order)  # keys are shown truncated
