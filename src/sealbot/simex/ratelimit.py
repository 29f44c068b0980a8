"""Request-weight budget per client IP, as Binance counts it.

Each request adds its weight to the IP's count for the current wall-clock minute
(``window_s``; KuCoin's pools use 30 s).
Past the limit the answer is 429 with ``Retry-After`` (seconds to the next
minute). An IP that keeps sending after being told so (``ban_after`` more
requests answered 429 within the same minute) is banned for ``ban_seconds``
and answered 418 until then, again with ``Retry-After``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Verdict:
    used: int
    status: int = 200  # 200 (go on), 429 or 418
    retry_after: int = 0
    banned_until_ms: int = 0


@dataclass
class _Window:
    minute: int = -1
    used: int = 0
    refused: int = 0


class WeightLimiter:
    def __init__(self, limit: int = 6000, ban_after: int = 10, ban_seconds: int = 120,
                 wall: Callable[[], float] = time.time, window_s: int = 60) -> None:
        self.limit, self.ban_after, self.ban_seconds = limit, ban_after, ban_seconds
        self.window_s = window_s
        self._wall = wall
        self._windows: dict[str, _Window] = {}
        self._bans: dict[str, float] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
            self._bans.clear()

    def charge(self, ip: str, weight: int) -> Verdict:
        now = self._wall()
        minute = int(now // self.window_s)
        with self._lock:
            banned = self._bans.get(ip, 0.0)
            win = self._windows.setdefault(ip, _Window())
            if win.minute != minute:
                win.minute, win.used, win.refused = minute, 0, 0
            if banned > now:
                return Verdict(win.used, 418, int(banned - now) + 1, int(banned * 1000))
            win.used += weight
            if win.used <= self.limit:
                return Verdict(win.used)
            win.refused += 1
            if win.refused > self.ban_after:
                until = now + self.ban_seconds
                self._bans[ip] = until
                return Verdict(win.used, 418, self.ban_seconds, int(until * 1000))
            return Verdict(win.used, 429, int(self.window_s - now % self.window_s) + 1)

    def used(self, ip: str) -> int:
        with self._lock:
            win = self._windows.get(ip)
            return win.used if win and win.minute == int(self._wall() // self.window_s) else 0
