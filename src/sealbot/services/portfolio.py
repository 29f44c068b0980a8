"""Portfolio figures, for the API and the dashboard.

* ``portfolio``: what sealbot itself recorded — realized P&L (today, total, per quote
  currency and per day), open deals and the quote tied up in them.
* ``holdings``: what the exchanges hold — the newest balance snapshot of each linked
  account (written by the engine's refresher, ``engine.portfolio``, or by
  ``refresh_holdings``), valued in the user's currency, and the sum across accounts.
* ``history``: the value over time from the snapshots, per account or across accounts.
* ``valuation_currency`` / ``set_valuation_currency``: the user's chosen currency.

Every function takes the owner's id; another user's accounts are simply not found.
An asset that could not be valued is named in ``unvalued``, never counted as zero
silently, and an account valued in another currency than the user's (the user just
changed it) is listed in ``pending`` until its next snapshot.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sealbot import audit
from sealbot.domain import DealStatus, Direction
from sealbot.domain.errors import InvalidConfig
from sealbot.domain.money import ZERO
from sealbot.engine.journal import AccountRecord
from sealbot.engine.portfolio import RoundTickers, StorePortfolio, value_account
from sealbot.services.platform import Platform
from sealbot.store.models import PortfolioSnapshot
from sealbot.store.repositories.portfolio import PortfolioRepository

_CURRENCY = re.compile(r"^[A-Z0-9]{2,20}$")
MIN_REFRESH_AGE = timedelta(seconds=15)  # an on-demand refresh skips accounts snapshotted more recently


@dataclass(frozen=True, slots=True)
class QuoteSummary:
    quote: str
    profit_today: Decimal
    profit_total: Decimal
    open_deals: int
    in_open_deals: Decimal  # quote the open deals hold: spent minus received (a short: received minus spent)
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
            # A short sells first: its size is what the sells received, less what buying back
            # spent. Counted as a long's spent - received it was negative and cancelled longs out.
            net = deal.spent - deal.received
            s["in_open"] += net if deal.direction is Direction.LONG else -net
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


# --- holdings (balances at the exchanges) ---


@dataclass(frozen=True, slots=True)
class Holding:
    """One asset on one account. ``price``/``value`` are in the snapshot's currency;
    None when the asset could not be valued. ``route`` names the tickers used."""

    asset: str
    free: Decimal
    used: Decimal
    total: Decimal
    price: Decimal | None
    value: Decimal | None
    route: str | None


@dataclass(frozen=True, slots=True)
class AccountHoldings:
    account_id: int
    label: str
    exchange: str
    taken_at: datetime
    currency: str
    total_value: Decimal
    unvalued: list[str]
    holdings: list[Holding]


@dataclass(frozen=True, slots=True)
class AssetTotal:
    """One asset summed over the accounts valued in the user's currency."""

    asset: str
    total: Decimal
    value: Decimal | None  # None when some account could not value it


@dataclass(frozen=True, slots=True)
class Holdings:
    currency: str  # the user's valuation currency
    total_value: Decimal  # sum over ``accounts`` valued in ``currency``
    accounts: list[AccountHoldings]  # newest snapshot of each account, in ``currency``
    by_asset: list[AssetTotal]
    unvalued: list[str]  # assets (on any account) that could not be valued
    pending: list[int]  # linked accounts with no snapshot in ``currency`` yet
    as_of: datetime | None  # the oldest snapshot time among ``accounts``


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    at: datetime
    value: Decimal
    accounts: int  # how many accounts the value covers (across-accounts series)


@dataclass(frozen=True, slots=True)
class History:
    currency: str
    account_id: int | None  # None: across all accounts
    points: list[HistoryPoint]


def valuation_currency(platform: Platform, owner_id: int) -> str:
    with platform.uow() as uow:
        return PortfolioRepository(uow.session).currency(owner_id)


def set_valuation_currency(platform: Platform, owner_id: int, currency: str) -> str:
    """Store the currency the portfolio is valued in (an exchange asset symbol such as
    ``USDT``, ``USD``, ``EUR`` or ``BTC``). Snapshots already taken keep their currency;
    the next refresh values in the new one."""
    code = currency.strip().upper()
    if not _CURRENCY.match(code):
        raise InvalidConfig("currency", "must be an asset symbol of 2 to 20 letters or digits, e.g. USDT")
    with platform.uow() as uow:
        stored = PortfolioRepository(uow.session).set_currency(owner_id, code)
        audit.record(uow.session, actor=f"user:{owner_id}", action="portfolio.currency_set",
                     subject=f"user:{owner_id}", details={"currency": code})
    return stored


def _account_holdings(repo: PortfolioRepository, owner_id: int, snap: PortfolioSnapshot, label: str,
                      exchange: str) -> AccountHoldings:
    lines = [Holding(x.asset, x.free, x.used, x.total, x.price, x.value, x.route)
             for x in repo.lines(owner_id, snap.id)]
    return AccountHoldings(snap.account_id, label, exchange, snap.taken_at, snap.currency, snap.total_value,
                           list(snap.unvalued), lines)


