"""Fills reach their bot at the speed of the exchange's user-data stream: ccxt.pro on a
real simex over loopback rings the account's poller at each execution report, and the
poll (the one place fills are applied) runs at once. The poll interval is 30 s in these
tests, so only the stream can explain a fill that arrives within a second or two; and
when the stream is gone, the interval poll still brings the fill."""

from __future__ import annotations

import asyncio
import logging
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
from sealbot.simex import SimexServer
from sealbot.simex.ws_api_binance import BinanceWsApi, _Refused
from sealbot.venues.base import Venue

from .simex_env import SimexTime, dca, seed, simex_venue

PAIR = Pair("BTC", "USDT")


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=0) as sx:
        yield sx


def ws_api(sx: SimexServer) -> BinanceWsApi:
    assert sx.ws_api is not None
    return sx.ws_api


async def until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


class Rig:
    """simex, one account with one limit-entry DCA bot, a background runner, and the two
    instants a latency is measured between: simex's matching engine making the trade,
    and the bot stepping on its fill."""

    def __init__(self, sx: SimexServer, sqlite_url: str, settings: RunnerSettings) -> None:
        self.sx, self.settings = sx, settings
        account = sx.admin.create_account("alice", {"USDT": "10000"})
        self.simex_account = account["id"]
        key = sx.admin.create_key(account["id"])
        self.journal, self.account_id, [self.bot_id] = seed(sqlite_url, [dca(base_order_type="limit")])
        self.clock = SimexTime(sx.admin.clock()["now_ms"])
        self.traded: list[float] = []
        self.filled: list[float] = []
        assert sx.exchange is not None
        sx.exchange.order_listeners.append(
            lambda order, execution, trade: self.traded.append(time.monotonic()) if execution == "TRADE" else None)

        async def factory(_a: AccountRecord) -> Venue:
            return simex_venue(sx.base_url, key["key"], key["secret"])

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
        """The bot places a resting limit buy; the market moves through it on simex;
        returns the seconds from simex's trade to the bot's step on the fill."""
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


async def test_the_stream_brings_a_fill_to_its_bot_long_before_the_poll_would(
        simex: SimexServer, sqlite_url: str) -> None:
    rig = Rig(simex, sqlite_url, RunnerSettings(poll_interval=30.0, poll_feeds=False, market_ttl=0))
    acc = await rig.start()
    try:
        assert acc.user_stream is not None
        await until(lambda: acc.user_stream is not None and acc.user_stream.subscribed, 5, "the subscription")
        latency = await rig.fill_the_base_order(acc)
        assert acc.user_stream.events >= 2  # the order's NEW and its TRADE, at least
    finally:
        await rig.runner.stop()
    print(f"fill-to-bot latency with the user-data stream (poll interval 30 s): {latency * 1000:.0f} ms")
    # the poll would have come after 30 s: well before that, it was the stream (the
    # figure itself is bench/fill_latency.py's: about 20 ms on an idle machine)
    assert latency < 10.0
    assert ws_api(simex).subscriptions() == 0  # stopping the account closed its stream


async def test_without_the_stream_the_interval_poll_brings_the_fill(simex: SimexServer, sqlite_url: str) -> None:
    rig = Rig(simex, sqlite_url, RunnerSettings(poll_interval=2.0, poll_feeds=False, market_ttl=0,
                                                user_stream=False))
    acc = await rig.start()
    try:
        assert acc.user_stream is None and ws_api(simex).connections == 0
        latency = await rig.fill_the_base_order(acc)
    finally:
        await rig.runner.stop()
    print(f"fill-to-bot latency without the stream (poll interval 2 s): {latency * 1000:.0f} ms")
    # the poll would have come after 30 s: well before that, it was the stream (the
    # figure itself is bench/fill_latency.py's: about 20 ms on an idle machine)
    assert latency < 10.0 + 1.5


