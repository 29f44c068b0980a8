"""Fill-to-bot latency with and without the exchange's user-data stream.

Run: ``.venv/bin/python bench/fill_latency.py [samples] [--exchange binance|kucoin]``
(default 5 per mode, Binance). ``--exchange kucoin`` trades through simex's KuCoin dialect:
the stream is KuCoin's private websocket (a bullet-private token, /spotMarket/tradeOrders).

Each sample: a fresh account on one simex (speed 0) with one DCA bot whose base order is
a resting limit buy; a background ``InProcessRunner`` (real ccxt over loopback, HMAC
signer in process); the simex clock is moved a minute at a time until the replayed market
trades through the order. The latency is from simex's matching engine making the trade
(a listener on its core, same process) to the bot stepping on its ``OrderFilled``
(``AccountRunner.on_commands``). Modes: the stream on with a 30 s poll interval (so only
the stream can explain a fast fill), and the stream off with the default 2 s interval.
The trade is made at a random phase of the poll cycle (a random wait first), so without
the stream the latency spreads over 0-2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sealbot.domain import Candle, CandleClosed, Event, OrderFilled, Pair
from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.journal import AccountRecord
from sealbot.engine.runner import InProcessRunner, RunnerSettings
from sealbot.engine.store_journal import StoreJournal
from sealbot.simex import SimexServer
from sealbot.store import UnitOfWork, make_session_factory, upgrade
from sealbot.venues.base import Venue
from sealbot.venues.ccxt_venue import CcxtVenue

PAIR = Pair("BTC", "USDT")
DCA = {"bot_id": "1", "markets": [{"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001",
                                   "min_notional": "5"}],
       "base_order_volume": "50", "safety_order_volume": "50", "max_safety_orders": 2,
       "safety_order_step_percentage": "0.3", "take_profit": "0.2", "base_order_type": "limit"}


@dataclass(frozen=True)
class _Handle:
    account: str
    algorithm: str = "hmac-sha256"


@dataclass
class _Signer:
    """custody's signer protocol with the secret in its own memory (a bench, not custody)."""

    key: str
    secret: str = field(repr=False)
    passphrase: str | None = field(default=None, repr=False)  # KuCoin's

    def api_key(self, handle: Any) -> str:
        return self.key

    def sign(self, handle: Any, payload: bytes, request: Any, encoding: str) -> str:
        digest = hmac.new(self.secret.encode(), payload, hashlib.sha256)
        return base64.b64encode(digest.digest()).decode() if encoding == "base64" else digest.hexdigest()

    def sign_passphrase(self, handle: Any) -> str:
        if self.passphrase is None:
            raise NotImplementedError
        return self.sign(handle, self.passphrase.encode(), None, "base64")


class _Clock:
    """The engine's clock on simex's market time (speed 0: the bench moves both)."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def monotonic(self) -> float:
        return self.ms / 1000

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ms / 1000, UTC)

    def wall(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


async def _until(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.005)


PASSPHRASE = "bench passphrase"


async def one_fill(sx: SimexServer, db: Path, settings: RunnerSettings, exchange: str = "binance") -> float:
    account = sx.admin.create_account("bench", {"USDT": "10000"})
    key = sx.admin.create_key(account["id"], passphrase=PASSPHRASE if exchange == "kucoin" else None)
    url = f"sqlite:///{db}"
    upgrade(url)
    factory = make_session_factory(url)
    with UnitOfWork(factory) as uow:
        user = uow.users.add("bench@example.org", "x")
        acct = uow.accounts.add(user.id, exchange, "simex")
        bot = uow.bots.add(user.id, "dca", "dca", DCA, account_id=acct.id)
        uow.bots.set_status(user.id, bot.id, "running")
        account_id, bot_id = str(acct.id), str(bot.id)
    clock = _Clock(sx.admin.clock()["now_ms"])
    traded: list[float] = []
    filled: list[float] = []
    ex = sx.exchange
    assert ex is not None

    def listener(order: Any, execution: str, trade: Any) -> None:
        if execution == "TRADE" and order.account_id == account["id"]:
            traded.append(time.monotonic())

    ex.order_listeners.append(listener)

    async def venues(_a: AccountRecord) -> Venue:
        passphrase = PASSPHRASE if exchange == "kucoin" else None
        return CcxtVenue(exchange, signer=_Signer(key["key"], key["secret"], passphrase), handle=_Handle("1"),
                         urls={"api_base": sx.base_url})

    runner = InProcessRunner(StoreJournal(factory), venues, guard=GuardPolicy(GuardLimits(
        min_quote_volume_24h=Decimal(0))), clock=clock, settings=settings)
    try:
        await runner.start_account(account_id)
        acc = runner.accounts[account_id]

        def on_commands(bot: str, event: Event, commands: int) -> None:
            if isinstance(event, OrderFilled):
                filled.append(time.monotonic())

        acc.on_commands = on_commands
        if acc.user_stream is not None:
            await _until(lambda: acc.user_stream is not None and acc.user_stream.subscribed, 10)
        price = ex.price("BTCUSDT")
        candle = Candle(PAIR, "1m", clock.now() - timedelta(minutes=1), price, price, price, price, Decimal(1))
        acc._enqueue(bot_id, CandleClosed(candle))
        await _until(lambda: ex.open_orders(account["id"]), 10)
        await asyncio.sleep(random.uniform(0, settings.poll_interval % 10))  # the trade at any phase of the poll
        while not traded:  # in a thread: the runner's tasks keep running meanwhile
            clock.ms = (await asyncio.to_thread(sx.admin.set_clock, advance_seconds=60))["now_ms"]
        await _until(lambda: filled, 2 * settings.poll_interval + 5)
        return filled[0] - traded[0]
    finally:
        ex.order_listeners.remove(listener)
        await runner.stop()


async def main(samples: int, exchange: str = "binance") -> None:
    modes = {"with the stream (poll interval 30 s)": RunnerSettings(poll_interval=30.0, poll_feeds=False,
                                                                      market_ttl=0),
             "without it (poll interval 2 s)": RunnerSettings(poll_interval=2.0, poll_feeds=False, market_ttl=0,
                                                              user_stream=False)}
    with SimexServer(speed=0) as sx, tempfile.TemporaryDirectory() as tmp:
        for mode, (name, settings) in enumerate(modes.items()):
            ms = [1000 * await one_fill(sx, Path(tmp) / f"{mode}-{i}.db", settings, exchange)
                  for i in range(samples)]
            print(f"{exchange} fill-to-bot {name}: median {statistics.median(ms):.0f} ms, min {min(ms):.0f}, "
                  f"max {max(ms):.0f} ({samples} fills)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Fill-to-bot latency with and without the user-data stream.")
    parser.add_argument("samples", nargs="?", type=int, default=5, help="fills per mode (default 5)")
    parser.add_argument("--exchange", choices=("binance", "kucoin"), default="binance",
                        help="simex dialect the account trades through (default binance)")
    args = parser.parse_args(sys.argv[1:])
    asyncio.run(main(args.samples, args.exchange))
