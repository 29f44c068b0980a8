"""KuCoin fills reach their bot at the speed of KuCoin's private websocket: ccxt.pro gets a
private connect token (bullet-private, signed by the test signer as custody's signer
would), subscribes /spotMarket/tradeOrders on simex, and every order change rings the
account's poller; the REST poll still applies the fill. The poll interval is 30 s, so only
the stream explains a fill that arrives within a second or two."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from sealbot.domain import Candle, CandleClosed, Event, OrderFilled, Pair
from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.journal import AccountRecord
from sealbot.engine.runner import AccountRunner, InProcessRunner, RunnerSettings
from sealbot.engine.user_stream import user_stream_exchange, ws_api_endpoint
from sealbot.simex import SimexServer
from sealbot.simex.ws_kucoin import KucoinStreams
from sealbot.venues.base import Venue

from .simex_env import SimexTime, dca, seed, simex_kucoin_venue

PAIR = Pair("BTC", "USDT")
PASSPHRASE = "correct horse"


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=0) as sx:
        yield sx


def kucoin_ws(sx: SimexServer) -> KucoinStreams:
    assert sx.kucoin_ws is not None
    return sx.kucoin_ws


async def until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


class KucoinRig:
    """simex, one KuCoin account with one limit-entry DCA bot, a background runner, and the
    instants between which the latency is measured: simex's trade, the bot's step on it."""

    def __init__(self, sx: SimexServer, sqlite_url: str, settings: RunnerSettings) -> None:
        self.sx, self.settings = sx, settings
        account = sx.admin.create_account("alice", {"USDT": "10000"})
        self.simex_account = account["id"]
        key = sx.admin.create_key(account["id"], passphrase=PASSPHRASE)
        self.journal, self.account_id, [self.bot_id] = seed(sqlite_url, [dca(base_order_type="limit")])
        self.clock = SimexTime(sx.admin.clock()["now_ms"])
        self.traded: list[float] = []
        self.filled: list[float] = []
        assert sx.exchange is not None
        sx.exchange.order_listeners.append(
            lambda order, execution, trade: self.traded.append(time.monotonic()) if execution == "TRADE" else None)
        self.venue_args = (sx.base_url, key["key"], key["secret"], PASSPHRASE)

        async def factory(_a: AccountRecord) -> Venue:
            return simex_kucoin_venue(*self.venue_args)

        self.runner = InProcessRunner(self.journal, factory, guard=GuardPolicy(GuardLimits(
            min_quote_volume_24h=Decimal(0))), clock=self.clock, settings=settings)

    async def start(self) -> AccountRunner:
        await self.runner.start_account(self.account_id)
        acc = self.runner.accounts[self.account_id]

        def on_commands(bot: str, event: Event, commands: int) -> None:
            if isinstance(event, OrderFilled):
                self.filled.append(time.monotonic())

        acc.on_commands = on_commands
        return acc

    async def fill_the_base_order(self, acc: AccountRunner) -> float:
        ex = self.sx.exchange
        assert ex is not None
        price = ex.price("BTCUSDT")
        candle = Candle(PAIR, "1m", self.clock.now() - timedelta(minutes=1), price, price, price, price, Decimal(1))
        acc._enqueue(self.bot_id, CandleClosed(candle))
        await until(lambda: ex.open_orders(self.simex_account), 10, "the bot's base order on simex")
        for _minute in range(600):  # the replayed market trades below the limit within minutes
            self.clock.ms = self.sx.admin.set_clock(advance_seconds=60)["now_ms"]
            if self.traded:
                break
        assert self.traded, "the market never reached the base order"
        await until(lambda: self.filled, 2 * self.settings.poll_interval + 5, "the bot's fill")
        return self.filled[0] - self.traded[0]


async def test_kucoins_private_stream_brings_a_fill_to_its_bot_long_before_the_poll(
        simex: SimexServer, sqlite_url: str) -> None:
    rig = KucoinRig(simex, sqlite_url, RunnerSettings(poll_interval=30.0, poll_feeds=False, market_ttl=0))
    acc = await rig.start()
    try:
        watcher = acc.user_stream
        assert watcher is not None
        await until(lambda: watcher.subscribed, 10, "the subscription (acked)")
        assert kucoin_ws(simex).private_subscriptions() == 1
        assert simex.admin.request_count("/api/v1/bullet-private", "POST") == 1  # signed through the signer
        latency = await rig.fill_the_base_order(acc)
        assert watcher.events >= 2  # the order's open and its match, at least
    finally:
        await rig.runner.stop()
    print(f"KuCoin fill-to-bot latency with the private stream (poll interval 30 s): {latency * 1000:.0f} ms")
    assert latency < 10.0  # the poll would have come after 30 s (bench/fill_latency.py has the figure)
    await until(lambda: kucoin_ws(simex).connections == 0, 5, "the stream closed with the account")


async def test_a_dropped_kucoin_stream_is_polled_then_subscribed_again_with_a_new_token(
        simex: SimexServer, sqlite_url: str) -> None:
    rig = KucoinRig(simex, sqlite_url, RunnerSettings(poll_interval=1.0, poll_feeds=False, market_ttl=0,
                                                     user_stream_retry_max=1.0))
    acc = await rig.start()
    try:
        watcher = acc.user_stream
        assert watcher is not None
        await until(lambda: watcher.subscribed, 10, "the subscription")
        simex.admin.add_fault("error_5xx", path_prefix="/api/v1/bullet-private", value=503)  # no token for now
        assert kucoin_ws(simex).drop_all() == 1
        await until(lambda: not watcher.subscribed, 5, "the watcher to see the drop")
        latency = await rig.fill_the_base_order(acc)
        assert not watcher.subscribed and watcher.sessions == 1  # the interval poll brought it
        assert latency < 1.0 + 1.5
        simex.admin.clear_faults()
        await until(lambda: watcher.subscribed, 10, "the watcher to subscribe again")
        assert watcher.sessions == 2 and kucoin_ws(simex).private_subscriptions() == 1
        assert simex.admin.request_count("/api/v1/bullet-private", "POST") >= 2  # a new token per session
    finally:
        await rig.runner.stop()


def test_kucoin_dials_are_counted_under_kucoins_limits(simex: SimexServer) -> None:
    from sealbot.engine.stream_pool import KUCOIN_STREAM_LIMITS, StreamPool

    account = simex.admin.create_account("bob", {"USDT": "1"})
    key = simex.admin.create_key(account["id"], passphrase=PASSPHRASE)
    pro = user_stream_exchange(simex_kucoin_venue(simex.base_url, key["key"], key["secret"], PASSPHRASE))
    assert pro is not None and pro.secret != key["secret"] and pro.password != PASSPHRASE  # the signer's markers
    endpoint = ws_api_endpoint(pro)
    assert endpoint == f"kucoin@{simex.base_url}"
    pool = StreamPool()
    for _ in range(KUCOIN_STREAM_LIMITS.max_connections):
        pool.count_dial(endpoint)
    with pytest.raises(Exception, match="30 new websocket connections in 60 s"):
        pool.count_dial(endpoint)