async def test_a_dropped_stream_falls_back_to_polling_then_reconnects(
        simex: SimexServer, sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sealbot.engine.user_stream")
    rig = Rig(simex, sqlite_url, RunnerSettings(poll_interval=1.0, poll_feeds=False, market_ttl=0,
                                                user_stream_retry_max=1.0))
    acc = await rig.start()
    api = ws_api(simex)
    try:
        watcher = acc.user_stream
        assert watcher is not None
        await until(lambda: watcher.subscribed, 5, "the subscription")

        def refuse(*_args: Any) -> Any:
            raise _Refused(-1008, "Server is currently overloaded with other requests. Please try again "
                                  "in a few minutes.", 503)

        monkeypatch.setattr(api, "_verify", refuse)  # simex takes no new subscription for now
        assert api.drop_all() == 1
        await until(lambda: not watcher.subscribed, 5, "the watcher to see the drop")
        latency = await rig.fill_the_base_order(acc)
        assert not watcher.subscribed and watcher.sessions == 1  # the interval poll brought it
        assert latency < 1.0 + 1.5
        monkeypatch.undo()
        await until(lambda: watcher.subscribed, 10, "the watcher to subscribe again")
        assert watcher.sessions == 2 and api.subscriptions() == 1
    finally:
        await rig.runner.stop()
    downs = [r for r in caplog.records if "user-data stream down" in r.getMessage()]
    assert downs and all(r.levelno == logging.WARNING for r in downs)
    assert sum("user-data stream subscribed" in r.getMessage() for r in caplog.records) == 2


class _Refusing:
    """A ccxt.pro stand-in whose subscription the exchange keeps refusing."""

    closed = 0

    async def authenticate(self, params: dict[str, Any]) -> None:
        import ccxt

        raise ccxt.AuthenticationError("binance {\"code\":-2015}")

    async def close(self) -> None:
        _Refusing.closed += 1


async def test_the_watcher_backs_off_doubling_up_to_its_maximum_and_closes_each_try(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sealbot.engine import user_stream

    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 5:
            raise asyncio.CancelledError

    monkeypatch.setattr(user_stream.asyncio, "sleep", sleep)
    rings: list[int] = []
    watcher = user_stream.UserStreamWatcher("7", _Refusing, lambda: rings.append(1), retry_min=1.0, retry_max=4.0)
    with pytest.raises(asyncio.CancelledError):
        await watcher.run()
    assert waits == [1.0, 2.0, 4.0, 4.0, 4.0] and _Refusing.closed == 5
    assert not rings and watcher.sessions == 0 and not watcher.subscribed
    assert await user_stream.UserStreamWatcher("7", lambda: None, lambda: None).run() is None  # no stream: done


class _Subscribing:
    """A ccxt.pro stand-in whose subscription succeeds and whose order stream then ends."""

    urls = {"api": {"ws": {"ws-api": {"spot": "wss://ws-api.example/ws-api/v3"}}}}

    async def authenticate(self, params: dict[str, Any]) -> None:
        return None

    async def watch_orders(self) -> None:
        raise ConnectionError("closed by the exchange")

    async def close(self) -> None:
        return None


async def test_new_connections_past_the_exchanges_limit_are_not_dialled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Binance allows 300 new websocket connections per 5 minutes per IP: the watchers of
    a process share one count (the runner's StreamPool), and a dial past it is a failed
    try, backed off, not a connection."""
    from sealbot.engine import user_stream
    from sealbot.engine.stream_pool import StreamLimits, StreamPool

    clock = [0.0]
    pool = StreamPool(StreamLimits(max_connections=2, connection_window=60.0), monotonic=lambda: clock[0])
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds
        if len(waits) == 4:
            raise asyncio.CancelledError

    monkeypatch.setattr(user_stream.asyncio, "sleep", sleep)
    watchers = [user_stream.UserStreamWatcher(str(n), _Subscribing, lambda: None, retry_min=1.0, retry_max=60.0,
                                              dial=pool.count_dial) for n in range(2)]
    for watcher in watchers:  # two accounts: each dials, subscribes, is dropped, waits 1 s, dials again...
        with pytest.raises(asyncio.CancelledError):
            await watcher.run()
        waits.clear()
    # the window holds 2 dials: the first watcher used both before its third try
    assert [w.sessions for w in watchers] == [2, 0] and pool.dials == 2
    assert user_stream.ws_api_endpoint(_Subscribing) == "ws-api@wss://ws-api.example/ws-api/v3"
