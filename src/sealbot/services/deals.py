"""Deal use cases: list, detail with orders and fills, close at market, add funds.

Closing and adding funds are requests to the bot: they go through the bot inbox
(``services.inbox``) to the engine, which is the only place that places orders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sealbot import audit
from sealbot.domain import (
    AddFunds,
    AmountType,
    Candle,
    CloseAtMarket,
    Deal,
    DealStatus,
    Fill,
    Order,
    Pair,
    timeframe_seconds,
)
from sealbot.domain.errors import InvalidConfig, Refused
from sealbot.domain.money import out_of_bounds
from sealbot.engine.journal import AccountRecord
from sealbot.services import inbox
from sealbot.services.paging import Page, page_of
from sealbot.services.platform import Platform
from sealbot.venues.errors import VenueError


@dataclass(frozen=True, slots=True)
class DealView:
    bot_id: int
    no: int
    pair: str
    direction: str
    status: str
    opened_at: datetime
    closed_at: datetime | None
    close_reason: str | None
    bought: Decimal
    spent: Decimal
    sold: Decimal
    received: Decimal
    fees_quote: Decimal
    average_entry: Decimal | None
    realized_profit: Decimal | None  # closed deals only


@dataclass(frozen=True, slots=True)
class DealDetail:
    deal: DealView
    orders: list[Order]
    fills: list[Fill]


def view_of(deal: Deal) -> DealView:
    closed = deal.status is DealStatus.CLOSED
    return DealView(int(deal.bot), deal.no, deal.pair.symbol, deal.direction.value, deal.status.value,
                    deal.opened_at, deal.closed_at, deal.close_reason.value if deal.close_reason else None,
                    deal.bought, deal.spent, deal.sold, deal.received, deal.fees_quote, deal.average_entry,
                    deal.realized_profit if closed else None)


def list_deals(platform: Platform, owner_id: int, *, bot_id: int | None = None, status: str | None = None,
               pair: str | None = None, limit: int = 50, offset: int = 0) -> Page[DealView]:
    wanted = None
    if status is not None:
        try:
            wanted = DealStatus(status)
        except ValueError:
            raise InvalidConfig("status", f"must be one of {', '.join(s.value for s in DealStatus)}") from None
    with platform.uow() as uow:
        if bot_id is not None:
            uow.bots.get(owner_id, bot_id)
        deals = [view_of(d) for d in uow.deals.list(owner_id, bot_id, status=wanted)
                 if pair is None or d.pair.symbol == pair]
    deals.sort(key=lambda d: d.opened_at, reverse=True)
    return page_of(deals, limit, offset)


def deal_detail(platform: Platform, owner_id: int, bot_id: int, no: int) -> DealDetail:
    with platform.uow() as uow:
        deal = uow.deals.get(owner_id, bot_id, no)
        orders = uow.orders.list(owner_id, bot_id=bot_id, deal_no=no)
        fills = [f for o in orders for f in uow.fills.for_order(owner_id, o.client_id)]
    fills.sort(key=lambda f: f.at)
    return DealDetail(view_of(deal), orders, fills)


def _open_deal(platform: Platform, owner_id: int, bot_id: int, no: int) -> None:
    """The deal is open and its bot is loaded by the engine (running or paused): a request
    for a stopped bot's deal would wait in no engine and be dropped, so it is refused."""
    with platform.uow() as uow:
        deal = uow.deals.get(owner_id, bot_id, no)
        bot_status = uow.bots.get(owner_id, bot_id).status
    if deal.status is not DealStatus.OPEN:
        raise InvalidConfig("status", "the deal is not open")
    if bot_status not in ("running", "paused"):
        raise Refused("bot.status", f"the bot is {bot_status}: start or pause it to act on its deals")


def close_deal(platform: Platform, owner_id: int, bot_id: int, no: int) -> int:
    """Ask the bot to close the deal at market; the inbox item id."""
    _open_deal(platform, owner_id, bot_id, no)
    with platform.uow() as uow:
        item = inbox.post(uow, owner_id, bot_id, CloseAtMarket(deal=no, at=datetime.now(UTC)))
        audit.record(uow.session, actor=f"user:{owner_id}", action="deal.close_requested",
                     subject=f"deal:{bot_id}-{no}", details={})
        return item


