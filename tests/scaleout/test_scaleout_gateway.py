"""The webhook gateway of the scaled-out deployment: a TradingView body accepted by the
same gate as the embedded engine is on its account's partition queue before the gate
answers, and a worker commits it (once) in PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from sealbot.bots.signals import hash_secret
from sealbot.config import Settings
from sealbot.engine.scaleout.broker import Topology
from sealbot.services import inbox
from sealbot.services.platform import open_platform
from sealbot.services.scaleout import BrokerSignalGate, InboxRelay, signal_gate_for
from sealbot.services.webhooks import SignalGate, WebhookRefused
from sealbot.store.models import Bot, EngineMessage, ExchangeAccount, User

from .conftest import BROKER_URL
from .traffic import wait_until

SECRET = "gateway-test-secret-0123456789"


def _body(bot_id: int, secret: str = SECRET) -> bytes:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (f'{{"secret": "{secret}", "max_lag": "300", "timestamp": "{stamp}", "trigger_price": "50000", '
            f'"tv_exchange": "BINANCE", "tv_instrument": "BTCUSDT", "action": "enter_long", '
            f'"bot_uuid": "{bot_id}"}}').encode()


def test_an_accepted_signal_is_confirmed_by_the_broker_and_committed_once(pg_url: str, topology: Topology,
                                                                          spawn: object, tmp_path: Path) -> None:
    assert callable(spawn)
    settings = Settings(database_url=pg_url, engine="rabbitmq", broker_url=BROKER_URL,  # type: ignore[arg-type]
                        kek_file=tmp_path / "gw.key", data_dir=tmp_path / "gwdata", config_dir=tmp_path,
                        engine_partitions=topology.partitions, broker_prefix=topology.prefix)
    from sealbot.custody.kek_file import create_kek_file

    create_kek_file(tmp_path / "gw.key")
    platform = open_platform(settings)
    with platform.session_factory.begin() as session:
        user = User(email="gw@example.test", password_hash="x")
        session.add(user)
        session.flush()
        account = ExchangeAccount(owner_id=user.id, exchange="binance", label="gw")
        session.add(account)
        session.flush()
        bot = Bot(owner_id=user.id, account_id=account.id, kind="signal", name="gw", status="running",
                  config={"markets": [{"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001",
                                       "min_notional": "5"}], "amount": "50"},
                  webhook_secret_hash=hash_secret(SECRET))
        session.add(bot)
        session.flush()
        bot_id = bot.id
    worker = spawn("gw0")
    relay = InboxRelay(platform, partitions=topology.partitions, prefix=topology.prefix, interval=30)
    gate = BrokerSignalGate(platform, relay)
    try:
        assert wait_until(lambda: len(worker.owned()) == topology.partitions, 30)
        body = _body(bot_id)
        accepted = gate.receive(body, "127.0.0.1")
        # answered after the broker's confirm: the inbox item is already marked delivered
        assert inbox.pending(platform, bot_ids=[bot_id]) == []
        with pytest.raises(WebhookRefused) as replay:
            gate.receive(body, "127.0.0.1")  # the same bytes again: same signal id (or the rate limit)
        assert replay.value.kind in ("duplicate", "rate_limited")
        wrong = _body(bot_id, "not-the-secret-at-all-000000000")
        with pytest.raises(WebhookRefused) as refused:
            gate.receive(wrong, "127.0.0.1")
        assert refused.value.kind == "unauthorized"
        message_id = f"inbox-{accepted.inbox_id}"

        def committed() -> list[EngineMessage]:
            with platform.session_factory() as session:
                return list(session.scalars(sa.select(EngineMessage).where(EngineMessage.message_id == message_id)))

        assert wait_until(lambda: len(committed()) == 1, 20)
        [row] = committed()
        assert row.account_id == str(account.id) and row.kind == "signal"
        relay.relay()  # a second pass publishes nothing again
        time.sleep(1.0)
        assert len(committed()) == 1
    finally:
        relay.close()
    assert isinstance(signal_gate_for(open_platform(settings.model_copy(update={"engine": "in-process"}))),
                      SignalGate)
