"""The RabbitMQ transport of the scaled-out engine (``sealbot worker``).

A worker consumes every partition queue (single active consumer), so RabbitMQ makes it
the active consumer of some of them. The first message it receives on a partition it
does not own yet is how it learns it became active. Normally that is the partition's
``token``: the owner keeps one token delivery unacknowledged, so when the owner dies (its
socket closes: SIGKILL, a crash) or is cut off (the broker drops a paused worker's
connection after its missed AMQP heartbeats), the broker hands the token back and delivers
it at once to the next consumer, which takes over in milliseconds. Without a token in
the queue (a fresh deployment), it is a signal or a ``tick`` that peers publish into
partitions nobody heartbeats. Then

1. the worker decides whether to take the partition (``PartitionHost.take``: its fair
   share, ``contended`` asks the broker how many consumers wait on the queue); a declined
   partition's channel is closed (the message goes back, in its place) so the broker
   offers it to the next worker in line, and it is consumed again ``rejoin_after`` later;
2. once the worker claimed it, this transport publishes a token into the partition
   unless it took over by receiving one, and holds the token when it arrives (any second
   token is acknowledged; every ``token_refresh`` seconds the held one is swapped for a
   fresh one, as RabbitMQ closes a channel that holds a delivery unacknowledged past its
   ``consumer_timeout``);
3. the partition's signals go to the worker in batches (``PartitionHost.apply``); each is
   acknowledged after its commit, one by one (a ``multiple`` ack would take the held
   token along). A fenced batch ends the partition here: closing the channel gives the
   unacknowledged messages back to the broker.

Leaving a partition closes its channel *without* cancelling the consumer first: a cancel
would let the broker activate the next consumer while this channel still holds
unacknowledged messages, which would then come back after newer ones (reordering an
account's signals). Closing the channel returns them and removes the consumer in one step.

Every ``tick`` seconds the worker's heartbeat round runs (``PartitionHost.tick``) and this
transport publishes a tick into every partition nobody attends, so the consumer the broker
activated there learns it within one tick even when no signal flows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import sqlalchemy as sa
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, AbstractIncomingMessage

from sealbot.engine.scaleout.broker import (
    TICK,
    TOKEN,
    Publisher,
    Signal,
    Topology,
    declare,
    partition_queue,
    tick_message,
    token_message,
)
from sealbot.engine.scaleout.evict import BrokerAdmin, Evictor
from sealbot.engine.scaleout.market_queue import MarketQueue
from sealbot.engine.scaleout.metrics import WorkerMetrics
from sealbot.engine.scaleout.transport import AttachedTransport, PartitionHost

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RabbitSettings:
    """The transport's part of ``worker.WorkerOptions`` (documented there, with the
    defaults: ``WorkerOptions.rabbit`` builds this)."""

    broker_url: str = field(repr=False)  # may hold a password
    topology: Topology
    worker_id: str
    tick: float
    amqp_heartbeat: int
    prefetch: int
    batch: int
    rejoin_after: float
    token_refresh: float
    broker_admin_url: str = field(default="", repr=False)  # the management API; "": no eviction
    evict_after: float = 0.0  # seconds a peer's heartbeat stands still before it is evicted; 0: never


def connection_names(worker_id: str) -> frozenset[str]:
    """The client-provided names of a worker's broker connections (what RabbitMQ shows,
    and what eviction matches): its worker id for the consuming connection, the id and
    `` publisher`` for the one it publishes signals on."""
    return frozenset({worker_id, f"{worker_id} publisher"})


class RabbitTransport(AttachedTransport):
    """Partitions as single-active-consumer quorum queues (see the module docstring)."""

    def __init__(self, settings: RabbitSettings, *, market: MarketQueue | None = None,
                 metrics: WorkerMetrics | None = None) -> None:
        self.settings, self.market, self.metrics = settings, market, metrics
        self.topology = settings.topology
        self.id = settings.worker_id
        self._loops: dict[int, asyncio.Task[None]] = {}
        self._channels: dict[int, AbstractChannel] = {}
        self._releasing: set[int] = set()
        # partition -> (the token delivery held unacknowledged, monotonic time it arrived)
        self._tokens: dict[int, tuple[AbstractIncomingMessage, float]] = {}
        self._token_sent: dict[int, float] = {}  # partition -> monotonic time a token was last published
        self._connection: AbstractConnection | None = None
        self._publisher: Publisher | None = None
        self.evictor: Evictor | None = None  # hung peers' connections closed (evict.py)
        if settings.broker_admin_url and settings.evict_after > 0:
            self.evictor = Evictor(self.id, BrokerAdmin(settings.broker_admin_url), settings.evict_after,
                                   connection_names, metrics)

    def attach(self, host: PartitionHost) -> None:
        super().attach(host)
        if self.evictor is not None:  # every heartbeat reading goes to the evictor, on the reading thread
            host.watch_peers(self.evictor.round)

    @property
    def connected(self) -> bool:
        return self._connection is not None

    def describe(self) -> dict[str, Any]:
        return {"tokens": sorted(self._tokens), "evictions": self.evictor.evicted if self.evictor else 0,
                "peer_still_max": round(self.evictor.watch.longest_still, 3) if self.evictor else 0.0}

    # -- the connection --------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; a lost connection steps down from every partition
        (without touching the database: the next owner's claim fences this one) and
        reconnects."""
        try:
            while not stop.is_set():
                try:
                    connection = await aio_pika.connect(
                        self.settings.broker_url, heartbeat=self.settings.amqp_heartbeat,
                        client_properties={"connection_name": self.id})  # what a peer's eviction matches
                except (OSError, aio_pika.exceptions.AMQPError) as exc:
                    log.warning("worker %s: broker unreachable (%s); retrying", self.id, exc)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(1.0):
                            await stop.wait()
                    continue
                try:
                    await self._serve(connection, stop)
                except (OSError, aio_pika.exceptions.AMQPError) as exc:  # lost while setting up: retry
                    log.warning("worker %s: connection lost (%s); reconnecting", self.id, exc)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(1.0):
                            await stop.wait()
        finally:
            if self.evictor is not None:
                self.evictor.close()
            if self._publisher is not None:
                with contextlib.suppress(Exception):
                    await self._publisher.close()

    async def _serve(self, connection: AbstractConnection, stop: asyncio.Event) -> None:
        self._connection = connection
        channel = await connection.channel(publisher_confirms=False)
        exchange = await declare(channel, self.topology)
        if self.market is not None:
            await self.market.open(connection)
        for p in range(self.topology.partitions):
            self._loops[p] = asyncio.create_task(self._consume(p), name=f"partition {p}")
        beat = asyncio.create_task(self._beat_loop(channel, exchange), name="heartbeat")
        try:
            # polled rather than a close callback: a connection the broker dropped while this
            # process was paused is noticed on the first round after it resumes
            while not stop.is_set() and not connection.is_closed and not channel.is_closed:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.tick):
                        await stop.wait()
        finally:
            lost = connection.is_closed or channel.is_closed
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            if stop.is_set() and not lost:
                self._releasing.update(self.host.owned)  # a clean stop hands partitions over at once
            elif lost and self.host.owned:  # paused, then dropped by the broker: learn what the fence says
                with contextlib.suppress(Exception):
                    await self.host.fenced_out(list(self.host.owned))
            loops, self._loops = list(self._loops.values()), {}
            for task in loops:
                task.cancel()
            for task in loops:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for p in list(self.host.owned):
                await self._drop(p, release=False)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await connection.close()
            self._connection = None
            if self.market is not None:
                self.market.closed()

    # -- one partition ---------------------------------------------------------------------
    async def _consume(self, p: int, delay: float = 0.0) -> None:
        """Consume ``p`` until this worker leaves it (see the module docstring)."""
        if delay:
            await asyncio.sleep(delay)
        assert self._connection is not None
        channel = await self._connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=self.settings.prefetch)
        queue = await partition_queue(channel, self.topology, p)
        self._channels[p] = channel
        arrived: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        left = False
        try:
            await queue.consume(arrived.put)
            while True:
                batch = [await arrived.get()]
                while len(batch) < self.settings.batch and not arrived.empty():
                    batch.append(arrived.get_nowait())
                for message in batch:
                    if message.type != TICK:
                        self.host.arrived(message.body)
                if not await self._handle_batch(p, batch, channel):
                    left = True
                    break
        except (aio_pika.exceptions.AMQPError, aio_pika.exceptions.ChannelInvalidStateError, sa.exc.SQLAlchemyError,
                OSError) as exc:
            # a broken channel (also: an ack on a channel whose connection was just closed,
            # e.g. by a peer's eviction) or database error: leave the partition (the next owner's claim
            # fences anything half done) and queue again, rather than stop consuming it for good
            log.warning("worker %s: partition %s: %s; leaving it and queueing again", self.id, p, exc)
            left = True
            with contextlib.suppress(Exception):  # was it taken meanwhile (a pause)? the fence says
                await self.host.fenced_out([p])
        except Exception:  # a bug must not leave the partition unconsumed by this worker for good
            log.exception("worker %s: partition %s failed; leaving it and queueing again", self.id, p)
            left = True
        finally:
            await self._drop(p, release=p in self._releasing)
            self._tokens.pop(p, None)  # closing the channel gives it back to the broker
            self._token_sent.pop(p, None)
            self._channels.pop(p, None)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await channel.close()
        if left and self._connection is not None:  # back into the line, behind the other workers
            self._loops[p] = asyncio.create_task(self._consume(p, self.settings.rejoin_after), name=f"partition {p}")

    async def _handle_batch(self, p: int, batch: list[AbstractIncomingMessage], channel: AbstractChannel) -> bool:
        """Own ``p`` (taking it on its first delivery), then hand the signals to the
        worker; tokens are held, ticks acknowledged. False when this worker leaves ``p``."""
        if p not in self.host.owned:
            first = batch[0]
            log.debug("worker %s: first delivery on partition %s (%s)", self.id, p, first.type)

            async def claimed() -> None:
                if first.type == TOKEN:  # in hand: held once handled, no other sent meanwhile
                    self._token_sent[p] = time.monotonic()
                else:
                    await self._send_token(p, channel)  # none came back from the previous owner

            if not await self.host.take(p, claimed):
                return False  # closing the channel gives the message back, in its place
        signals: list[AbstractIncomingMessage] = []
        for message in batch:
            if message.type == TOKEN:
                await self._hold_token(p, message)
            elif message.type == TICK:
                await message.ack()
            else:
                signals.append(message)
        return await self.host.apply(p, signals) if signals else True

    async def contended(self, partition: int) -> bool:
        channel = self._channels.get(partition)
        if channel is None:
            return False
        declared = await channel.declare_queue(self.topology.queue(partition), passive=True)
        consumers = declared.declaration_result.consumer_count
        return consumers is not None and consumers > 1

    async def _send_token(self, p: int, channel: AbstractChannel) -> None:
        """Put a token into ``p``'s queue; it reaches this worker behind what is queued."""
        self._token_sent[p] = time.monotonic()
        await channel.default_exchange.publish(token_message(), routing_key=self.topology.queue(p))

    async def _hold_token(self, p: int, message: AbstractIncomingMessage) -> None:
        """Keep this token unacknowledged while ``p`` is owned; the one held before (a
        duplicate, or the one a refresh replaces) is acknowledged and so leaves the queue."""
        held = self._tokens.get(p)
        self._tokens[p] = (message, time.monotonic())
        self._token_sent.pop(p, None)
        if held is not None:
            await held[0].ack()

    async def _drop(self, p: int, *, release: bool) -> None:
        self._releasing.discard(p)
        await self.host.drop(p, release=release)

    async def leave(self, partition: int, *, release: bool) -> None:
        """Stop consuming ``partition`` now (its bots stop, its channel closes) and queue again later."""
        task = self._loops.pop(partition, None)
        if release:
            self._releasing.add(partition)
        if task is not None:
            task.cancel()
            # wait(), not ``await task``: a cancel of the caller (the heartbeat loop, which
            # _serve cancels when the connection is gone) must not be swallowed with the
            # partition loop's own CancelledError, or _serve waits for it forever and the
            # worker never reconnects (found by the scale-out chaos test: a woken worker)
            await asyncio.wait({task})
        if partition in self.host.owned:
            await self._drop(partition, release=release)
        if self._connection is not None:
            self._loops[partition] = asyncio.create_task(self._consume(partition, self.settings.rejoin_after),
                                                         name=f"partition {partition}")

    async def publish(self, partition: int, signal: Signal) -> None:
        """With a publisher confirm, on a connection of its own (opened on first use)."""
        if self._publisher is None:
            publisher = Publisher(self.settings.broker_url, self.topology, name=f"{self.id} publisher")
            await publisher.open()
            self._publisher = publisher
        await self._publisher.publish(partition, signal)

    # -- every tick ------------------------------------------------------------------------
    async def _beat_loop(self, channel: AbstractChannel, exchange: AbstractExchange) -> None:
        rounds = 0
        while True:
            try:
                await self._beat(channel, exchange, rounds)
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception:  # a failed round is retried on the next tick
                log.exception("worker %s: heartbeat round failed", self.id)
            rounds += 1
            await asyncio.sleep(self.settings.tick)

    async def _beat(self, channel: AbstractChannel, exchange: AbstractExchange, rounds: int) -> None:
        unattended = await self.host.tick()
        owned = self.host.owned
        for p in unattended:
            if p not in owned:
                await exchange.publish(tick_message(max(1.0, 4 * self.settings.tick)), routing_key=str(p))
        now, refresh = time.monotonic(), self.settings.token_refresh
        for p in list(owned):  # a token for every owned partition, none held too long
            held, sent = self._tokens.get(p), self._token_sent.get(p)
            if (held is None or now - held[1] >= refresh) and (sent is None or now - sent >= refresh):
                await self._send_token(p, channel)
        if rounds % 5 == 0 and owned and self.metrics is not None:
            lag = 0
            for p in list(owned):
                declared = await channel.declare_queue(self.topology.queue(p), passive=True)
                lag += declared.declaration_result.message_count or 0
            self.metrics.queue_lag.set(lag)
        if self.market is not None:  # bound market streams no ingestor feeds: warned once each, counted
            waiting = self.market.check()
            if self.metrics is not None:
                self.metrics.market_waiting.set(waiting)
        self.host.write_stats()