def add_funds(platform: Platform, owner_id: int, bot_id: int, no: int, amount: Decimal,
              amount_type: str = "quote", price: Decimal | None = None) -> int:
    """Ask the bot to add to the deal (at market, or a limit ``price``); the inbox item id."""
    if amount <= 0:
        raise InvalidConfig("amount", "must be positive")
    if price is not None and price <= 0:
        raise InvalidConfig("price", "must be positive")
    if amount_type not in ("quote", "base"):
        raise InvalidConfig("amount_type", "must be quote or base")
    for field, value in (("amount", amount), ("price", price)):  # the bounds of every config amount
        reason = out_of_bounds(value) if value is not None else None
        if reason:
            raise InvalidConfig(field, reason)
    _open_deal(platform, owner_id, bot_id, no)
    with platform.uow() as uow:
        item = inbox.post(uow, owner_id, bot_id, AddFunds(deal=no, amount=amount, amount_type=AmountType(amount_type),
                                                          at=datetime.now(UTC), price=price))
        audit.record(uow.session, actor=f"user:{owner_id}", action="deal.add_funds_requested",
                     subject=f"deal:{bot_id}-{no}", details={"amount": str(amount), "amount_type": amount_type})
        return item


@dataclass(frozen=True, slots=True)
class Marker:
    at: datetime
    kind: str  # "entry" | "safety" | "exit"
    side: str
    price: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class DealChart:
    pair: str
    timeframe: str  # of ``candles``: the finest that shows the whole deal in at most CHART_CANDLES bars
    candles: list[Candle]
    markers: list[Marker]
    candles_error: str | None = None  # why there are no candles (exchange unreachable, no account)


CHART_CANDLES = 1000  # one request to any exchange ccxt supports
CHART_TIMEFRAMES = ("1m", "5m", "15m", "1h", "4h", "1d")
CHART_MARGIN = 30  # bars shown before the deal opened


def chart_timeframe(span: timedelta) -> str:
    """The finest timeframe whose bars cover ``span`` (plus the margin) in one request."""
    for timeframe in CHART_TIMEFRAMES:
        if span.total_seconds() / timeframe_seconds(timeframe) + CHART_MARGIN < CHART_CANDLES:
            return timeframe
    return CHART_TIMEFRAMES[-1]


def _marker(fill: Fill, direction: str) -> Marker:
    entry_side = "buy" if direction == "long" else "sell"
    if fill.side.value != entry_side:
        kind = "exit"
    else:
        kind = "entry" if fill.client_id.step in ("bo", "0", "entry") else "safety"
    return Marker(fill.at, kind, fill.side.value, fill.price, fill.amount)


async def deal_chart(platform: Platform, owner_id: int, bot_id: int, no: int) -> DealChart:
    """Candles around the deal from its account's exchange, with a marker per fill
    (entry, safety order, exit). The timeframe grows with the deal's length so the whole
    deal fits one request. No candles (but the markers) if the exchange cannot be reached."""
    detail = deal_detail(platform, owner_id, bot_id, no)
    markers = [_marker(f, detail.deal.direction) for f in detail.fills]
    with platform.uow() as uow:
        bot = uow.bots.get(owner_id, bot_id)
        account = uow.accounts.get(owner_id, bot.account_id) if bot.account_id is not None else None
        record = AccountRecord(str(account.id), str(owner_id), account.exchange, account.label) if account else None
    end = max([detail.deal.closed_at or datetime.now(UTC), *(m.at for m in markers)])
    timeframe = chart_timeframe(end - detail.deal.opened_at)
    if record is None:
        return DealChart(detail.deal.pair, timeframe, [], markers, "the bot has no exchange account")
    bar = timedelta(seconds=timeframe_seconds(timeframe))
    since = detail.deal.opened_at - CHART_MARGIN * bar
    limit = min(CHART_CANDLES, int((end - since) / bar) + 2)
    try:
        venue = await platform.venue_for(record)
        try:
            candles = await venue.fetch_candles(Pair.parse(detail.deal.pair), timeframe, since=since, limit=limit)
        finally:
            await venue.close()
    except VenueError as exc:
        return DealChart(detail.deal.pair, timeframe, [], markers, type(exc).__name__)
    return DealChart(detail.deal.pair, timeframe, candles, markers)