def holdings(platform: Platform, owner_id: int) -> Holdings:
    """The newest snapshot of each of the user's linked (not revoked) accounts, and
    their sum in the user's currency (see the module docstring)."""
    with platform.uow() as uow:
        repo = PortfolioRepository(uow.session)
        currency = repo.currency(owner_id)
        accounts = {a.id: a for a in uow.accounts.list(owner_id, include_revoked=False)}
        latest = {s.account_id: s for s in repo.latest(owner_id, accounts)}
        valued = [_account_holdings(repo, owner_id, latest[a], accounts[a].label, accounts[a].exchange)
                  for a in sorted(latest) if latest[a].currency == currency]
    pending = sorted(a for a in accounts if a not in latest or latest[a].currency != currency)
    amounts: dict[str, Decimal] = defaultdict(lambda: ZERO)
    values: dict[str, Decimal | None] = {}
    for acc in valued:
        for h in acc.holdings:
            amounts[h.asset] += h.total
            before = values.get(h.asset, ZERO)
            values[h.asset] = None if before is None or h.value is None else before + h.value
    by_asset = sorted((AssetTotal(a, amounts[a], values[a]) for a in amounts),
                      key=lambda x: (x.value is None, -(x.value or ZERO), x.asset))
    unvalued = sorted({u for acc in valued for u in acc.unvalued})
    return Holdings(currency, sum((a.total_value for a in valued), ZERO), valued, by_asset, unvalued, pending,
                    min((a.taken_at for a in valued), default=None))


def history(platform: Platform, owner_id: int, *, account_id: int | None = None, since: datetime | None = None,
            until: datetime | None = None, max_points: int = 500) -> History:
    """The portfolio's value over time in the user's currency, oldest first.

    For one account: its snapshots. Across accounts: at each snapshot time, the sum of
    every account's newest value at or before that time (an account refreshed less often
    is carried forward, a revoked one only until it was revoked), with ``accounts``
    saying how many were included. At most ``max_points`` points, evenly thinned, the
    newest always kept."""
    if not 2 <= max_points <= 10_000:
        raise InvalidConfig("max_points", "must be between 2 and 10000")
    with platform.uow() as uow:
        repo = PortfolioRepository(uow.session)
        currency = repo.currency(owner_id)
        if account_id is not None:
            uow.accounts.get(owner_id, account_id)  # NotFound for another user's account
        rows = [(s.taken_at, s.account_id, s.total_value)
                for s in repo.history(owner_id, currency=currency, account_id=account_id, since=since, until=until)]
        # Across accounts, the first point of a window (``since``, or the row limit) sums
        # every account's newest value at or before it too, as the whole history does: an
        # account last refreshed before the window was left out, so the same moment read
        # 110 from ``since`` and 160 without it.
        carried = {} if account_id is not None or not rows else {
            s.account_id: s.total_value for s in repo.newest_before(owner_id, currency=currency, before=rows[0][0])}
        revoked = {a.id: a.revoked_at for a in uow.accounts.list(owner_id) if a.revoked_at is not None}
    points: list[HistoryPoint] = []
    current: dict[int, Decimal] = dict(carried)
    for i, (at, acc, value) in enumerate(rows):
        current[acc] = value
        if i + 1 < len(rows) and rows[i + 1][0] == at:
            continue  # same pass: wait until every account of it is in
        for gone in [a for a in current if a in revoked and revoked[a] <= at and a != acc]:
            del current[gone]  # a revoked account's last balance is not carried into later points
        points.append(HistoryPoint(at, sum(current.values(), ZERO), len(current)))
    if len(points) > max_points:
        step = (len(points) - 1) / (max_points - 1)
        points = [points[round(i * step)] for i in range(max_points)]
    return History(currency, account_id, points)


async def refresh_holdings(platform: Platform, owner_id: int, account_id: int | None = None, *,
                           min_age: timedelta = MIN_REFRESH_AGE) -> Holdings:
    """Take a snapshot now (one account, or every linked account of the user) through
    the exchange, without waiting for the engine's next pass; then ``holdings``.

    An account whose newest snapshot in the user's currency is younger than ``min_age``
    is not fetched again: repeated clicks must not spend the account's exchange request
    budget (an exchange bans an IP that asks too often)."""
    now = datetime.now(UTC)
    with platform.uow() as uow:
        repo = PortfolioRepository(uow.session)
        currency = repo.currency(owner_id)
        if account_id is not None:
            rows = [uow.accounts.get(owner_id, account_id)]
        else:
            rows = uow.accounts.list(owner_id, include_revoked=False)
        fresh = {s.account_id for s in repo.latest(owner_id, [a.id for a in rows])
                 if s.currency == currency and now - s.taken_at < min_age}
        records = [AccountRecord(str(a.id), str(owner_id), a.exchange, a.label) for a in rows if a.id not in fresh]
    store = StorePortfolio(platform.session_factory)
    taken_at = now
    tickers = RoundTickers()  # the user's accounts on one exchange endpoint ask for each ticker once
    for record in records:
        venue = await platform.venue_for(record)
        try:
            valuation = await value_account(venue, currency, price_of=tickers.price_of(venue))
        finally:
            await venue.close()
        store.save(record, taken_at, valuation)
    return holdings(platform, owner_id)
