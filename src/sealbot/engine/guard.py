"""Pre-trade guard: a pure policy every order passes before it may leave sealbot.

Leaked keys were used to buy an illiquid coin far above its price (the thief sells
the coin into the victims' buy orders). The guard refuses exactly that pattern, and
caps what a bot, or a thief driving one, can spend:

* ``deviation``: a limit buy priced more than ``max_deviation_pct`` above the reference
  price (order book mid, else last trade), or a limit sell that far below it;
* ``order_notional``: one order worth more than ``max_order_notional`` (quote units);
* ``daily_notional``: entries worth more than ``max_daily_notional`` per UTC day;
* ``allow_list``: a pair outside ``allowed_pairs`` (``None`` allows any pair);
* ``min_volume``: a pair that traded less than ``min_quote_volume_24h`` in 24 h;
* ``reference_price``: no reference price, or only a stale one (the guard cannot judge,
  so it refuses; ``engine.market`` says when a price is stale).

Limits exist per user and per account; an order must pass both (the tighter value of
each limit wins). The guard does no I/O: the caller hands it the market snapshot and
what was already spent today (``SpentToday``, which the engine sums from the order
journal in the transaction that journals the order), so it is trivially testable and
isolated per owner. An allowed order's ``GuardDecision.counted`` is what it adds to
those totals; the journal stores it with the order.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

from sealbot.domain import Order, OrderType, Pair, Refused, Side
from sealbot.domain.money import HUNDRED

ALLOWED = "allowed"


@dataclass(frozen=True, slots=True)
class GuardLimits:
    """One owner's pre-trade limits. Amounts are in the pair's quote currency (times
    ``MarketSnapshot.quote_rate`` when the caller converts to the user's currency)."""

    max_deviation_pct: Decimal = Decimal("5")
    max_order_notional: Decimal | None = Decimal("5000")
    max_daily_notional: Decimal | None = Decimal("50000")
    allowed_pairs: frozenset[Pair] | None = None
    min_quote_volume_24h: Decimal = Decimal("100000")

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> GuardLimits:
        """Limits from stored JSON; unknown keys are refused so a typo is not a silent no-limit."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"guard limits: unknown setting(s) {sorted(unknown)}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key == "allowed_pairs":
                values[key] = None if value is None else frozenset(Pair.parse(str(p)) for p in value)  # type: ignore[attr-defined]
            else:
                values[key] = None if value is None else Decimal(str(value))
        return replace(cls(), **values)

    def to_dict(self) -> dict[str, object]:
        return {
            "max_deviation_pct": str(self.max_deviation_pct),
            "max_order_notional": None if self.max_order_notional is None else str(self.max_order_notional),
            "max_daily_notional": None if self.max_daily_notional is None else str(self.max_daily_notional),
            "allowed_pairs": None if self.allowed_pairs is None else sorted(p.symbol for p in self.allowed_pairs),
            "min_quote_volume_24h": str(self.min_quote_volume_24h),
        }


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """What the guard knows about a pair's market right now. ``stale_age`` is set (in
    seconds) when the source had only a price too old to judge by: it then hands over no
    prices at all, and says so, rather than an old price the guard would trust."""

    pair: Pair
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    quote_volume_24h: Decimal | None = None
    quote_rate: Decimal = Decimal(1)
    stale_age: float | None = None

    @property
    def reference_price(self) -> Decimal | None:
        """Order book mid when both sides are quoted, else the last trade."""
        if self.bid and self.ask and self.bid > 0 and self.ask > 0:
            return (self.bid + self.ask) / 2
        return self.last if self.last and self.last > 0 else None


@dataclass(frozen=True, slots=True)
class GuardDecision:
    """``rule`` is ``allowed`` or the name of the rule that refused; ``reason`` says why."""

    allowed: bool
    rule: str
    reason: str
    notional: Decimal | None = None
    closing: bool = False

    @property
    def counted(self) -> Decimal | None:
        """What the order adds to its owners' daily totals: the judged notional of an
        allowed order, ``None`` for a refused one and for a closing order (the spend limits
        never hold those back, so they do not count either)."""
        if not self.allowed or self.closing:
            return None
        return self.notional

    def raise_if_refused(self) -> None:
        if not self.allowed:
            raise Refused(f"guard:{self.rule}", self.reason)


def _refuse(rule: str, reason: str, notional: Decimal | None = None) -> GuardDecision:
    return GuardDecision(False, rule, reason, notional)


def check(
    order: Order,
    limits: GuardLimits,
    market: MarketSnapshot,
    spent_today: Decimal = Decimal(0),
    *,
    closing: bool = False,
) -> GuardDecision:
    """Judge one order. ``closing`` orders (a deal's exit, a panic sell) are never held
    back by the spend limits, since refusing them would trap a position; they still
    face the allow-list and the price checks."""
    if limits.allowed_pairs is not None and order.pair not in limits.allowed_pairs:
        return _refuse("allow_list", f"{order.pair} is not in the allow-list")
    if market.stale_age is not None:
        return _refuse("reference_price", f"the reference price for {order.pair} is stale "
                                          f"({market.stale_age:.0f} s old): cannot judge the order")
    volume = market.quote_volume_24h
    if limits.min_quote_volume_24h > 0 and (volume is None or volume < limits.min_quote_volume_24h):
        seen = "unknown" if volume is None else str(volume)
        return _refuse(
            "min_volume", f"{order.pair} 24h quote volume {seen} is below the minimum {limits.min_quote_volume_24h}"
        )
    reference = market.reference_price
    if reference is None:
        return _refuse("reference_price", f"no reference price for {order.pair}: cannot judge the order")
    if order.price is not None and order.type is not OrderType.MARKET:
        deviation = (order.price - reference) * HUNDRED / reference
        adverse = deviation if order.side is Side.BUY else -deviation
        if adverse > limits.max_deviation_pct:
            direction = "above" if order.side is Side.BUY else "below"
            return _refuse(
                "deviation",
                f"{order.side} at {order.price} is {abs(deviation):.2f}% {direction} the reference price "
                f"{reference:.8g} (limit {limits.max_deviation_pct}%)",
            )
    price = order.price if order.price is not None and order.type is not OrderType.MARKET else reference
    notional = order.amount * price * market.quote_rate
    if closing:
        return GuardDecision(True, ALLOWED, "closing order", notional, closing=True)
    if limits.max_order_notional is not None and notional > limits.max_order_notional:
        return _refuse(
            "order_notional", f"order notional {notional:.8g} exceeds the limit {limits.max_order_notional}", notional
        )
    if limits.max_daily_notional is not None and spent_today + notional > limits.max_daily_notional:
        return _refuse(
            "daily_notional",
            f"today's notional {spent_today + notional:.8g} would exceed the daily limit {limits.max_daily_notional}",
            notional,
        )
    return GuardDecision(True, ALLOWED, "within limits", notional)


class SpentToday(NamedTuple):
    """What an order's owners already committed on its UTC day: the user across all
    accounts, and the account (the sum of ``GuardDecision.counted`` of their orders)."""

    user: Decimal = Decimal(0)
    account: Decimal = Decimal(0)


NOTHING_SPENT = SpentToday()


@dataclass
class GuardPolicy:
    """Limits per user and per account, with safe defaults for owners who set none.

    An order must pass the user's limits (against what the user spent today across all
    accounts) and, when the account has its own, the account's (against that account's
    spend): limits are isolated per owner, one user's spending never counts for another.
    """

    defaults: GuardLimits = field(default_factory=GuardLimits)
    users: dict[str, GuardLimits] = field(default_factory=dict)
    accounts: dict[str, GuardLimits] = field(default_factory=dict)

    def check(
        self,
        order: Order,
        *,
        user: str,
        account: str,
        market: MarketSnapshot,
        spent: SpentToday = NOTHING_SPENT,
        closing: bool = False,
    ) -> GuardDecision:
        decision = check(order, self.users.get(user, self.defaults), market, spent.user, closing=closing)
        if not decision.allowed or account not in self.accounts:
            return decision
        return check(order, self.accounts[account], market, spent.account, closing=closing)

    def daily_limited(self, user: str, account: str) -> bool:
        """True when a daily limit applies to the user or the account: only then does the
        caller need today's totals (``SpentToday``) to judge a new order."""
        limits = [self.users.get(user, self.defaults)]
        if account in self.accounts:
            limits.append(self.accounts[account])
        return any(lim.max_daily_notional is not None for lim in limits)


