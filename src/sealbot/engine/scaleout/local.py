"""The in-process transport: one process owns every partition (the embedded engine).

The embedded deployment runs the very worker code of ``sealbot worker``
(``worker.Worker``: claims with an epoch, accounts reconciled before their bots act,
every write fenced, every message recorded in the ``engine_messages`` ledger and applied
once) on this transport instead of RabbitMQ's. Nothing else decides ownership here: the
process takes every partition when it starts, and a database lock (``EngineLock`` in the
services layer) keeps it to one process per database.

Messages come from a ``MessageSource`` (the embedded engine's is the web tier's bot
inbox, ``services.inbox.InboxSource``) or from ``publish``. Each partition has its own
FIFO and its own consumer task, so one slow account holds back only its partition, as
with RabbitMQ. A message is acknowledged to its source (the inbox item marked delivered)
only after the worker committed it: a crash in between delivers it again, and the ledger
applies it once.

The source is read when ``wake`` is called (the web tier posted into the inbox in this
very process: ``sealbot serve``, ``sealbot demo``) and at least every ``poll`` seconds
(a web tier in another process). Messages read but not yet acknowledged are remembered
by id, so a later read does not queue them twice.

If the worker leaves a partition (its epoch fence refused a write: another process claimed
it), the messages not acknowledged stay queued in their order, and the partition is taken
again ``rejoin_after`` seconds later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sealbot.engine.scaleout.broker import Signal
from sealbot.engine.scaleout.partitions import PartitionStore
from sealbot.engine.scaleout.transport import AttachedTransport

log = logging.getLogger(__name__)


class MessageSource(Protocol):
    """Where the in-process transport's messages wait (called in a worker thread)."""

    def pending(self, limit: int) -> Sequence[Signal]:
        """Messages not acknowledged yet, oldest first."""

    def acknowledge(self, message_id: str) -> None:
        """The message was committed: it must not be returned by ``pending`` again."""


@dataclass
class LocalDelivery:
    """One queued message (``transport.Delivery``)."""

    signal: Signal
    transport: LocalTransport
    from_source: bool
    acked: bool = False

    @property
    def message_id(self) -> str:
        return self.signal.message_id

    @property
    def body(self) -> bytes:
        return self.signal.body()

    async def ack(self) -> None:
        await self.transport._acknowledge(self)


@dataclass
class LocalStats:
    read: int = 0  # messages read from the source
    published: int = 0  # messages put in with ``publish``
    acknowledged: int = 0
    wakes: int = 0


