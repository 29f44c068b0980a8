"""Keep the garbage collector out of a candle's way.

An engine process holds tens of objects per bot that live for hours (configs, states,
journal entries, orders). CPython's full collections walk every tracked object, and
they fall wherever the allocation count says: in the middle of a candle burst, a full
collection stalls every bot still waiting behind it. Measured with the bench
(docs/benchmarks.md): with 1,000 DCA bots loaded, a bot's first-candle step took 168 µs
of CPU instead of 31; with 10,000 bots, single steady-state candles took 285-334 ms
of CPU where their neighbours took 30-80.

Bots' states are immutable values freed by reference counting, so a collection finds
almost nothing to free; what it costs is walking the objects. Even the young generation's
collections, CPython's cheap ones, are not cheap in a burst: every 700 new objects one
runs, every tenth walks the last 7,000, and a burst allocates about 30 per bot stepped
(a new state, its order, journal entries). With them, a steady-state candle's p99 lag at
2,000 bots was twice what it is without any collection (15.3 against 7.6 ms of CPU).
``QuietCollector`` therefore:

* moves the young collections out of the way too: automatic collections start only past
  ``young_limit`` new objects (more than a candle's burst at 10,000 bots allocates), and
  the oldest generation's never;
* collects when the process is idle (every account's queue empty: between candles, in
  practice) once ``young`` new objects have piled up, a full collection of what is not
  frozen, then ``gc.freeze()``s the survivors into the permanent generation, so the next
  one walks only what was created since;
* a collection unfreezes first (a sweep: it walks everything) once the frozen objects
  grew by a quarter since the last sweep, so a cycle among long-lived objects that later
  became garbage is freed too, only later, and at most a quarter of the heap waits for
  it: CPython's own rule for its full collections (a count of collections instead swept
  the whole heap every minute or so at 10,000 bots, once most idle moments collected);
* a process that is never idle still collects: once a young collection had to run on its
  own (``young_limit`` new objects without an idle moment) the next item boundary
  collects, idle or not, so the heap does not grow without bound behind a busy account.

Process-wide (the collector is): the host that runs the engine turns it on
(``RunnerSettings.quiet_gc``); it is off by default, for tests and embedding.
"""

from __future__ import annotations

import gc

NEVER = 2**31 - 1


class QuietCollector:
    def __init__(self, young: int = 10_000, young_limit: int = 500_000) -> None:
        self.young, self.young_limit = young, young_limit
        self.collections = self.sweeps = 0
        self._swept = 0  # objects frozen after the last sweep
        self._saved: tuple[int, int, int] | None = None

    def install(self) -> None:
        """Young collections only past ``young_limit``, full ones never on their own;
        settle what is alive now."""
        if self._saved is None:
            self._saved = gc.get_threshold()
            gc.set_threshold(self.young_limit, self._saved[1], NEVER)
        self.collect()

    def uninstall(self) -> None:
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None
        gc.unfreeze()

    def due(self) -> bool:
        """Enough new objects piled up since the last collection to be worth one."""
        return self._saved is not None and (gc.get_count()[0] >= self.young or self.overdue())

    def overdue(self) -> bool:
        """A young collection had to run on its own since ours: the process was not idle
        for ``young_limit`` new objects, so a collection runs even if it is not idle now."""
        count = gc.get_count()
        return self._saved is not None and (count[1] > 0 or count[2] > 0)

    def collect(self) -> None:
        """A full collection now (call when idle), then freeze the survivors."""
        self.collections += 1
        sweep = gc.get_freeze_count() >= self._swept + self._swept // 4
        if sweep:
            gc.unfreeze()
        gc.collect()
        gc.freeze()
        if sweep:
            self.sweeps += 1
            self._swept = gc.get_freeze_count()

    def idle(self) -> bool:
        """The process has nothing queued: collect if due. True when it collected."""
        if not self.due():
            return False
        self.collect()
        return True


__all__ = ["QuietCollector"]
