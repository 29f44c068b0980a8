"""Replay of recorded candles as a continuous price path.

Candle ``k`` of a market opens at ``start + k * interval`` (rows are replayed in
file order at the market's nominal interval; gaps in a file are closed up, and the
file loops when it ends). Inside a candle the price visits four points, each held
for a quarter of the interval:

* ``open`` at 0, then
* ``low`` at 1/4 and ``high`` at 2/4 when ``close >= open`` (the candle dipped
  first, then rallied), else ``high`` at 1/4 and ``low`` at 2/4,
* ``close`` at 3/4, held until the next candle's open.

Between two consecutive points every price in between is considered traded (the
segment), which is what the matcher uses to decide whether a resting order was
traded through.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from sealbot.simex.markets import Bar, MarketSpec, load_bars


@dataclass(frozen=True)
class Kline:
    """A candle as served by the klines/candles endpoints (possibly still forming)."""

    open_ms: int
    close_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


class Replay:
    """Price path of one market, anchored at ``start_ms``."""

    def __init__(self, spec: MarketSpec, start_ms: int, bars: tuple[Bar, ...] | None = None) -> None:
        self.spec = spec
        self.start_ms = start_ms
        self.bars = bars if bars is not None else load_bars(spec.data_file, spec.tick)
        self.interval_ms = spec.interval_s * 1000

    def bar(self, k: int) -> Bar:
        return self.bars[k % len(self.bars)]

    def points(self, k: int) -> tuple[tuple[int, Decimal], ...]:
        """The four (time, price) points of candle ``k``."""
        b = self.bar(k)
        t0 = self.start_ms + k * self.interval_ms
        q = self.interval_ms // 4
        first, second = (b.low, b.high) if b.close >= b.open else (b.high, b.low)
        return ((t0, b.open), (t0 + q, first), (t0 + 2 * q, second), (t0 + 3 * q, b.close))

    def index_at(self, t_ms: int) -> int:
        """Index of the candle containing ``t_ms`` (0 before the start)."""
        return max(0, (t_ms - self.start_ms) // self.interval_ms)

    def price_at(self, t_ms: int) -> Decimal:
        """Last traded price at ``t_ms``."""
        if t_ms < self.start_ms:
            return self.bar(0).open
        price = self.bar(0).open
        for at, p in self.points(self.index_at(t_ms)):
            if at <= t_ms:
                price = p
        return price

    def points_between(self, after_ms: int, upto_ms: int) -> Iterator[tuple[int, Decimal]]:
        """Path points with ``after_ms < time <= upto_ms``, in time order."""
        if upto_ms <= after_ms or upto_ms < self.start_ms:
            return
        k = self.index_at(max(after_ms, self.start_ms))
        last = self.index_at(upto_ms)
        while k <= last:
            for at, p in self.points(k):
                if after_ms < at <= upto_ms:
                    yield at, p
            k += 1

    def kline(self, k: int, now_ms: int) -> Kline:
        """Candle ``k`` as seen at ``now_ms``: only the path points reached so far count."""
        pts = [p for at, p in self.points(k) if at <= now_ms] or [self.points(k)[0][1]]
        b = self.bar(k)
        reached = min(4, len(pts))
        open_ms = self.start_ms + k * self.interval_ms
        return Kline(open_ms, open_ms + self.interval_ms - 1, pts[0], max(pts), min(pts), pts[-1],
                     b.volume * reached / 4)

    def klines(self, interval_ms: int, now_ms: int, limit: int, start_ms: int | None = None,
               end_ms: int | None = None) -> list[Kline]:
        """Candles of ``interval_ms`` (a multiple of the market's own) up to ``now_ms``."""
        if interval_ms % self.interval_ms:
            raise ValueError("interval must be a multiple of the market's candle interval")
        per = interval_ms // self.interval_ms
        upto = now_ms if end_ms is None else min(now_ms, end_ms)
        if upto < self.start_ms:
            return []
        last_group = (upto - self.start_ms) // interval_ms
        first_group = max(0, last_group - limit + 1)
        if start_ms is not None:
            first_group = max(0, -(-(start_ms - self.start_ms) // interval_ms))
        out: list[Kline] = []
        g = first_group
        while g <= last_group and len(out) < limit:
            parts = [self.kline(g * per + i, now_ms) for i in range(per)
                     if self.start_ms + (g * per + i) * self.interval_ms <= now_ms]
            if parts:
                out.append(Kline(parts[0].open_ms, parts[0].open_ms + interval_ms - 1, parts[0].open,
                                 max(p.high for p in parts), min(p.low for p in parts), parts[-1].close,
                                 sum((p.volume for p in parts), Decimal(0))))
            g += 1
        return out
