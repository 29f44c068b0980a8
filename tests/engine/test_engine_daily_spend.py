"""``DailySpend`` keeps the same totals as the plain rule it implements (add to the
owner's day, forget every earlier day), and an add no longer costs a scan of every
owner's total."""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from sealbot.engine.guard import DailySpend

DAY = date(2026, 1, 5)
OWNERS = ["alice", "bob", "carol"]


class _Rule:
    """The rule, written the obvious way (what ``DailySpend.add`` did before)."""

    def __init__(self) -> None:
        self.spent: dict[tuple[str, date], Decimal] = {}

    def add(self, owner: str, day: date, notional: Decimal) -> None:
        self.spent[(owner, day)] = self.spent.get((owner, day), Decimal(0)) + notional
        for key in [k for k in self.spent if k[1] < day]:
            del self.spent[key]


adds = st.lists(st.tuples(st.sampled_from(OWNERS), st.integers(min_value=0, max_value=6),
                          st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**6), places=2)),
                max_size=60)


@given(adds=adds)
def test_every_total_matches_the_rule_after_any_sequence_of_adds(adds: list[tuple[str, int, Decimal]]) -> None:
    """Days go forward and back (a late order journalled for yesterday): same answers."""
    spend, rule = DailySpend(), _Rule()
    for owner, offset, notional in adds:
        day = DAY + timedelta(days=offset)
        spend.add(owner, day, notional)
        rule.add(owner, day, notional)
        for who in OWNERS:
            for other in range(7):
                asked = DAY + timedelta(days=other)
                assert spend.spent(who, asked) == rule.spent.get((who, asked), Decimal(0))


def test_an_add_does_not_scan_every_owner() -> None:
    """50,000 owners spending on one day: the scan made this quadratic (about 1.25e9 key
    checks, minutes); now it is linear (well under a second, on a loaded machine too)."""
    spend = DailySpend()
    began = time.perf_counter()
    for n in range(50_000):
        spend.add(f"user{n}", DAY, Decimal(1))
    spend.add("user0", DAY + timedelta(days=1), Decimal(2))  # the next day drops all 50,000 at once
    took = time.perf_counter() - began
    assert spend.spent("user0", DAY + timedelta(days=1)) == Decimal(2)
    assert spend.spent("user1", DAY) == Decimal(0)
    assert took < 5.0, took
