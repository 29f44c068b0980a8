"""How many orders per second simex takes and fills through the unmodified async ccxt client.

Starts simex in a separate process (``run_simex``, manual clock), then with
``ccxt.async_support.binance`` (rate limiter off: we measure the server):

1. places N resting LIMIT orders with C in flight at once  -> placed/s
2. places N MARKET orders (each filled on arrival)         -> placed+filled/s
3. places N LIMIT buys a little below the price, advances the replay clock
   until all have filled, and reads them back with fetch_my_trades -> fills/s

Usage: .venv/bin/python bench/simex.py [--orders 2000] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import socket
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import ccxt.async_support as accxt
import httpx

from sealbot.simex.admin_client import SimexAdmin


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(port: int, token: str) -> subprocess.Popen[bytes]:
    code = ("from sealbot.simex import run_simex; "
            f"run_simex(port={port}, speed=0, admin_token={token!r}, weight_limit=10**9, log_level='warning')")
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v3/ping", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("simex did not start")


async def _gather_limited(factories: list[Any], concurrency: int) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def run(factory: Any) -> Any:
        async with gate:
            return await factory()

    return await asyncio.gather(*(run(f) for f in factories))


async def main(orders: int, concurrency: int) -> None:
    port, token = _free_port(), secrets.token_urlsafe(16)
    proc = _start(port, token)
    base = f"http://127.0.0.1:{port}"
    admin = SimexAdmin(base, token)
    try:
        account = admin.create_account("bench", {"USDT": "100000000", "BTC": "1000"})
        key = admin.create_key(account["id"])
        exchange = accxt.binance({"apiKey": key["key"], "secret": key["secret"], "enableRateLimit": False,
                                  "timeout": 30000})
        exchange.urls["test"] = {g: base + urlsplit(u).path for g, u in exchange.urls["api"].items()
                                 if isinstance(u, str)}
        exchange.set_sandbox_mode(True)
        await exchange.load_markets()
        price = (await exchange.fetch_ticker("BTC/USDT"))["last"]

        t0 = time.perf_counter()
        await _gather_limited([lambda: exchange.create_order("BTC/USDT", "limit", "buy", 0.001,
                                                             round(price * 0.5, 2))] * orders, concurrency)
        placed = orders / (time.perf_counter() - t0)
        await exchange.cancel_all_orders("BTC/USDT")

        t0 = time.perf_counter()
        await _gather_limited([lambda: exchange.create_order("BTC/USDT", "market", "buy", 0.001)] * orders,
                              concurrency)
        market = orders / (time.perf_counter() - t0)

        floor = round(price * 0.995, 2)
        await _gather_limited([lambda: exchange.create_order("BTC/USDT", "limit", "buy", 0.001, floor)] * orders,
                              concurrency)
        t0 = time.perf_counter()
        steps, matching = 0, 0.0
        while (await exchange.fetch_open_orders("BTC/USDT")) and steps < 2000:
            step_start = time.perf_counter()
            admin.set_clock(advance_seconds=3600)  # the server replays the hour and fills inside this call
            matching += time.perf_counter() - step_start
            steps += 1
        fill_time = time.perf_counter() - t0
        filled = [o for o in admin.orders(account["id"]) if o["status"] == "FILLED" and o["type"] == "LIMIT"]
        print(f"simex bench: {orders} orders per phase, {concurrency} in flight, async ccxt binance, "
              f"server in its own process (python {sys.version.split()[0]})")
        print(f"  limit orders placed:          {placed:8.0f} orders/s")
        print(f"  market orders placed+filled:  {market:8.0f} orders/s")
        print(f"  resting limits filled by replay: {len(filled)} in {steps} clock steps of 1 h; "
              f"{matching:.2f} s inside the clock calls ({len(filled) / matching:.0f} fills/s), "
              f"{fill_time:.2f} s including fetch_open_orders polling")
        trades = await exchange.fetch_my_trades("BTC/USDT", params={"limit": 1000})
        print(f"  fetch_my_trades sees the fills: last {len(trades)} trades read back")
        await exchange.close()
    finally:
        admin.close()
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.orders, args.concurrency))
