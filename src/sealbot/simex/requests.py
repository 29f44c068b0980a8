"""What simex was asked: requests per (method, path) and the weight charged for them.

An operator (or a test) reads it to see how many requests a client spends on what,
e.g. that a thousand accounts on one pair cost one ticker request per refresh, not a
thousand. Counted as requests arrive, refused ones (429/418, faults) included: that is
what the exchange would have counted.
"""

from __future__ import annotations

import threading
from collections import Counter


class RequestCounter:
    """Thread-safe counts since the start or the last ``reset``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: Counter[tuple[str, str]] = Counter()
        self._weight: Counter[tuple[str, str]] = Counter()

    def add(self, method: str, path: str, weight: int) -> None:
        with self._lock:
            self._count[(method, path)] += 1
            self._weight[(method, path)] += weight

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return self._count[(method, path)]

    def rows(self) -> list[dict[str, object]]:
        """``[{"method", "path", "count", "weight"}]`` sorted by path, then method."""
        with self._lock:
            return [{"method": m, "path": p, "count": n, "weight": self._weight[(m, p)]}
                    for (m, p), n in sorted(self._count.items(), key=lambda kv: (kv[0][1], kv[0][0]))]

    def reset(self) -> None:
        with self._lock:
            self._count.clear()
            self._weight.clear()
