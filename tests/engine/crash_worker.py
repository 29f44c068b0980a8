"""The engine as its own process, for the crash test: run accounts on simex until killed.

    python crash_worker.py '<json>'      # one engine process (run until killed)
    python crash_worker.py --zygote      # a fork server: one engine per JSON line on stdin

The JSON names ``db_url``, ``base_url``, ``admin_token`` and ``accounts`` (a list of
``{"account_id", "key", "secret"}``). The engine prints ``ready <pid>`` once every account
has reconciled and its bots run. It is meant to be killed with SIGKILL at any moment;
everything it needs after a restart is in the database.

Why a fork server: importing sealbot, ccxt and SQLAlchemy takes seconds on a loaded
machine, and the crash test restarts the engine dozens of times. The zygote imports once
and forks a fresh engine process per line (it prints ``forked <pid>``); the engine child
opens its own database connections, event loop and HTTP sessions after the fork, so it
is exactly what a cold start would run, minus the imports. The zygote ignores SIGCHLD, so
a killed engine is reaped at once and its pid disappears.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from simex_env import simex_venue

from sealbot.engine.budget import Budget, Budgets, RateLimit
from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.journal import AccountRecord
from sealbot.engine.runner import InProcessRunner, RunnerSettings, VenueFactory
from sealbot.engine.store_journal import StoreJournal
from sealbot.simex.admin_client import SimexAdmin
from sealbot.store import make_session_factory
from sealbot.venues.base import Venue
from sealbot.venues.ccxt_venue import CcxtVenue

RECV_WINDOW_MS = 3000


class SimexClock:
    """Simex's simulated time for ``now()``; real seconds for sleeping and budgets."""

    def __init__(self, now_ms: int, speed: float) -> None:
        self.now_ms, self.speed, self.t0 = now_ms, speed, time.monotonic()

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.fromtimestamp((self.now_ms + (time.monotonic() - self.t0) * 1000 * self.speed) / 1000, UTC)

    def wall(self) -> datetime:
        return datetime.now(UTC)  # simex judges a request's freshness by real time

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ShortWindowBudgets(Budgets):
    """The test's simex lifts the request-weight and order limits (many bots, many deals
    per second); the budgets keep working, on one-second windows, so a 429 blocks the
    IP or account for the rest of that second instead of the rest of the minute."""

    def for_ip(self, ip: str) -> Budget:
        if ip not in self._ip:
            self._ip[ip] = Budget(f"ip {ip}", [RateLimit(100_000, 1.0)], self.clock)
        return self._ip[ip]

    def for_account(self, account: str) -> Budget:
        if account not in self._account:
            self._account[account] = Budget(f"account {account}", [RateLimit(10_000, 1.0)], self.clock)
        return self._account[account]


def simex_settings(speed: float) -> RunnerSettings:
    """The runner's settings on simex at ``speed``: fast polls, and the resend and
    in-flight windows in simex's accelerated time."""
    return RunnerSettings(poll_interval=0.2, feed_interval=0.25, market_ttl=2.0, resend_window=300 * speed,
                          in_flight_window=(RECV_WINDOW_MS / 1000 + 2) * speed)


def venue_factory(args: dict[str, Any]) -> VenueFactory:
    """Each account's ccxt Binance client on simex, paced by the engine's budgets only."""
    keys = {str(a["account_id"]): a for a in args["accounts"]}

    async def factory(account: AccountRecord) -> Venue:
        k = keys[account.id]
        venue: CcxtVenue = simex_venue(args["base_url"], k["key"], k["secret"], timeout_ms=1500)
        venue.exchange.enableRateLimit = False  # the engine's own budgets pace the requests
        # a signed request stays executable for recvWindow (ccxt's default is 10 s); the
        # engine must not re-send an unanswered order before that has passed
        venue.exchange.options["recvWindow"] = RECV_WINDOW_MS
        return venue

    return factory


def simex_clock(args: dict[str, Any]) -> SimexClock:
    admin = SimexAdmin(args["base_url"], args["admin_token"])
    clock_info = admin.clock()
    admin.close()
    return SimexClock(int(clock_info["now_ms"]), float(clock_info["speed"]))


def dump_tasks_on_usr1() -> None:
    """kill -USR1 <pid>: where is a stuck engine waiting?"""

    def dump_tasks() -> None:
        for task in asyncio.all_tasks():
            task.print_stack(file=sys.stderr)

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks)


async def main(args: dict[str, Any]) -> None:
    clock = simex_clock(args)
    journal = StoreJournal(make_session_factory(args["db_url"]))
    keys = [str(a["account_id"]) for a in args["accounts"]]
    factory = venue_factory(args)

    runner = InProcessRunner(journal, factory, guard=GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0))),
                             clock=clock, budgets=ShortWindowBudgets(clock), settings=simex_settings(clock.speed))
    dump_tasks_on_usr1()
    await asyncio.gather(*(runner.start_account(a) for a in keys))
    print(f"ready {os.getpid()}", flush=True)
    await asyncio.Event().wait()


def zygote(engine: Callable[[dict[str, Any]], Coroutine[Any, Any, None]] = main) -> None:
    """Fork one ``engine`` per line of JSON on stdin; the children run until killed."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    print("zygote ready", flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        args = json.loads(line)
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.close(0)
            try:
                asyncio.run(engine(args))
            except BaseException:
                traceback.print_exc()
                sys.stderr.flush()
            os._exit(1)
        print(f"forked {pid}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--zygote":
        zygote()
    else:
        asyncio.run(main(json.loads(sys.argv[1])))
