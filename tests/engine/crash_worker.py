"""The engine as its own process, for the crash test: run one account on simex until killed.

    python crash_worker.py '<json: db_url, base_url, admin_token, key, secret, account_id>'

Prints ``ready`` once the account has reconciled and its bots run. It is meant to be
killed with SIGKILL at any moment; everything it needs after a restart is in the database.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from simex_env import simex_venue

from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.journal import AccountRecord
from sealbot.engine.runner import InProcessRunner, RunnerSettings
from sealbot.engine.store_journal import StoreJournal
from sealbot.simex.admin_client import SimexAdmin
from sealbot.store import make_session_factory
from sealbot.venues.base import Venue


class SimexClock:
    """Simex's simulated time for ``now()``; real seconds for sleeping and budgets."""

    def __init__(self, now_ms: int, speed: float) -> None:
        self.now_ms, self.speed, self.t0 = now_ms, speed, time.monotonic()

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.fromtimestamp((self.now_ms + (time.monotonic() - self.t0) * 1000 * self.speed) / 1000, UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


async def main(args: dict[str, str]) -> None:
    admin = SimexAdmin(args["base_url"], args["admin_token"])
    clock_info = admin.clock()
    admin.close()
    clock = SimexClock(int(clock_info["now_ms"]), float(clock_info["speed"]))
    journal = StoreJournal(make_session_factory(args["db_url"]))

    async def factory(_a: AccountRecord) -> Venue:
        return simex_venue(args["base_url"], args["key"], args["secret"], timeout_ms=1500)

    runner = InProcessRunner(journal, factory, guard=GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0))),
                             clock=clock, settings=RunnerSettings(poll_interval=0.2, feed_interval=0.25,
                                                                  market_ttl=2.0, resend_window=300 * clock.speed))
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: [t.print_stack(file=sys.stderr) for t in asyncio.all_tasks()])
    await runner.start_account(args["account_id"])
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
