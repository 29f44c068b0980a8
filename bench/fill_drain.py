"""How many polls and requests the order manager takes to read a backlog of trades.

Run: ``.venv/bin/python bench/fill_drain.py [exchange] [trades] [max_pages]``
(defaults: ``binance 200000 50``; exchange ``binance`` or ``kucoin``).

One simex (speed 0) with one account; six resting limit orders placed through the order
manager and polled once; then, as if the engine were down, ``trades`` trades are written
into the account's history on the pair (30 s apart: a busy account), five of them filling
five of the orders (spread from the oldest to the newest), the sixth order left open so
the drain must reach the present. A fresh ``OrderManager`` (the restart) reconciles and
then polls until no pair drains any more. Printed: requests per call (the reconcile
first), polls after the reconcile, total requests (and Binance weight, 20 a page), the
wall time over loopback, and whether every fill is in the journal exactly once.
``max_pages`` sets ``venues.trade_paging.MAX_PAGES`` (50 in production).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sealbot.domain import ClientOrderId, Order, OrderType, Pair, Side
from sealbot.engine.journal import AccountRecord, MemoryJournal
from sealbot.engine.orders import OrderManager
from sealbot.simex import SimexServer
from sealbot.venues import trade_paging
from sealbot.venues.ccxt_venue import CcxtVenue

BTC = Pair("BTC", "USDT")
DAY_MS = 86_400_000
PATH = {"binance": "/api/v3/myTrades", "kucoin": "/api/v1/fills"}


@dataclass(frozen=True)
class _Handle:
    account: str
    algorithm: str = "hmac-sha256"


@dataclass
class _Signer:
    key: str
    secret: str = field(repr=False)
    passphrase: str = field(default="", repr=False)
    base64: bool = False

    def api_key(self, handle: _Handle) -> str:
        return self.key

    def sign(self, handle: _Handle, payload: bytes, request: Any, encoding: str) -> str:
        import base64

        digest = hmac.new(self.secret.encode(), payload, hashlib.sha256).digest()
        return base64.b64encode(digest).decode() if encoding == "base64" else digest.hex()

    def sign_passphrase(self, handle: _Handle) -> str:
        return self.sign(handle, self.passphrase.encode(), None, "base64")


class _SimexClock:
    """The engine's clock on simex's simulated time (speed 0: the bench moves both)."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def monotonic(self) -> float:
        return self.ms / 1000

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ms / 1000, UTC)

    def wall(self) -> datetime:
        return datetime.now(UTC)  # simex judges a request's freshness by real time

    async def sleep(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)


def _noise_order(sx: SimexServer, key: str) -> int:
    """A resting order placed on simex under a client id sealbot never made."""
    from sealbot.simex.core import OrderRequest

    ex = sx.exchange
    assert ex is not None
    ex.sync()
    price = (ex.price("BTCUSDT") / 2).quantize(ex.markets["BTCUSDT"].tick)
    return ex.place(ex.keys[key], OrderRequest("BTCUSDT", "BUY", "LIMIT", "GTC", Decimal("0.001"), None, price,
                                               None, "manual-1")).id


def _record(sx: SimexServer, order_id: int, times_ms: list[int]) -> list[int]:
    """Trades of simex order ``order_id`` written straight into its account's history."""
    from sealbot.simex.core import Trade

    ex = sx.exchange
    assert ex is not None
    with ex.lock:
        order = ex.orders[order_id]
        assert order.price is not None
        spec = ex.markets[order.symbol]
        ids = []
        for at in times_ms:
            trade = Trade(next(ex._trade_ids), order.id, order.account_id, order.symbol, order.side, order.price,
                          order.orig_qty, order.price * order.orig_qty, order.orig_qty * 0, spec.base, at, True)
            ex.trades_by_account[order.account_id].append(trade)
            ids.append(trade.id)
    return ids


async def main(exchange: str, trades: int, max_pages: int) -> None:
    trade_paging.MAX_PAGES = max_pages
    start = (int(time.time() * 1000) - (trades * 30_000 + 2 * DAY_MS)) // 60_000 * 60_000
    with SimexServer(speed=0, start_ms=start) as sx:
        account = sx.admin.create_account("drain", {"USDT": "1000000", "BTC": "10"})
        key = sx.admin.create_key(int(account["id"]), passphrase="drain" if exchange == "kucoin" else None)
        signer = _Signer(key["key"], key["secret"], "drain")
        venue = CcxtVenue(exchange, signer=signer, handle=_Handle("1"), urls={"api_base": sx.base_url})
        clock = _SimexClock(start)
        journal = MemoryJournal()
        record = AccountRecord("1", "bench", exchange)
        try:
            before = OrderManager(record, venue, journal, clock=clock)
            last = (await venue.fetch_ticker(BTC)).last
            assert last is not None
            levels = [Order(ClientOrderId("g1", 1, f"l{i}"), BTC, Side.BUY, OrderType.LIMIT, Decimal("0.001"),
                            (last / 2).quantize(Decimal("0.01"))) for i in range(6)]
            for level in levels:
                with journal.transaction() as tx:
                    before.journal_new(tx, "g1", level)
                await before.send(level.client_id)
            await before.poll()
            on_simex = {o["client_id"]: o["id"] for o in sx.admin.orders()}

            # the engine is down: the account trades on; five levels fill among the trades
            noise = _noise_order(sx, key["key"])
            times = [start + 3_600_000 + i * 30_000 for i in range(trades)]
            where = [trades * k // 5 + 3 for k in range(5)]
            expected: dict[ClientOrderId, str] = {}
            done = 0
            for level, at in zip(levels[:5], where, strict=True):
                _record(sx, noise, times[done:at])
                [trade] = _record(sx, on_simex[level.client_id.text], [times[at]])
                expected[level.client_id], done = str(trade), at + 1
            _record(sx, noise, times[done:])
            clock.ms = times[-1] + 60_000
            sx.admin.set_clock(set_ms=clock.ms)

            after = OrderManager(record, venue, journal, clock=clock)  # the restart
            sx.admin.reset_requests()
            began = time.perf_counter()
            per_call: list[int] = []

            def counted(observations: list[Any]) -> None:
                with journal.transaction() as tx:
                    for observation in observations:
                        after.apply(tx, observation)
                per_call.append(sx.admin.request_count(PATH[exchange]) - sum(per_call))

            counted(await after.reconcile())
            polls = 0
            while after.drains:
                clock.ms += 2_000
                counted(await after.poll())
                polls += 1
            elapsed = time.perf_counter() - began
            with journal.transaction() as tx:
                books = {c: [f.trade_id for f in tx.fills_of(c)] for c in expected}
            once = all(books[c] == [t] for c, t in expected.items())
            total = sum(per_call)
            weight = f" ({20 * total:,} weight)" if exchange == "binance" else ""
            print(f"{exchange}: {trades:,} trades since the oldest open order, MAX_PAGES={max_pages}")
            print(f"  requests per call (reconcile, then polls): {per_call}")
            print(f"  polls after the reconcile: {polls}; requests: {total:,}{weight}; {elapsed:.1f} s over loopback")
            print(f"  every fill in the books exactly once: {once}")
        finally:
            await venue.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(args[0] if args else "binance", int(args[1]) if len(args) > 1 else 200_000,
                     int(args[2]) if len(args) > 2 else 50))
