"""Linking accounts through services on simex, and the demo's preparation end to end."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sealbot.config import load_settings
from sealbot.custody.secrets import ApiCredentials
from sealbot.domain.errors import InvalidConfig, NotFound, Refused
from sealbot.services.accounts import link_account, list_accounts, register_user
from sealbot.services.bots import create_bot
from sealbot.services.demo import AcceleratedClock, prepare_demo
from sealbot.services.instance import init_instance
from sealbot.services.platform import Platform, open_platform
from sealbot.simex import SimexServer
from sealbot.store.models import Credential, ExchangeAccount


@pytest.fixture(scope="module")
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=0) as server:
        yield server


def _simex_key(simex: SimexServer, **kwargs: object) -> tuple[str, str]:
    account = simex.admin.create_account("svc", {"USDT": "1000"})
    created = simex.admin.create_key(int(account["id"]), **kwargs)  # type: ignore[arg-type]
    return str(created["key"]), str(created["secret"])


async def test_a_restricted_trading_key_is_linked_and_shown_by_its_hint(platform: Platform, simex: SimexServer) -> None:
    user = register_user(platform, "alice@example.org", "correct horse battery")
    key, secret = _simex_key(simex, ip_whitelist=["127.0.0.1"])
    view = await link_account(platform, user, "binance", "main", ApiCredentials(key, secret))
    assert view.permissions["verdict"] == "ok" and view.api_key_hint == key[-4:]
    assert [a.id for a in list_accounts(platform, user)] == [view.id]


async def test_a_withdrawal_key_is_refused_and_leaves_nothing_but_an_audit_record(
        platform: Platform, simex: SimexServer) -> None:
    user = register_user(platform, "bob@example.org", "correct horse battery")
    key, secret = _simex_key(simex, permissions=["reading", "spot", "withdrawals"], ip_whitelist=["127.0.0.1"])
    with pytest.raises(Refused, match="withdraw"):
        await link_account(platform, user, "binance", "risky", ApiCredentials(key, secret))
    with platform.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ExchangeAccount)) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(Credential)) == 0
        actions = list(session.scalars(sa.text("select action from audit_log order by seq")))
    assert actions[-1] == "account.link_refused"


async def test_strict_policy_refuses_a_key_without_ip_restriction(tmp_path: Path, simex: SimexServer) -> None:
    settings = load_settings(data_dir=tmp_path / "d", config_dir=tmp_path / "c", permission_policy="strict")
    init_instance(settings)
    platform = open_platform(settings, exchange_urls={"binance": {"api_base": simex.base_url}})
    user = register_user(platform, "carol@example.org", "correct horse battery")
    key, secret = _simex_key(simex)
    with pytest.raises(Refused, match="IP"):
        await link_account(platform, user, "binance", "open key", ApiCredentials(key, secret))


def test_bots_are_validated_before_anything_is_stored_and_scoped_to_their_owner(platform: Platform) -> None:
    alice = register_user(platform, "alice2@example.org", "correct horse battery")
    mallory = register_user(platform, "mallory@example.org", "correct horse battery")
    with pytest.raises(InvalidConfig) as info:
        create_bot(platform, alice, None, "grid", "bad grid", {
            "market": {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001"},
            "lower_price": "50000", "upper_price": "40000", "grids_quantity": 10, "investment": "1000"})
    assert "price" in info.value.field
    with platform.uow() as uow:
        assert uow.bots.list(alice) == []
        account = uow.accounts.add(alice, "binance", "alice's")
    with pytest.raises(NotFound):
        create_bot(platform, mallory, account.id, "dca", "on alice's account", {
            "markets": [{"pair": "BTC/USDT"}], "base_order_volume": "10", "safety_order_volume": "10",
            "max_safety_orders": 2, "take_profit": "1"})


async def test_the_demo_links_a_custody_born_key_and_its_bots_trade_on_simex(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sealbot.engine.runner import InProcessRunner
    from sealbot.engine.store_journal import StoreJournal

    with SimexServer(speed=600) as sx:
        account = sx.admin.create_account("demo", {"USDT": "10000", "BTC": "0.1"})

        def register(pem: str) -> str:
            assert "PRIVATE" not in pem and "PUBLIC KEY" in pem  # only the public half leaves custody
            return str(sx.admin.create_key(int(account["id"]), public_key_pem=pem, ip_whitelist=["127.0.0.1"])["key"])

        settings = load_settings(data_dir=tmp_path / "data", config_dir=tmp_path / "config")
        demo = await prepare_demo(settings, sx.base_url, register)
        clock = AcceleratedClock(datetime.fromtimestamp(sx.admin.clock()["now_ms"] / 1000, UTC), 600)
        runner = InProcessRunner(StoreJournal(demo.platform.session_factory), demo.platform.venue_for, clock=clock)
        runner.settings = type(runner.settings)(poll_interval=0.2, feed_interval=0.2, market_ttl=0)
        await runner.start_account(str(demo.account_id))
        try:
            for _ in range(100):
                await asyncio.sleep(0.1)
                if len(sx.admin.orders(int(account["id"]))) >= 3:
                    break
        finally:
            await runner.stop()
        on_simex = sx.admin.orders(int(account["id"]))
    client_ids = {o["client_id"] for o in on_simex}
    assert any(cid.startswith(f"sb{demo.bot_ids[0]}-") for cid in client_ids)  # the DCA bot traded
    assert any(cid.startswith(f"sb{demo.bot_ids[1]}-") for cid in client_ids)  # the grid bot traded
    with demo.platform.session_factory() as session:
        stored = session.execute(sa.select(Credential.algorithm, Credential.public_key)
                                 .where(Credential.destroyed_at.is_(None))).one()
    assert stored.algorithm == "ed25519" and stored.public_key
