"""``services.portfolio.portfolio``: the quote tied up in open deals, long and short."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal as D
from types import SimpleNamespace
from typing import Any, cast

from sealbot.domain import Deal, DealStatus, Direction, Pair
from sealbot.services.platform import Platform
from sealbot.services.portfolio import portfolio

AT = datetime(2026, 1, 5, 12, tzinfo=UTC)
PAIR = Pair("BTC", "USDT")


def _platform(deals: list[Deal]) -> Platform:
    """Just what ``portfolio`` reads: the owner's deals through a unit of work."""

    @contextmanager
    def uow() -> Any:
        yield SimpleNamespace(deals=SimpleNamespace(list=lambda owner_id: deals))

    return cast(Platform, SimpleNamespace(uow=uow))


def test_open_short_deals_hold_what_their_sells_received_not_a_negative_amount() -> None:
    long = Deal("b1", 1, PAIR, Direction.LONG, AT, bought=D("0.002"), spent=D("100"))
    short = Deal("b2", 1, PAIR, Direction.SHORT, AT, sold=D("0.002"), received=D("100"))
    # a short that bought part back: 100 received, 30 spent -> 70 still out
    partly = Deal("b3", 1, PAIR, Direction.SHORT, AT, sold=D("0.002"), received=D("100"), bought=D("0.0006"),
                  spent=D("30"))
    closed = Deal("b4", 1, PAIR, Direction.SHORT, AT, status=DealStatus.CLOSED, closed_at=AT, sold=D("0.002"),
                  received=D("100"), bought=D("0.002"), spent=D("98"))
    summary = portfolio(_platform([long, short, partly, closed]), 1, now=AT).by_quote[0]
    # The shorts counted as spent - received (-100, -70) cancelled the long out: -70.
    assert summary.in_open_deals == D("270") and summary.open_deals == 3
    assert summary.profit_total == D("2") and summary.closed_deals == 1