class DailySpend:
    """Notional spent per owner per UTC day: the in-memory journal's running totals
    (``engine.journal.MemoryJournal``), so its ``spent_today`` answers in O(1). The
    database journal sums the day's orders instead; nothing here outlives the process."""

    def __init__(self) -> None:
        self._spent: dict[date, dict[str, Decimal]] = {}  # day -> owner -> notional
        self._days: list[date] = []  # a min-heap of the days held: earlier days go first

    def spent(self, owner: str, day: date) -> Decimal:
        return self._spent.get(day, {}).get(owner, Decimal(0))

    def add(self, owner: str, day: date, notional: Decimal) -> None:
        """Add to the owner's day and forget every earlier day, whole days at a time: each
        day is dropped once, by the first add that passes it, so an add costs O(1)
        amortised in the number of owners (it used to scan every key)."""
        if day not in self._spent:
            self._spent[day] = {}
            heapq.heappush(self._days, day)
        owners = self._spent[day]
        owners[owner] = owners.get(owner, Decimal(0)) + notional
        while self._days[0] < day:
            del self._spent[heapq.heappop(self._days)]

    def correct(self, owner: str, day: date, delta: Decimal) -> None:
        """Change a total of a day still held (an order rejected after it counted, a
        rolled back add), O(1); a day already forgotten stays forgotten."""
        owners = self._spent.get(day)
        if owners is not None:
            owners[owner] = owners.get(owner, Decimal(0)) + delta
