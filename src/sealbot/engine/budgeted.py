"""Every request an account makes draws its weight from the shared per-IP budget.

Binance counts request weight per IP across all keys: 6,000 per minute, 429 past it,
a ban (418) for those who keep going. The engine wraps each account's venue in
``BudgetedVenue`` so a request waits for room instead of overshooting, and a 429/418
answer blocks the whole IP's budget (every account behind it) for as long as asked.
Weights are Binance spot's published ones; other exchanges use ``DEFAULT_WEIGHTS``.

The budget also adopts what the exchange itself reports (a venue with ``rate_report``,
such as ``CcxtVenue``): the IP's used weight of the current minute, which counts every
client on the IP (another worker, the web tier linking a key), and the ``Retry-After``
of a 418, the ban's length, which may be far longer than the budget's own back-off.
A 429 blocks for the rest of the window, which is what Binance's Retry-After says for
request weight.

One venue call may make several requests: ``fetch_my_trades`` pages through every trade
since the time asked (a page is 1,000 Binance trades, 500 KuCoin fills) and reads the
order of a trade it cannot name. The call's weight is taken before it starts; each
further request takes its own weight before it is sent, through the venue's
``request_gate`` (``CcxtVenue`` has one), so N pages cost N times the page's weight and
wait for room like any other request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from sealbot.domain import Candle, ClientOrderId, Fill, MarketRules, Order, Pair
from sealbot.engine.budget import Budget
from sealbot.venues.base import Balance, PermissionReport, Ticker, TradeBatch, Venue
from sealbot.venues.errors import RateLimited
from sealbot.venues.trade_paging import ResumeAt

T = TypeVar("T")

BINANCE_WEIGHTS: dict[str, int] = {
    "load_markets": 20, "fetch_balances": 20, "fetch_ticker": 2, "fetch_candles": 2, "create_order": 1,
    "cancel_order": 5, "fetch_order": 4, "fetch_open_orders": 6, "fetch_open_orders_all": 80,
    "fetch_my_trades": 20, "check_permissions": 21,
}
DEFAULT_WEIGHTS: dict[str, int] = dict.fromkeys(BINANCE_WEIGHTS, 1)
WEIGHTS: dict[str, dict[str, int]] = {"binance": BINANCE_WEIGHTS}


class BudgetedVenue(Venue):
    def __init__(self, inner: Venue, ip_budget: Budget, weights: dict[str, int] | None = None) -> None:
        self.inner, self.budget = inner, ip_budget
        self.name = inner.name
        self.weights = weights or WEIGHTS.get(inner.name, DEFAULT_WEIGHTS)
        if hasattr(inner, "request_gate"):
            inner.request_gate = self._extra_request

    async def _extra_request(self, what: str) -> None:
        """A further request inside a call already charged for its first one."""
        await self.budget.acquire(self.weights.get(what, 1))

    def __repr__(self) -> str:
        return f"<BudgetedVenue {self.inner!r}>"

    def _reported(self) -> tuple[int | None, float | None]:
        """(used weight, Retry-After) from the exchange's last answer, if the venue tells."""
        report: Any = getattr(self.inner, "rate_report", None)
        if report is None:
            return None, None
        answer = report()
        return answer.used_weight, answer.retry_after

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        await self.budget.acquire(self.weights.get(what, 1))
        try:
            result = await call()
        except RateLimited as exc:
            used, retry_after = self._reported()
            if used is not None:
                self.budget.observe_used(used)
            if "418" in str(exc) or "banned" in str(exc).lower():
                self.budget.banned(retry_after)  # the ban's length, when longer than the budget's guess
            else:
                self.budget.rate_limited(None)  # the rest of the window (Binance's Retry-After for weight)
            raise
        used, _ = self._reported()
        if used is not None:
            self.budget.observe_used(used)
        return result

    async def load_markets(self) -> dict[Pair, MarketRules]:
        return await self._call("load_markets", self.inner.load_markets)

    async def fetch_balances(self) -> dict[str, Balance]:
        return await self._call("fetch_balances", self.inner.fetch_balances)

    async def fetch_ticker(self, pair: Pair) -> Ticker:
        return await self._call("fetch_ticker", lambda: self.inner.fetch_ticker(pair))

    async def fetch_candles(self, pair: Pair, timeframe: str, since: datetime | None = None,
                            limit: int | None = None) -> list[Candle]:
        return await self._call("fetch_candles", lambda: self.inner.fetch_candles(pair, timeframe, since, limit))

    async def create_order(self, order: Order, attempt_at: datetime | None = None) -> Order:
        return await self._call("create_order", lambda: self.inner.create_order(order, attempt_at))

    def send_window(self) -> float | None:
        return self.inner.send_window()

    async def cancel_order(self, client_id: ClientOrderId, pair: Pair) -> Order:
        return await self._call("cancel_order", lambda: self.inner.cancel_order(client_id, pair))

    async def fetch_order(self, client_id: ClientOrderId, pair: Pair) -> Order:
        return await self._call("fetch_order", lambda: self.inner.fetch_order(client_id, pair))

    async def fetch_open_orders(self, pair: Pair | None = None) -> list[Order]:
        what = "fetch_open_orders" if pair is not None else "fetch_open_orders_all"
        return await self._call(what, lambda: self.inner.fetch_open_orders(pair))

    async def fetch_my_trades(self, pair: Pair, since: datetime | None = None) -> list[Fill]:
        return await self._call("fetch_my_trades", lambda: self.inner.fetch_my_trades(pair, since))

    async def read_my_trades(self, pair: Pair, since: datetime, resume: ResumeAt | None = None) -> TradeBatch:
        return await self._call("fetch_my_trades", lambda: self.inner.read_my_trades(pair, since, resume))

    async def check_permissions(self) -> PermissionReport:
        return await self._call("check_permissions", self.inner.check_permissions)

    async def close(self) -> None:
        await self.inner.close()
