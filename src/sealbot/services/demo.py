"""The demo: a throwaway instance trading on simex with a custody-born key.

``sealbot demo`` (what ``make demo`` runs) starts simex itself (the CLI may import it;
services may not) and hands over its URL and a way to register a public key. This
module then does what a new user would: registers, links an exchange account whose
Ed25519 key is generated inside custody and permission-checked, creates a DCA bot and
a grid bot with the exchange's own market rules, starts the engine and serves the web
app.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sealbot.config import Settings, load_settings
from sealbot.domain.market import Pair
from sealbot.engine.app import EngineOptions
from sealbot.engine.clock import Clock, SystemClock
from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.journal import AccountRecord
from sealbot.services.accounts import link_generated_key, register_user
from sealbot.services.bots import create_bot, market_spec
from sealbot.services.instance import init_instance
from sealbot.services.platform import Platform, open_platform
from sealbot.services.serving import serve

DEMO_EMAIL = "demo@sealbot.local"
DEMO_PAIR = Pair("BTC", "USDT")


@dataclass(frozen=True, slots=True)
class DemoInstance:
    platform: Platform
    user_id: int
    password: str
    account_id: int
    bot_ids: tuple[int, ...]


def demo_settings(root: Path) -> Settings:
    """An instance under ``root``: data and KEK in separate directories, as in production."""
    return load_settings(data_dir=root / "data", config_dir=root / "config", database_url="", log_level="WARNING")


async def prepare_demo(settings: Settings, simex_url: str, register_public_key: Callable[[str], str]) -> DemoInstance:
    """Everything up to (not including) running: user, linked account, two bots."""
    init_instance(settings)
    platform = open_platform(settings, exchange_urls={"binance": {"api_base": simex_url}}, egress_ip="127.0.0.1")
    password = secrets.token_urlsafe(12)
    user_id = register_user(platform, DEMO_EMAIL, password)
    account = await link_generated_key(platform, user_id, "binance", "demo on simex", register_public_key,
                                       allowed_pairs=[DEMO_PAIR.symbol], is_paper=True)
    spec = await market_spec(platform, user_id, account.id, DEMO_PAIR)
    price = await _last_price(platform, user_id, account.id)
    dca = create_bot(platform, user_id, account.id, "dca", "Demo DCA", {
        "markets": [spec], "base_order_volume": "100", "safety_order_volume": "100", "max_safety_orders": 3,
        "safety_order_step_percentage": "0.3", "martingale_volume_coefficient": "1.5", "take_profit": "0.3",
        "base_order_type": "market",
    }, start=True)
    grid = create_bot(platform, user_id, account.id, "grid", "Demo grid", {
        "market": spec, "lower_price": str((price * Decimal("0.98")).quantize(Decimal(1))),
        "upper_price": str((price * Decimal("1.02")).quantize(Decimal(1))), "grids_quantity": 10,
        "investment": "2000", "order_currency_type": "quote",
    }, start=True)
    return DemoInstance(platform, user_id, password, account.id, (dca.id, grid.id))


async def _last_price(platform: Platform, owner_id: int, account_id: int) -> Decimal:
    venue = await platform.venue_for(AccountRecord(str(account_id), str(owner_id), "binance"))
    try:
        last = (await venue.fetch_ticker(DEMO_PAIR)).last
    finally:
        await venue.close()
    if last is None:
        raise RuntimeError("simex reported no price for the demo pair")
    return last


class AcceleratedClock(SystemClock):
    """The simulated exchange's time: it runs ``speed`` times faster than the wall clock
    from ``start``, so the engine sees candles close as simex closes them. Budgets and
    sleeps stay in real time (inherited), as they would against a real exchange."""

    def __init__(self, start: datetime, speed: float) -> None:
        self._start, self._speed, self._real_start = start, speed, time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._real_start) * self._speed)


async def serve_demo(demo: DemoInstance, port: int, clock: Clock, announce: Callable[[str], Any]) -> None:
    """Run the engine on the demo instance and serve the web app until interrupted."""

    def started() -> None:
        announce(f"dashboard: http://127.0.0.1:{port}/  (API schema: http://127.0.0.1:{port}/api/openapi.json)")
        announce(f"demo login: {DEMO_EMAIL} / {demo.password}")

    # simex's replayed market reports no 24 h volume worth the guard's default floor
    options = EngineOptions(guard=GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0))))
    await serve(demo.platform, host="127.0.0.1", port=port, options=options, clock=clock, on_started=started,
                log_level="warning")


def run_demo(simex_url: str, register_public_key: Callable[[str], str], *, simex_now: Callable[[], datetime],
             speed: float, root: Path, port: int, announce: Callable[[str], Any]) -> None:
    """``simex_now`` reads the simulated exchange's clock once, to pace the engine's."""
    settings = demo_settings(root)

    async def main() -> None:
        demo = await prepare_demo(settings, simex_url, register_public_key)
        announce(f"demo instance in {root}: account {demo.account_id}, bots {', '.join(map(str, demo.bot_ids))}")
        await serve_demo(demo, port, AcceleratedClock(simex_now(), speed), announce)

    asyncio.run(main())