class LocalTransport(AttachedTransport):
    """Every partition in this process (see the module docstring)."""

    def __init__(self, store: PartitionStore, *, source: MessageSource | None = None, poll: float = 1.0,
                 tick: float = 1.0, batch: int = 64, read_limit: int = 500, rejoin_after: float = 1.0) -> None:
        if poll <= 0 or tick <= 0:
            raise ValueError("poll, tick: must be positive")
        self.store, self.source = store, source
        self.poll, self.tick, self.batch, self.read_limit = poll, tick, batch, read_limit
        self.rejoin_after = rejoin_after
        self.stats = LocalStats()
        self._queues: dict[int, deque[LocalDelivery]] = {p: deque() for p in range(store.partitions)}
        self._arrived: dict[int, asyncio.Event] = {}
        self._inflight: dict[str, int] = {}  # message id -> partition: read from the source, not acknowledged
        self._consumers: dict[int, asyncio.Task[None]] = {}
        self._rejoins: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._acked = asyncio.Event()
        self._reading = asyncio.Lock()
        self._acked_in_read: set[str] | None = None  # acknowledged while a read runs (see ``read``)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.ready = asyncio.Event()  # every partition was taken once (or declined) and is consumed

    def describe(self) -> dict[str, Any]:
        return {"queued": sum(len(q) for q in self._queues.values()), "inflight": len(self._inflight)}

    # -- the process -----------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Take every partition, then read the source on each ``wake`` and every ``poll``
        seconds until ``stop``; every partition is released (a clean stop) on the way out."""
        self._loop = asyncio.get_running_loop()
        beat: asyncio.Task[None] | None = None
        try:
            for p in range(self.store.partitions):
                await self._take(p)
            self.ready.set()
            beat = asyncio.create_task(self._beat_loop(), name="heartbeat")
            while not stop.is_set():
                try:
                    await self.read()
                except Exception:  # the database away for a moment: the next round retries
                    log.exception("in-process transport: reading the source failed")
                waiting = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
                try:
                    await asyncio.wait(waiting, timeout=self.poll, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waiting:
                        w.cancel()
                self._wake.clear()
        finally:
            if beat is not None:
                beat.cancel()
                await asyncio.wait({beat})
            for task in list(self._rejoins):
                task.cancel()
            consumers, self._consumers = list(self._consumers.values()), {}
            for task in consumers:
                task.cancel()
            if consumers:
                await asyncio.wait(consumers)
            for p in list(self.host.owned):
                await self.host.drop(p, release=True)
            self.ready.clear()

    def wake(self) -> None:
        """Read the source now (call on the transport's event loop)."""
        self.stats.wakes += 1
        self._wake.set()

    def wake_threadsafe(self) -> None:
        """``wake`` from any thread (the web tier's request threads)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self.wake)

    async def read(self) -> int:
        """Queue what the source holds and is not queued yet, each message in its
        account's partition; how many were new."""
        if self.source is None:
            return 0
        source = self.source
        async with self._reading:  # one read at a time: messages are queued in source order
            # a message acknowledged while the source is read may still be in what it returns
            # (read before the acknowledgement committed): it must not be queued again
            self._acked_in_read = set()
            try:
                signals = await asyncio.to_thread(source.pending, self.read_limit)
                new = [s for s in signals if s.message_id not in self._inflight
                       and s.message_id not in self._acked_in_read]
            finally:
                self._acked_in_read = None
            if not new:
                return 0
            partition_of = await asyncio.to_thread(self.store.partitions_of, sorted({s.account for s in new}))
            for signal in new:
                self._queue(partition_of[signal.account], LocalDelivery(signal, self, True))
            self.stats.read += len(new)
            return len(new)

    async def drain(self, timeout: float = 30.0) -> None:
        """Read the source now and return once everything queued for an owned partition
        was acknowledged (``TimeoutError`` after ``timeout`` seconds)."""
        await self.read()
        async with asyncio.timeout(timeout):
            while any(p in self.host.owned for p in self._inflight.values()):
                self._acked.clear()
                await self._acked.wait()

    async def publish(self, partition: int, signal: Signal) -> None:
        if not 0 <= partition < self.store.partitions:
            raise ValueError(f"partition: must be between 0 and {self.store.partitions - 1}")
        self._queue(partition, LocalDelivery(signal, self, False))
        self.stats.published += 1

    async def contended(self, partition: int) -> bool:
        return False  # nobody else consumes here: the database lock keeps this process alone

    async def leave(self, partition: int, *, release: bool) -> None:
        """Stop consuming ``partition`` (its accounts stop) and take it again later; what
        it had queued stays queued, in order."""
        task = self._consumers.pop(partition, None)
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        if partition in self.host.owned:
            await self.host.drop(partition, release=release)
        rejoin = asyncio.create_task(self._rejoin(partition), name=f"rejoin partition {partition}")
        self._rejoins.add(rejoin)
        rejoin.add_done_callback(self._rejoins.discard)

    # -- partitions ------------------------------------------------------------------------
    def _queue(self, p: int, delivery: LocalDelivery) -> None:
        if delivery.from_source:
            self._inflight[delivery.message_id] = p
        self._queues[p].append(delivery)
        self._arrival(p).set()

    def _arrival(self, p: int) -> asyncio.Event:
        event = self._arrived.get(p)
        if event is None:
            event = self._arrived[p] = asyncio.Event()
        return event

    async def _take(self, p: int) -> None:
        try:
            taken = await self.host.take(p)
        except BaseException:  # claimed half-way: not owned without a consumer
            if p in self.host.owned:
                await self.host.drop(p, release=False)
            raise
        if taken:
            self._consumers[p] = asyncio.create_task(self._consume(p), name=f"partition {p}")
        else:  # declined (more live workers than this one on the database): asked again later
            await self.leave(p, release=False)

    async def _rejoin(self, p: int) -> None:
        while True:
            await asyncio.sleep(self.rejoin_after)
            if p in self.host.owned or p in self._consumers:
                return
            try:
                await self._take(p)
                return
            except Exception:  # the database away: try again, the partition must not stay unowned
                log.exception("in-process transport: taking partition %s again failed; retrying", p)

    async def _consume(self, p: int) -> None:
        queue, arrived = self._queues[p], self._arrival(p)
        while True:
            while not queue:
                arrived.clear()
                await arrived.wait()
            batch = [queue.popleft() for _ in range(min(self.batch, len(queue)))]
            for delivery in batch:
                self.host.arrived(delivery.body)
            done = False
            try:
                done = await self.host.apply(p, batch)
            except asyncio.CancelledError:
                self._requeue(p, batch)
                raise
            except Exception:  # a bug or the database away: leave, the next owner's claim fences the rest
                log.exception("in-process transport: partition %s failed; leaving it and taking it again", p)
            if not done:
                self._requeue(p, batch)
                self._consumers.pop(p, None)
                asyncio.get_running_loop().call_soon(self._leave_soon, p)
                return

    def _leave_soon(self, p: int) -> None:
        """Leave ``p`` from outside its consumer (``leave`` waits for the consumer to end)."""
        task = asyncio.create_task(self.leave(p, release=False), name=f"leave partition {p}")
        self._rejoins.add(task)
        task.add_done_callback(self._rejoins.discard)

    def _requeue(self, p: int, batch: list[LocalDelivery]) -> None:
        """Put back, in front and in order, what was taken and not acknowledged."""
        waiting = [d for d in batch if not d.acked]
        self._queues[p].extendleft(reversed(waiting))
        if waiting:
            self._arrival(p).set()

    async def _acknowledge(self, delivery: LocalDelivery) -> None:
        if delivery.acked:
            return
        if delivery.from_source and self.source is not None:
            await asyncio.to_thread(self.source.acknowledge, delivery.message_id)
            self._inflight.pop(delivery.message_id, None)
            if self._acked_in_read is not None:
                self._acked_in_read.add(delivery.message_id)
        delivery.acked = True
        self.stats.acknowledged += 1
        self._acked.set()

    async def _beat_loop(self) -> None:
        while True:
            try:
                await self.host.tick()  # nobody to wake here: every partition is this process's
                self.host.write_stats()
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception:  # a failed round is retried on the next tick
                log.exception("in-process transport: heartbeat round failed")
            await asyncio.sleep(self.tick)
