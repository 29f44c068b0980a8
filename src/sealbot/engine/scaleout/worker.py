"""The worker process of the scaled-out engine.

A worker consumes every partition queue (single active consumer), so RabbitMQ makes it
the active consumer of some of them. The first message it receives on a partition it
does not own yet is how it learns it became active. Normally that is the partition's
``token``: the owner keeps one token delivery unacknowledged, so when the owner dies (its
socket closes: SIGKILL, a crash) or is cut off (the broker drops a paused worker's
connection after its missed AMQP heartbeats), the broker hands the token back and delivers
it at once to the next consumer, which takes over in milliseconds. Without a token in
the queue (a fresh deployment), it is a signal or a ``tick`` that peers publish into
partitions nobody heartbeats. The worker then

1. accepts the partition at once if its previous owner did not release it (a dead or
   cut-off worker: takeover speed first); a cleanly released partition only if it holds
   less than its fair share (``ceil(P / live workers)``) or nobody else consumes it, else
   it closes that channel (the message goes back, in its place) so the broker offers the
   partition to the next worker in line, and queues again ``rejoin_after`` later;
2. claims it: raises the partition's epoch in the database (``PartitionStore.claim``);
3. publishes a token into the partition unless it took over by receiving one, and holds
   the token when it arrives (any second token is acknowledged; every ``token_refresh``
   seconds the held one is swapped for a fresh one, as RabbitMQ closes a channel that
   holds a delivery unacknowledged past its ``consumer_timeout``);
4. starts, side by side, the partition's accounts that have running or paused bots on its
   ``InProcessRunner``, under the partition's fenced scope: each account reconciles with
   its exchange before any bot acts (``AccountRunner.start``);
5. applies the partition's messages one at a time: every transaction checks the epoch
   and records the message id in the same commit; the broker ack comes after the commit.

Every ``tick`` seconds the worker writes its heartbeat (and counts live peers), writes a
fenced heartbeat for each partition it owns (a refused one means another worker took the
partition over while this one was paused or cut off: it stops that partition's bots and
closes its channel), releases one partition if it holds more than its share, and
publishes a tick into every partition whose owner has not heartbeaten for
``stale_after`` seconds, so the consumer the broker activated there learns it within
one tick even when no signal flows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import sqlalchemy as sa
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
)
from sqlalchemy.orm import Session, sessionmaker

from sealbot.domain import Event
from sealbot.engine.guard import GuardPolicy
from sealbot.engine.runner import InProcessRunner, RunnerSettings, VenueFactory
from sealbot.engine.scaleout.broker import (
    TICK,
    TOKEN,
    Signal,
    Topology,
    declare,
    partition_queue,
    tick_message,
    token_message,
)
from sealbot.engine.scaleout.fence import CURRENT, FencedJournal, Scope
from sealbot.engine.scaleout.market_queue import MarketQueue
from sealbot.engine.scaleout.metrics import WorkerMetrics
from sealbot.engine.scaleout.partitions import AlreadyApplied, Applied, Fenced, PartitionStore
from sealbot.engine.scaleout.upkeep import PartitionUpkeep
from sealbot.engine.store_journal import ACTIVE_ACCOUNTS
from sealbot.store import UnitOfWork
from sealbot.store.db import make_engine
from sealbot.store.models import Bot, ExchangeAccount

log = logging.getLogger(__name__)

EventDecoder = Callable[[str, Mapping[str, Any]], Event]
_LIVE_BOTS = ("running", "paused")


def _limit_idle_transactions(session_factory: sessionmaker[Session], seconds: float) -> None:
    """PostgreSQL: ``idle_in_transaction_session_timeout`` on every connection of this
    worker. A worker paused (SIGSTOP, a hung VM) between two statements of a transaction
    keeps its row locks; without this the next owner's claim would wait for it forever."""
    engine = session_factory.kw["bind"]
    if engine.dialect.name != "postgresql" or seconds <= 0:
        return

    @sa.event.listens_for(engine, "connect")
    def _set_timeout(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET idle_in_transaction_session_timeout = {int(seconds * 1000)}")
        dbapi_connection.commit()


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class WorkerOptions:
    broker_url: str
    topology: Topology = field(default_factory=Topology)
    worker_id: str = field(default_factory=new_worker_id)
    tick: float = 0.2  # seconds between two heartbeats / tick rounds
    amqp_heartbeat: int = 1  # seconds; the broker drops a silent connection after about two of these
    prefetch: int = 64  # unacknowledged messages per partition channel
    batch: int = 64  # ledger-only messages that arrived together commit in one transaction
    rejoin_after: float = 1.0  # seconds before a released partition is consumed again (back of the line)
    live_within: float = 1.0  # a peer whose heartbeat is older than this is not counted
    stale_after: float = 0.3  # a partition whose owner has not heartbeaten for this long gets ticks
    stats_file: Path | None = None  # JSON snapshot of this worker, rewritten every tick
    record_latencies: bool = False  # keep the last 5000 latencies in the snapshot (bench/scale.py)
    market_data: str = "poll"  # "poll": each worker polls candles itself; "ingest": from `sealbot ingest`
    # PostgreSQL ends a session idle inside a transaction this long (seconds): a paused
    # worker holding a partition's share lock mid-transaction cannot block the takeover
    idle_transaction_timeout: float = 2.0
    # seconds the owner keeps one token delivery before swapping it for a fresh one:
    # RabbitMQ closes a channel that holds a delivery unacknowledged for longer than its
    # consumer_timeout (30 min by default), which would hand the partition over for nothing
    token_refresh: float = 60.0
    start_concurrency: int = 16  # accounts of one claimed partition starting (reconciling) at once
    runner: RunnerSettings = field(default_factory=RunnerSettings)


@dataclass
class WorkerStats:
    applied: int = 0
    duplicates: int = 0
    fenced: int = 0
    claims: int = 0
    releases: int = 0
    declined: int = 0
    reconciled: int = 0
    failed: int = 0
    live: int = 1


class Worker:
    """One worker process: owns the partitions RabbitMQ gives it, runs their accounts."""

    def __init__(self, session_factory: sessionmaker[Session], venue_factory: VenueFactory,
                 decode: EventDecoder, options: WorkerOptions, metrics: WorkerMetrics | None = None,
                 guard: GuardPolicy | None = None, upkeep: PartitionUpkeep | None = None) -> None:
        self.session_factory, self.decode, self.options = session_factory, decode, options
        self.id = options.worker_id
        self.topology = options.topology
        self.store = PartitionStore(session_factory, self.topology.partitions)
        _limit_idle_transactions(session_factory, options.idle_transaction_timeout)
        bind = session_factory.kw["bind"]
        # PostgreSQL: ledger-only messages (most of the traffic) commit as one statement on
        # autocommit connections that skip the pool's ping (PartitionStore.record_fenced)
        self._ledger: sa.Engine | None = (
            make_engine(bind.url, pool_pre_ping=False, isolation_level="AUTOCOMMIT")
            if bind.dialect.name == "postgresql" else None)
        self.journal = FencedJournal(session_factory, self.store)
        if options.market_data not in ("poll", "ingest"):
            raise ValueError("market_data: must be 'poll' or 'ingest'")
        ingest = options.market_data == "ingest"
        settings = replace(options.runner, poll_feeds=False) if ingest else options.runner
        self.runner = InProcessRunner(self.journal, venue_factory, guard=guard, settings=settings)
        self.upkeep = upkeep  # keeps owned accounts in step with the database, watches them (upkeep.py)
        if upkeep is not None:
            upkeep.attach(self.runner)
        # candles from `sealbot ingest`, bound per (exchange, pair) the runner's bots trade
        self.market = MarketQueue(self.topology, self.id, self.runner.hub) if ingest else None
        self.metrics = metrics or WorkerMetrics(self.id)
        self.stats = WorkerStats()
        self.owned: dict[int, int] = {}  # partition -> epoch
        self.accounts: dict[int, list[str]] = {}  # partition -> accounts started on the runner
        self._loops: dict[int, asyncio.Task[None]] = {}
        self._releasing: set[int] = set()
        # partition -> (the token delivery held unacknowledged, monotonic time it arrived)
        self._tokens: dict[int, tuple[AbstractIncomingMessage, float]] = {}
        self._token_sent: dict[int, float] = {}  # partition -> monotonic time a token was last published
        self._connection: AbstractConnection | None = None
        self._to_worker: deque[float] = deque(maxlen=5_000)  # recent signal-to-worker delays (s)
        self._to_commit: deque[float] = deque(maxlen=5_000)  # recent signal-to-commit delays (s)

    # -- the process ---------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; a lost connection steps down from every partition
        (without touching the database: the next owner's claim fences this one) and
        reconnects."""
        self.store.ensure()
        try:
            while not stop.is_set():
                try:
                    connection = await aio_pika.connect(self.options.broker_url,
                                                        heartbeat=self.options.amqp_heartbeat)
                except (OSError, aio_pika.exceptions.AMQPError) as exc:
                    log.warning("worker %s: broker unreachable (%s); retrying", self.id, exc)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 1.0)
                    continue
                try:
                    await self._serve(connection, stop)
                except (OSError, aio_pika.exceptions.AMQPError) as exc:  # lost while setting up: retry
                    log.warning("worker %s: connection lost (%s); reconnecting", self.id, exc)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 1.0)
        finally:
            self.store.leave(self.id)
            if self._ledger is not None:
                self._ledger.dispose()

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
                    await asyncio.wait_for(stop.wait(), self.options.tick)
        finally:
            lost = connection.is_closed or channel.is_closed
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            if stop.is_set() and not lost:
                self._releasing.update(self.owned)  # a clean stop hands partitions over at once
            loops, self._loops = list(self._loops.values()), {}
            for task in loops:
                task.cancel()
            for task in loops:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for p in list(self.owned):
                await self._step_down(p, release=False)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2.0)
            self._connection = None
            if self.market is not None:
                self.market.closed()

    # -- one partition ---------------------------------------------------------------------
    async def _consume(self, p: int, delay: float = 0.0) -> None:
        """Consume ``p`` until this worker leaves it. Leaving closes the channel *without*
        cancelling the consumer first: a cancel would let the broker activate the next
        consumer while this channel still holds unacknowledged messages, which would then
        come back after newer ones (reordering an account's signals). Closing the channel
        returns them and removes the consumer in one step."""
        if delay:
            await asyncio.sleep(delay)
        assert self._connection is not None
        channel = await self._connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=self.options.prefetch)
        queue = await partition_queue(channel, self.topology, p)
        arrived: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        left = False
        try:
            await queue.consume(arrived.put)
            while True:
                batch = [await arrived.get()]
                while len(batch) < self.options.batch and not arrived.empty():
                    batch.append(arrived.get_nowait())
                for message in batch:
                    self._arrived(message)
                if not await self._handle_batch(p, batch, channel):
                    left = True
                    break
        except (aio_pika.exceptions.AMQPError, sa.exc.SQLAlchemyError, OSError) as exc:
            # a broken channel or database error: leave the partition (the next owner's claim
            # fences anything half done) and queue again, rather than stop consuming it for good
            log.warning("worker %s: partition %s: %s; leaving it and queueing again", self.id, p, exc)
            left = True
        except Exception:  # a bug must not leave the partition unconsumed by this worker for good
            log.exception("worker %s: partition %s failed; leaving it and queueing again", self.id, p)
            left = True
        finally:
            await self._step_down(p, release=p in self._releasing)
            self._tokens.pop(p, None)  # closing the channel gives it back to the broker
            self._token_sent.pop(p, None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(channel.close(), 2.0)
        if left and self._connection is not None:  # back into the line, behind the other workers
            self._loops[p] = asyncio.create_task(self._consume(p, self.options.rejoin_after), name=f"partition {p}")

    async def _owns(self, p: int, message: AbstractIncomingMessage, channel: AbstractChannel) -> bool:
        """Own ``p`` (claim it on this first delivery) or decline it: False."""
        if p in self.owned:
            return True
        log.debug("worker %s: first delivery on partition %s (%s)", self.id, p, message.type)
        if not await self._accept(p, channel):
            self.stats.declined += 1
            return False  # closing the channel gives the message back, in its place
        await self._claim(p)
        if message.type == TOKEN:
            self._token_sent[p] = time.monotonic()  # in hand: held once handled, no other sent meanwhile
        else:
            await self._send_token(p, channel)  # none came back from the previous owner
        await self._start_accounts(p)
        return True

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

    def _ledger_only(self, message: AbstractIncomingMessage) -> Signal | None:
        """The signal, when applying it writes nothing but its ledger row (its account
        runs no bot it names here); None for ticks, bot events and unreadable bodies."""
        if message.type in (TICK, TOKEN):
            return None
        try:
            signal = Signal.parse(message.message_id or "", message.body)
        except (ValueError, KeyError, TypeError):
            return None
        runner = self.runner.accounts.get(signal.account)
        if signal.bot is not None and runner is not None and signal.bot in runner.bots and signal.kind != "note":
            return None
        return signal

    async def _handle_batch(self, p: int, batch: list[AbstractIncomingMessage], channel: AbstractChannel) -> bool:
        """Apply what arrived, in order. A run of consecutive ledger-only messages commits
        in one fenced transaction (one WAL flush); a bot's event steps the bot in its own
        transaction as always."""
        if not await self._owns(p, batch[0], channel):
            return False
        i = 0
        while i < len(batch):
            run: list[tuple[AbstractIncomingMessage, Signal]] = []
            while i < len(batch) and (signal := self._ledger_only(batch[i])) is not None:
                run.append((batch[i], signal))
                i += 1
            if run:
                if not await self._apply_run(p, run):
                    return False
                continue
            if not await self._handle(p, batch[i], channel):
                return False
            i += 1
        return True

    async def _apply_run(self, p: int, run: list[tuple[AbstractIncomingMessage, Signal]]) -> bool:
        epoch = self.owned[p]
        applied = [Applied(s.message_id, p, epoch, self.id, s.account, s.kind, s.seq, s.sent_at) for _, s in run]
        try:
            inserted = await asyncio.to_thread(self._record_many, p, epoch, applied)
        except Fenced as exc:
            self._fenced(exc)
            return False  # not acknowledged: closing the channel gives them back to the broker
        now = datetime.now(UTC)
        self.stats.applied += inserted
        self.metrics.applied.inc(inserted)
        if inserted < len(run):
            self.stats.duplicates += len(run) - inserted
            self.metrics.duplicates.inc(len(run) - inserted)
        for _, signal in run:
            if signal.sent_at is not None:
                delay = (now - signal.sent_at).total_seconds()
                self.metrics.signal_to_commit.observe(delay)
                if self.options.record_latencies:
                    self._to_commit.append(delay)
        for message, _ in run:  # one by one: a ``multiple`` ack would take the held token along
            await message.ack()
        return True

    def _record_many(self, p: int, epoch: int, applied: list[Applied]) -> int:
        if self._ledger is not None:
            with self._ledger.connect() as connection:
                return self.store.record_fenced(connection, p, epoch, applied)
        with UnitOfWork(self.session_factory) as uow:
            self.store.fence(uow.session, p, epoch)
            return self.store.record_many(uow.session, applied)

    async def _handle(self, p: int, message: AbstractIncomingMessage, channel: AbstractChannel) -> bool:
        """Apply one message; False when this worker leaves the partition."""
        if not await self._owns(p, message, channel):
            return False
        epoch = self.owned[p]
        if message.type == TOKEN:
            await self._hold_token(p, message)
            return True
        if message.type == TICK:
            await message.ack()
            return True
        try:
            signal = Signal.parse(message.message_id or "", message.body)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("partition %s: unreadable message %s dropped (%s)", p, message.message_id, exc)
            await message.ack()
            return True
        scope = Scope(p, epoch, Applied(signal.message_id, p, epoch, self.id, signal.account, signal.kind,
                                        signal.seq, signal.sent_at))
        token = CURRENT.set(scope)
        try:
            await self._apply(signal, scope)
        except Fenced as exc:
            self._fenced(exc)
            return False  # not acknowledged: closing the channel gives it back to the broker
        except AlreadyApplied:
            self.stats.duplicates += 1
            self.metrics.duplicates.inc()
        finally:
            CURRENT.reset(token)
        await message.ack()
        return True

    async def _apply(self, signal: Signal, scope: Scope) -> None:
        runner = self.runner.accounts.get(signal.account)
        if signal.bot is not None and runner is not None and signal.bot in runner.bots and signal.kind != "note":
            try:
                await runner.deliver(signal.bot, self.decode(signal.kind, signal.payload))
            except (Fenced, AlreadyApplied):
                raise
            except Exception:  # the bot's failure is its account's: logged, reconciled before its next event
                log.exception("account %s: applying %s failed", signal.account, signal.message_id)
                self.stats.failed += 1
                runner.needs_reconcile = True
        if not scope.recorded:  # nothing committed it yet (no live bot, or the bot's step failed)
            # in a thread (the scope goes with the copied context): the partitions' commits
            # then overlap and PostgreSQL groups their WAL flushes, instead of one flush at a time
            await asyncio.to_thread(self._record_only)
        self.stats.applied += 1
        self.metrics.applied.inc()
        if signal.sent_at is not None:
            delay = (datetime.now(UTC) - signal.sent_at).total_seconds()
            self.metrics.signal_to_commit.observe(delay)
            if self.options.record_latencies:
                self._to_commit.append(delay)

    def _record_only(self) -> None:
        with self.journal.transaction():
            pass

    async def _accept(self, p: int, channel: AbstractChannel) -> bool:
        """Take a partition that lost its owner at once (takeover speed first; the fair
        share is restored by releases afterwards); one that was released cleanly only while
        under the fair share, or when no other worker consumes it."""
        share = math.ceil(self.topology.partitions / max(1, self.stats.live))
        if len(self.owned) < share:
            return True
        # in a thread, like every database round trip here: on the event loop it would
        # hold back the other partitions' deliveries (and the takeovers beside this one)
        if await asyncio.to_thread(self.store.owner_of, p) not in (None, self.id):
            return True
        declared = await channel.declare_queue(self.topology.queue(p), passive=True)
        consumers = declared.declaration_result.consumer_count
        return consumers is None or consumers <= 1

    async def _claim(self, p: int) -> None:
        # in a thread: the claim waits for the old owner's transaction in flight, and the
        # event loop must keep answering the broker's heartbeats meanwhile
        epoch = await asyncio.to_thread(self.store.claim, p, self.id)
        self.owned[p] = epoch
        self.stats.claims += 1
        self.metrics.takeovers.inc()
        self.metrics.partitions_owned.set(len(self.owned))
        log.info("worker %s: partition %s claimed at epoch %s", self.id, p, epoch)

    async def _start_accounts(self, p: int) -> None:
        """Start the partition's accounts that have running or paused bots, side by side
        (at most ``start_concurrency`` at a time): each reconciles with its exchange before
        any of its bots acts (``AccountRunner.start``), and one slow exchange no longer
        holds the partition's other accounts back."""
        epoch = self.owned[p]
        candidates = await asyncio.to_thread(self._accounts_with_bots, p)
        gate = asyncio.Semaphore(max(1, self.options.start_concurrency))

        async def start(account_id: str) -> None:
            async with gate:
                await self.runner.start_account(account_id)  # reconciles before any bot acts

        token = CURRENT.set(Scope(p, epoch))  # the tasks below copy it: their writes are fenced
        try:
            results = await asyncio.gather(*(start(a) for a in candidates), return_exceptions=True)
        finally:
            CURRENT.reset(token)
            # what runs now (also when this was cancelled half-way) stops with the partition
            self.accounts[p] = [a for a in candidates if a in self.runner.accounts]
        started: list[str] = []
        for account_id, result in zip(candidates, results, strict=True):
            if isinstance(result, BaseException):  # the account retries on the next claim
                log.error("account %s: not started", account_id, exc_info=result)
                continue
            started.append(account_id)
            self.stats.reconciled += 1
            self.metrics.reconciliations.inc()
        if self.upkeep is not None:
            await self.upkeep.claimed(p, epoch, started)

    def _accounts_with_bots(self, p: int) -> list[str]:
        """The partition's active accounts that have a running or paused bot (two queries)."""
        with self.session_factory() as session:
            rows = session.scalars(sa.select(Bot.account_id).join(ExchangeAccount, ExchangeAccount.id == Bot.account_id)
                                   .where(Bot.status.in_(_LIVE_BOTS), ExchangeAccount.status.in_(ACTIVE_ACCOUNTS))
                                   .distinct())
            candidates = sorted({str(r) for r in rows}, key=int)
        partition_of = self.store.partitions_of(candidates)
        return [a for a in candidates if partition_of[a] == p]

    async def _step_down(self, p: int, *, release: bool) -> None:
        epoch = self.owned.pop(p, None)
        self._releasing.discard(p)
        if self.upkeep is not None:  # its work for p ends before p's accounts stop
            with contextlib.suppress(Exception):
                await self.upkeep.left(p)
        for account_id in self.accounts.pop(p, []):
            with contextlib.suppress(Exception):
                await self.runner.stop_account(account_id)
        if epoch is None:
            return
        self.stats.releases += 1
        self.metrics.releases.inc()
        self.metrics.partitions_owned.set(len(self.owned))
        if release:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.store.release, p, epoch)
        log.info("worker %s: partition %s left (epoch %s, %s)", self.id, p, epoch,
                 "released" if release else "stepped down")

    def _arrived(self, message: AbstractIncomingMessage) -> None:
        """Signal-to-worker latency: broker timestamp (set at publish, in seconds) is too coarse,
        so the publish time in the body is used."""
        if message.type == TICK:
            return
        with contextlib.suppress(ValueError, KeyError, TypeError):
            sent = json.loads(message.body).get("sent_at")
            if sent:
                delay = (datetime.now(UTC) - datetime.fromisoformat(sent)).total_seconds()
                self.metrics.signal_to_worker.observe(delay)
                if self.options.record_latencies:
                    self._to_worker.append(delay)

    def _fenced(self, exc: Fenced) -> None:
        self.stats.fenced += 1
        self.metrics.fenced_writes.inc()
        log.warning("worker %s: %s; stepping down", self.id, exc)

    async def _leave(self, p: int, *, release: bool) -> None:
        """Stop consuming ``p`` now (its bots stop, its channel closes) and queue again later."""
        task = self._loops.pop(p, None)
        if release:
            self._releasing.add(p)
        if task is not None:
            task.cancel()
            # wait(), not ``await task``: a cancel of the caller (the heartbeat loop, which
            # _serve cancels when the connection is gone) must not be swallowed with the
            # partition loop's own CancelledError, or _serve waits for it forever and the
            # worker never reconnects (found by the scale-out chaos test: a woken worker)
            await asyncio.wait({task})
        if p in self.owned:
            await self._step_down(p, release=release)
        if self._connection is not None:
            self._loops[p] = asyncio.create_task(self._consume(p, self.options.rejoin_after), name=f"partition {p}")

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
            await asyncio.sleep(self.options.tick)

    async def _beat(self, channel: AbstractChannel, exchange: AbstractExchange, rounds: int) -> None:
        # The database round trips run in a thread, in one transaction each: on the event
        # loop they would hold every partition's deliveries back for a WAL flush apiece.
        owned = dict(self.owned)
        stale, live, unattended = await asyncio.to_thread(self._beat_db, owned)
        for p in stale:
            if self.owned.get(p) == owned[p]:
                self._fenced(Fenced(p, owned[p], None))
                await self._leave(p, release=False)
        self.stats.live = live
        share = math.ceil(self.topology.partitions / self.stats.live)
        if len(self.owned) > share:
            await self._leave(max(self.owned), release=True)  # one per tick: the others settle meanwhile
        for p in unattended:
            if p not in self.owned:
                await exchange.publish(tick_message(max(1.0, 4 * self.options.tick)), routing_key=str(p))
        now, refresh = time.monotonic(), self.options.token_refresh
        for p in list(self.owned):  # a token for every owned partition, none held too long
            held, sent = self._tokens.get(p), self._token_sent.get(p)
            if (held is None or now - held[1] >= refresh) and (sent is None or now - sent >= refresh):
                await self._send_token(p, channel)
        if rounds % 5 == 0 and self.owned:
            lag = 0
            for p in list(self.owned):
                declared = await channel.declare_queue(self.topology.queue(p), passive=True)
                lag += declared.declaration_result.message_count or 0
            self.metrics.queue_lag.set(lag)
        self._write_stats()

    def _beat_db(self, owned: dict[int, int]) -> tuple[list[int], int, list[int]]:
        """(partitions whose fenced heartbeat was refused, live workers, unattended partitions)."""
        stale = self.store.heartbeat_many(owned)
        live = self.store.beat(self.id, len(owned) - len(stale), timedelta(seconds=self.options.live_within))
        return stale, live, self.store.unattended(timedelta(seconds=self.options.stale_after))

    def snapshot(self) -> dict[str, Any]:
        """What the stats file holds: owned partitions, counters, and the recent latencies
        (seconds) of signal-to-worker and signal-to-commit for the benchmark."""
        return {"worker": self.id, "pid": os.getpid(), "owned": {str(p): e for p, e in sorted(self.owned.items())},
                "tokens": sorted(self._tokens), **self.stats.__dict__,
                "market_messages": self.market.received if self.market else 0,
                "candles": self.market.delivered if self.market else 0,
                "to_worker": list(self._to_worker), "to_commit": list(self._to_commit)}

    def _write_stats(self) -> None:
        path = self.options.stats_file
        if path is None:
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()))
        tmp.replace(path)
