"""The seam between a worker's partition logic and what carries its messages.

``worker.Worker`` owns the partition logic: claiming a partition (its epoch raised in the
database), starting and reconciling its accounts, applying its messages under the epoch
fence and de-duplicated by message id, stepping down, the fair share and the upkeep
hook. A ``Transport`` only carries messages and tells the worker about ownership:

* it hands the worker each partition's deliveries, in order (``PartitionHost.apply``),
  and a delivery is acknowledged (``Delivery.ack``) only once the worker committed it;
* it says when this process becomes the owner of a partition (``PartitionHost.take``,
  which may decline it) and when it stops being one (``PartitionHost.drop``);
* it answers whether another process waits for a partition (``contended``: the fair
  share takes a cleanly released partition only from nobody);
* it leaves a partition when the worker asks (``leave``: fenced, or above the share),
  publishes a signal into a partition (``publish``), and calls ``PartitionHost.tick``
  every heartbeat interval (the worker's fenced heartbeats, live peers, fair share).

Two transports implement it: ``rabbit.RabbitTransport`` (quorum queues with
single-active-consumer, the partition token, ticks: ``sealbot worker``) and
``local.LocalTransport`` (one process owns every partition, fed from the database's
inbox: the embedded engine). The worker code is the same on both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, Protocol

from sealbot.engine.scaleout.broker import Signal
from sealbot.engine.scaleout.evict import PeerReading


class Delivery(Protocol):
    """One message of a partition. ``message_id`` de-duplicates it (the ledger's key);
    ``ack`` tells the transport it was committed and must not come again."""

    @property
    def message_id(self) -> str | None: ...

    @property
    def body(self) -> bytes: ...  # ``Signal.body()``

    def ack(self) -> Awaitable[None]: ...


class PartitionHost(Protocol):
    """What a transport calls on the worker (``worker.Worker``)."""

    @property
    def owned(self) -> dict[int, int]: ...  # partition -> epoch

    async def take(self, partition: int, claimed: Callable[[], Awaitable[None]] | None = None) -> bool:
        """This process may own ``partition`` now: accept (fair share), claim it, call
        ``claimed`` and start its accounts; False when the worker declines it."""

    async def apply(self, partition: int, deliveries: Sequence[Delivery]) -> bool:
        """Apply the deliveries in order, each acknowledged after its commit; False when
        the epoch fence refused one (this process no longer owns the partition: the ones
        not acknowledged must go back to the queue, in their place)."""

    async def drop(self, partition: int, *, release: bool) -> None:
        """This process no longer owns ``partition``: stop its accounts (``release``: also
        mark it ownerless in the database, a clean hand-over)."""

    async def fenced_out(self, partitions: Collection[int]) -> list[int]:
        """Those of ``partitions`` another process claimed meanwhile (fenced: counted once)."""

    def watch_peers(self, listener: Callable[[PeerReading], None]) -> None:
        """From now on, read every worker's heartbeat row with this worker's own and hand
        each reading to ``listener``, on the thread that read it (eviction, evict.py)."""

    def arrived(self, body: bytes) -> None:
        """A message reached this process (signal-to-worker latency)."""

    async def tick(self) -> list[int]:
        """One heartbeat round; the partitions nobody attends (no live owner)."""

    def write_stats(self) -> None:
        """Rewrite the stats file, if any."""


class Transport(Protocol):
    """What carries a worker's messages (see the module docstring)."""

    def attach(self, host: PartitionHost) -> None:
        """The worker this transport serves (called once, by the worker)."""

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; every partition owned is
        dropped before this returns."""

    async def contended(self, partition: int) -> bool:
        """Whether another process waits to own ``partition``."""

    async def leave(self, partition: int, *, release: bool) -> None:
        """Stop owning ``partition`` now (its accounts stop); offered again later."""

    async def publish(self, partition: int, signal: Signal) -> None:
        """Put ``signal`` into ``partition``, durably, before returning."""

    def describe(self) -> dict[str, Any]:
        """Transport details for the worker's stats snapshot."""


class AttachedTransport:
    """What every transport does alike: it serves the one worker that attached it."""

    _host: PartitionHost | None = None

    def attach(self, host: PartitionHost) -> None:
        self._host = host

    @property
    def host(self) -> PartitionHost:
        if self._host is None:
            raise RuntimeError("the transport serves no worker yet (attach)")
        return self._host
