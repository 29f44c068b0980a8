"""Portfolio figures from what sealbot itself recorded: realized P&L (today, total, per
quote currency and per day), open deals and the quote tied up in them. Balances held
at the exchange are not stored yet, so they are not shown."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from sealbot.domain import DealStatus
from sealbot.domain.money import ZERO
from sealbot.services.platform import Platform


@dataclass(frozen=True, slots=True)
class QuoteSummary:
    quote: str
    profit_today: Decimal
    profit_total: Decimal
    open_deals: int
    in_open_deals: Decimal  # quote spent minus received on open deals
    closed_deals: int


@dataclass(frozen=True, slots=True)
class Portfolio:
    by_quote: list[QuoteSummary]
    daily_profit: list[tuple[date, str, Decimal]]  # (day, quote, realized profit that day)
    open_deals: int
    closed_deals: int


def portfolio(platform: Platform, owner_id: int, now: datetime | None = None) -> Portfolio:
    today = (now or datetime.now(UTC)).date()
    with platform.uow() as uow:
        deals = uow.deals.list(owner_id)
    sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    daily: dict[tuple[date, str], Decimal] = defaultdict(lambda: ZERO)
    for deal in deals:
        quote = deal.pair.quote
        s = sums[quote]
        if deal.status is DealStatus.OPEN:
            s["open"] += 1
            s["in_open"] += deal.spent - deal.received
        elif deal.status is DealStatus.CLOSED and deal.closed_at is not None:
            s["closed"] += 1
            profit = deal.realized_profit
            s["total"] += profit
            if deal.closed_at.date() == today:
                s["today"] += profit
            daily[(deal.closed_at.date(), quote)] += profit
    summaries = [QuoteSummary(q, s["today"], s["total"], int(s["open"]), s["in_open"], int(s["closed"]))
                 for q, s in sorted(sums.items())]
    return Portfolio(summaries, [(d, q, p) for (d, q), p in sorted(daily.items())],
                     sum(x.open_deals for x in summaries), sum(x.closed_deals for x in summaries))
