"""Which sleeping bots a candle can wake, without asking every bot.

A DCA or grid bot between two decisions waits for a price level or a time
(``Interest``): wake me when price trades at or below ``below``, at or above
``above``, or when time reaches ``until``. Asking ten thousand bots on every candle
whether it concerns them costs microseconds each and almost always says no, so the
feed keeps one ``TriggerIndex`` per (exchange, pair, timeframe): each trigger sits in
a sorted list, and a candle finds the bots it reaches by bisection --
O(log n + woken) per candle instead of O(n).

The index is exactly as permissive as ``wakes`` (the brute-force rule the runner
applies again at delivery); the property test in ``tests/engine`` holds it to that.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from sealbot.bots.base import Interest

L = TypeVar("L", Decimal, int)  # a trigger level: a price, or a time in µs

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(at: datetime) -> int:
    """An exact integer for a datetime (a float timestamp could round across a trigger)."""
    return (at - _EPOCH) // _MICROSECOND


class TriggerIndex:
    """Interests of many keys, queried by candle (low, high, close time).

    Keys are small integers (the subscription order), so a wake-up list comes out in
    subscription order: bots of one account keep stepping in a stable order. Each
    trigger is stored as a ``(level, key)`` pair, negated where the wake-up condition
    is "at or below", so that every query is "the tail of a sorted list from a bisection
    point"."""

    __slots__ = ("_above", "_always", "_below", "_held", "_interests", "_until")

    def __init__(self) -> None:
        self._interests: dict[int, Interest] = {}
        self._below: list[tuple[Decimal, int]] = []  # (below, key): woken when low <= below
        self._above: list[tuple[Decimal, int]] = []  # (-above, key): woken when -high <= -above
        self._until: list[tuple[int, int]] = []  # (-until µs, key): woken when -close <= -until
        self._always: set[int] = set()
        self._held: set[int] = set()  # woken by every candle whatever their interest says

    def __len__(self) -> int:
        return len(self._interests)

    def __contains__(self, key: int) -> bool:
        return key in self._interests

    def interest(self, key: int) -> Interest | None:
        return self._interests.get(key)

    def set(self, key: int, interest: Interest) -> None:
        """Index ``key`` under ``interest`` (replacing what it had)."""
        old = self._interests.get(key)
        if old == interest:
            return
        if old is not None:
            self._unindex(key, old)
        self._interests[key] = interest
        if interest.every_candle:
            self._always.add(key)
        if interest.below is not None:
            insort(self._below, (interest.below, key))
        if interest.above is not None:
            insort(self._above, (-interest.above, key))
        if interest.until is not None:
            insort(self._until, (-_micros(interest.until), key))

    def hold(self, key: int, held: bool) -> None:
        """Wake ``key`` on every candle while held, without forgetting its interest: its
        owner has events for it still queued, so the interest indexed now may not be
        the one it will have when this candle's turn comes."""
        if held:
            self._held.add(key)
        else:
            self._held.discard(key)

    def discard(self, key: int) -> None:
        self._held.discard(key)
        old = self._interests.pop(key, None)
        if old is not None:
            self._unindex(key, old)

    def _unindex(self, key: int, old: Interest) -> None:
        if old.every_candle:
            self._always.discard(key)
        if old.below is not None:
            _remove(self._below, (old.below, key))
        if old.above is not None:
            _remove(self._above, (-old.above, key))
        if old.until is not None:
            _remove(self._until, (-_micros(old.until), key))

    def woken(self, low: Decimal, high: Decimal, at: datetime) -> list[int]:
        """Keys whose interest a candle with this ``low``, ``high`` and close time
        ``at`` reaches, in ascending key order."""
        below, above, until = self._below, self._above, self._until
        hits = self._always | self._held
        if below:
            hits.update(key for _, key in below[bisect_left(below, (low,)):])
        if above:
            hits.update(key for _, key in above[bisect_left(above, (-high,)):])
        if until:
            hits.update(key for _, key in until[bisect_left(until, (-_micros(at),)):])
        return sorted(hits)


def _remove(items: list[tuple[L, int]], entry: tuple[L, int]) -> None:
    i = bisect_left(items, entry)
    if i == len(items) or items[i] != entry:
        raise KeyError(f"trigger {entry} is not indexed")
    del items[i]


__all__ = ["TriggerIndex"]
