"""Keep the garbage collector out of a candle's way.

An engine process holds tens of objects per bot that live for hours (configs, states,
journal entries, orders). CPython's full collections walk every tracked object, and
they fall wherever the allocation count says: in the middle of a candle burst, a full
collection stalls every bot still waiting behind it. Measured with the bench
(docs/benchmarks.md): with 1,000 DCA bots loaded, a bot's first-candle step took 168 µs
of CPU instead of 31; with 10,000 bots, single steady-state candles took 285-334 ms
of CPU where their neighbours took 30-80.

Bots' states are immutable values freed by reference counting, so a full collection
finds almost nothing to free. ``QuietCollector`` therefore:

* leaves the young generations alone (cheap, and they free short-lived cycles);
* stops automatic collections of the oldest generation, and runs them when the
  process is idle (every account's queue empty: between candles, in practice) and at
  least as many young collections happened as would have triggered one;
* after such a collection, ``gc.freeze()``s the survivors into the permanent generation,
  so the next one walks only what was created since;
* every ``sweep_every``-th idle collection unfreezes first: a full sweep, so a cycle
  among long-lived objects that later became garbage is freed too, only later;
* a process that is never idle still collects once a full collection is ``overdue_after``
  times overdue (a busy account must not grow the heap without bound).

Process-wide (the collector is): the host that runs the engine turns it on
(``RunnerSettings.quiet_gc``); it is off by default, for tests and embedding.
"""

from __future__ import annotations

import gc

NEVER = 2**31 - 1


class QuietCollector:
    def __init__(self, every: int = 10, sweep_every: int = 60, overdue_after: int = 5) -> None:
        self.every, self.sweep_every, self.overdue_after = every, sweep_every, overdue_after
        self.collections = 0
        self._saved: tuple[int, int, int] | None = None

    def install(self) -> None:
        """Stop automatic full collections; settle what is alive now."""
        if self._saved is None:
            self._saved = gc.get_threshold()
            gc.set_threshold(self._saved[0], self._saved[1], NEVER)
        self.collect()

    def uninstall(self) -> None:
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None
        gc.unfreeze()

    def due(self) -> bool:
        """As many young collections happened as would have triggered a full one."""
        return self._saved is not None and gc.get_count()[2] >= self.every

    def overdue(self) -> bool:
        """So many young collections happened that a full one runs even if not idle."""
        return self._saved is not None and gc.get_count()[2] >= self.every * self.overdue_after

    def collect(self) -> None:
        """A full collection now (call when idle), then freeze the survivors."""
        self.collections += 1
        if self.collections % self.sweep_every == 0:
            gc.unfreeze()
        gc.collect()
        gc.freeze()

    def idle(self) -> bool:
        """The process has nothing queued: collect if due. True when it collected."""
        if not self.due():
            return False
        self.collect()
        return True


__all__ = ["QuietCollector"]
