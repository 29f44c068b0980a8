"""What an attacker holding a linked account's leaked key does, and what the watchdog
records of it: shared by the leak tests of the embedded engine and the scale-out workers."""

from __future__ import annotations

import ccxt.async_support as ccxt_async
import sqlalchemy as sa

from sealbot.services.platform import Platform
from sealbot.simex import SimexServer
from sealbot.store.models import AlertRow


async def thief_order(simex: SimexServer, key: str, secret: str, client_id: str) -> None:
    """Plain ccxt with the stolen key, straight to simex, with a client id of the thief's
    choosing (a forged sealbot-looking one, say)."""
    thief = ccxt_async.binance({"apiKey": key, "secret": secret,
                                "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}})
    thief.urls["api"] = {k: v.replace("https://api.binance.com", simex.base_url)
                         for k, v in thief.urls["api"].items() if isinstance(v, str)}
    try:
        await thief.create_order("BTC/USDT", "limit", "buy", 0.002, 40000, {"newClientOrderId": client_id})
    finally:
        await thief.close()


def foreign_order_alerts(platform: Platform) -> list[str]:
    """The messages of the watchdog's foreign-order alerts, oldest first."""
    with platform.uow() as uow:
        return list(uow.session.scalars(sa.select(AlertRow.message).where(AlertRow.code == "watchdog.foreign_order")
                                        .order_by(AlertRow.id)))
