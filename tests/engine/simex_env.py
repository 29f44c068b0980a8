"""Helpers to run the engine against a real simex over HTTP with the unmodified ccxt
Binance client: an HMAC test signer (custody's protocol, secret in its own memory),
a venue factory, and a database seeded with a user, an account and bots."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sealbot.engine.store_journal import StoreJournal
from sealbot.simex import SimexServer
from sealbot.store import UnitOfWork, make_session_factory, upgrade
from sealbot.venues.ccxt_venue import CcxtVenue


@dataclass(frozen=True)
class Handle:
    account: str
    algorithm: str = "hmac-sha256"


@dataclass
class HmacSigner:
    key: str
    secret: str = field(repr=False)

    def api_key(self, handle: Handle) -> str:
        return self.key

    def sign(self, handle: Handle, payload: bytes, request: Any, encoding: str) -> str:
        return hmac.new(self.secret.encode(), payload, hashlib.sha256).hexdigest()

    def sign_passphrase(self, handle: Handle) -> str:
        raise NotImplementedError


def simex_venue(base_url: str, key: str, secret: str, timeout_ms: int = 3000) -> CcxtVenue:
    return CcxtVenue("binance", signer=HmacSigner(key, secret), handle=Handle("1"),
                     urls={"api_base": base_url}, timeout_ms=timeout_ms)


def ticker_requests(sx: SimexServer) -> int:
    """Ticker requests simex has answered so far (its own count, every key)."""
    return sum(int(r["count"]) for r in sx.admin.requests() if str(r["path"]).startswith("/api/v3/ticker"))


class SimexTime:
    """The engine's clock set to simex's simulated time (speed 0: the test moves both)."""

    def __init__(self, now_ms: int) -> None:
        self.ms = now_ms

    def monotonic(self) -> float:
        return self.ms / 1000

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ms / 1000, UTC)

    def wall(self) -> datetime:
        return datetime.now(UTC)  # simex judges a request's freshness by real time

    async def sleep(self, seconds: float) -> None:
        import asyncio

        await asyncio.sleep(0)


class MarketClock:
    """The engine's time is simex's market time (which the test moves); sleeps are short
    real sleeps, so a source's or an ingestor's loops turn quickly."""

    def __init__(self, sx: SimexServer) -> None:
        assert sx.exchange is not None
        self.market = sx.exchange.clock

    def monotonic(self) -> float:
        import asyncio

        return asyncio.get_running_loop().time()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.market.now_ms() / 1000, UTC)

    def wall(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        import asyncio

        await asyncio.sleep(min(seconds, 0.05))


def dca(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "bot_id": "1",
        "markets": [{"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"}],
        "base_order_volume": "50", "safety_order_volume": "50", "max_safety_orders": 2,
        "safety_order_step_percentage": "0.3", "take_profit": "0.2", "base_order_type": "market",
    }
    data.update(overrides)
    return data


def seed(url: str, configs: list[dict[str, Any]]) -> tuple[StoreJournal, str, list[str]]:
    upgrade(url)
    factory = make_session_factory(url)
    with UnitOfWork(factory) as uow:
        user = uow.users.add("alice@example.org", "x")
        account = uow.accounts.add(user.id, "binance", "simex")
        ids = []
        for i, config in enumerate(configs):
            bot = uow.bots.add(user.id, "dca", f"dca {i}", config, account_id=account.id)
            uow.bots.set_status(user.id, bot.id, "running")
            ids.append(str(bot.id))
        account_id = str(account.id)
    return StoreJournal(factory), account_id, ids


def resting_order(sx: SimexServer, key: str, client_id: str, symbol: str = "BTCUSDT") -> int:
    """A limit buy at half the market price, resting on simex (placed in its core: no
    request, so it costs a test nothing). Returns simex's order id."""
    from decimal import Decimal

    from sealbot.simex.core import OrderRequest

    ex = sx.exchange
    assert ex is not None
    ex.sync()
    price = (ex.price(symbol) / 2).quantize(ex.markets[symbol].tick)
    order = ex.place(ex.keys[key], OrderRequest(symbol, "BUY", "LIMIT", "GTC", Decimal("0.001"), None, price,
                                                None, client_id))
    return order.id


def record_trades(sx: SimexServer, order_id: int, times_ms: list[int]) -> list[int]:
    """Trades of simex order ``order_id`` written into its account's history at
    ``times_ms`` (ascending, after any trade already there): thousands of trades in
    milliseconds, where placing and matching orders over HTTP would take minutes. Ids
    come from simex's own counter, so they grow with time as Binance's do. Balances and
    the order's state are left alone: this is history for the paging tests, not a fill
    the matching engine made. Returns the trade ids."""
    from sealbot.simex.core import Trade

    ex = sx.exchange
    assert ex is not None
    with ex.lock:
        order = ex.orders[order_id]
        price = order.price
        assert price is not None
        spec = ex.markets[order.symbol]
        ids = []
        for at in times_ms:
            qty = order.orig_qty
            trade = Trade(next(ex._trade_ids), order.id, order.account_id, order.symbol, order.side, price, qty,
                          price * qty, qty * 0, spec.base, at, True)
            ex.trades_by_account[order.account_id].append(trade)
            ids.append(trade.id)
    return ids


@dataclass
class KucoinHmacSigner(HmacSigner):
    """``HmacSigner`` for KuCoin: base64 signatures and a signed passphrase."""

    passphrase: str = field(default="", repr=False)

    def sign(self, handle: Handle, payload: bytes, request: Any, encoding: str) -> str:
        import base64

        digest = hmac.new(self.secret.encode(), payload, hashlib.sha256).digest()
        return base64.b64encode(digest).decode() if encoding == "base64" else digest.hex()

    def sign_passphrase(self, handle: Handle) -> str:
        return self.sign(handle, self.passphrase.encode(), None, "base64")


def simex_kucoin_venue(base_url: str, key: str, secret: str, passphrase: str, timeout_ms: int = 3000) -> CcxtVenue:
    return CcxtVenue("kucoin", signer=KucoinHmacSigner(key, secret, passphrase), handle=Handle("1"),
                     urls={"api_base": base_url}, timeout_ms=timeout_ms)
