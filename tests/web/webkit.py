"""Helpers for the web tests: HTTP clients that feed the secret-leak scan, sign-up with 2FA, simex keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import httpx

from sealbot.services.platform import Platform
from sealbot.simex import SimexServer

PASSWORD = "correct horse battery staple"


@dataclass
class LeakScan:
    """Responses seen, secrets that must never appear, and once-shown secrets."""

    texts: list[str] = field(default_factory=list)
    never: set[str] = field(default_factory=set)
    once: set[str] = field(default_factory=set)

    def record(self, response: httpx.Response) -> None:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items())
        self.texts.append(headers + "\n\n" + response.content.decode("utf-8", "replace"))
        path = response.request.url.path
        if response.request.method == "POST" and response.is_success and path.startswith("/api/v1/notifications") \
                and (path == "/api/v1/notifications" or path.endswith("/secret")) and response.json().get("secret"):
            self.once.add(response.json()["secret"])  # a webhook's signing key: in this response only

    def check(self) -> None:
        for secret in self.never:
            hits = sum(secret in t for t in self.texts)
            assert hits == 0, f"a registered secret appeared in {hits} response(s)"
        for secret in self.once:
            hits = sum(secret in t for t in self.texts)
            assert hits <= 1, f"a show-once secret appeared in {hits} responses"


class CodeClock(Protocol):
    """The signer's clock for two-factor codes (``tests/conftest.py``'s ``TotpClock``)."""

    def tick(self, steps: int = 1) -> None: ...

    def code(self, secret: str) -> str: ...


class Clients:
    """Makes independent HTTP clients (one per simulated browser or script); ``clock`` is
    the signer's two-factor clock, which the users' authenticator apps follow."""

    def __init__(self, app: object, leaks: LeakScan, clock: CodeClock) -> None:
        self.app, self.leaks, self.clock = app, leaks, clock
        self._open: list[httpx.AsyncClient] = []

    def new(self, **kwargs: object) -> httpx.AsyncClient:
        async def hook(response: httpx.Response) -> None:
            await response.aread()
            self.leaks.record(response)

        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),  # type: ignore[arg-type]
                                   base_url="http://testserver", event_hooks={"response": [hook]}, **kwargs)
        self._open.append(client)
        return client

    async def close(self) -> None:
        for client in self._open:
            await client.aclose()


@dataclass
class User:
    client: httpx.AsyncClient
    user_id: int
    email: str
    csrf: str
    clock: CodeClock
    totp_secret: str | None = None

    def code(self) -> str:
        """The code the user's authenticator app shows now (good once)."""
        assert self.totp_secret is not None
        return self.clock.code(self.totp_secret)

    def next_code(self) -> str:
        """The next step's code, 30 s later: what a user types for a second 2FA action."""
        self.clock.tick()
        return self.code()


async def signup(http: Clients, email: str, *, two_factor: bool = True) -> User:
    """Register and log in through the API; optionally enable 2FA (and log in again with it)."""
    client = http.new()
    r = await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    user = User(client, r.json()["user_id"], email, r.json()["csrf_token"], http.clock)
    client.headers["X-CSRF-Token"] = user.csrf
    if two_factor:
        r = await client.post("/api/v1/auth/2fa/setup")
        assert r.status_code == 200, r.text
        user.totp_secret = r.json()["secret"]
        http.leaks.once.add(user.totp_secret)
        r = await client.post("/api/v1/auth/2fa/confirm", json={"code": user.code()})
        assert r.status_code == 200, r.text
        for code in r.json()["recovery_codes"]:
            http.leaks.once.add(code)
    return user


def simex_key(simex: SimexServer, *, balances: dict[str, str] | None = None,
              **kwargs: object) -> tuple[str, str]:
    account = simex.admin.create_account("web", balances or {"USDT": "1000"})
    created = simex.admin.create_key(int(account["id"]), **kwargs)  # type: ignore[arg-type]
    return str(created["key"]), str(created["secret"])


async def linked_simex_account(platform: Platform, simex: SimexServer, leaks: LeakScan, user_id: int) -> int:
    """A simex key linked for ``user_id`` through the service (no 2FA session needed):
    bots that run need an account."""
    from sealbot.custody.secrets import ApiCredentials
    from sealbot.services.accounts import link_account

    key, secret = simex_key(simex, ip_whitelist=["127.0.0.1"])
    leaks.never.add(secret)
    return (await link_account(platform, user_id, "binance", "simex", ApiCredentials(key, secret))).id


async def linked_user(http: Clients, simex: SimexServer, email: str) -> tuple[User, int]:
    """A new user with a simex key linked through the API: (the user, the account id)."""
    user = await signup(http, email)
    key, secret = simex_key(simex, ip_whitelist=["127.0.0.1"])
    http.leaks.never.add(secret)
    r = await user.client.post("/api/v1/accounts", json={"exchange": "binance", "label": "main", "api_key": key,
                                                         "api_secret": secret})
    assert r.status_code == 201, r.text
    return user, r.json()["id"]


DCA_CONFIG = {
    "markets": [{"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"}],
    "base_order_volume": "100", "safety_order_volume": "100", "max_safety_orders": 3,
    "safety_order_step_percentage": "0.5", "take_profit": "0.5", "base_order_type": "market",
}
SIGNAL_CONFIG = {
    "markets": [{"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"}],
    "amount": "50",
}


@dataclass(frozen=True)
class Seeded:
    account_id: int
    bot_id: int
    deal_no: int
    closed_no: int
    alert_id: int
    client_order_id: str


def seed_trading(platform: Platform, owner_id: int, bot_id: int, account_id: int) -> Seeded:
    """What the engine would have written: an open and a closed deal, an order with a
    fill, an alert (written straight through the store, as the engine does)."""
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from sealbot.domain import (
        ClientOrderId,
        CloseReason,
        Deal,
        Direction,
        Fill,
        Order,
        OrderStatus,
        OrderType,
        Pair,
        Side,
    )

    pair = Pair.parse("BTC/USDT")
    now = datetime.now(UTC)
    with platform.uow() as uow:
        opened = Deal(bot=str(bot_id), no=2, pair=pair, direction=Direction.LONG, opened_at=now - timedelta(minutes=5),
                      bought=Decimal("0.002"), spent=Decimal("100"))
        closed = Deal(bot=str(bot_id), no=1, pair=pair, direction=Direction.LONG, opened_at=now - timedelta(hours=2),
                      bought=Decimal("0.002"), spent=Decimal("100"), sold=Decimal("0.002"),
                      received=Decimal("101.5"), fees_quote=Decimal("0.2")).close(now - timedelta(hours=1),
                                                                                  CloseReason.TAKE_PROFIT)
        uow.deals.save(owner_id, bot_id, closed)
        uow.deals.save(owner_id, bot_id, opened)
        cid = ClientOrderId(str(bot_id), 2, "bo")
        uow.orders.journal(owner_id, account_id, Order(cid, pair, Side.BUY, OrderType.MARKET, Decimal("0.002"),
                                                       status=OrderStatus.FILLED, filled=Decimal("0.002"),
                                                       average_price=Decimal("50000")), bot_id=bot_id)
        uow.fills.add(owner_id, Fill(cid, pair, Side.BUY, Decimal("50000"), Decimal("0.002"), Decimal("0.1"), "USDT",
                                     now - timedelta(minutes=5), "t-1"))
        alert = uow.alerts.add(owner_id, "warning", "foreign_order", "an order sealbot did not place",
                               account_id=account_id, bot_id=bot_id)
        return Seeded(account_id, bot_id, 2, 1, alert.id, cid.text)
