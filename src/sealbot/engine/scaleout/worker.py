"""A worker of the engine: the partition logic, the same whatever carries the messages.

An account belongs to one of ``P`` partitions (``partitions.PartitionStore``). A worker
owns the partitions its transport gives it (``transport.Transport``): RabbitMQ's
single-active-consumer queues for ``sealbot worker`` (``rabbit.RabbitTransport``), or
every partition in one process for the embedded engine (``local.LocalTransport``). When
the transport says it may own a partition (``take``), the worker

1. accepts it at once if its previous owner did not release it (a dead or cut-off
   worker: takeover speed first); a cleanly released partition only if it holds less than
   its fair share (``ceil(P / live workers)``) or nobody else waits for it (the
   transport's ``contended``), else it declines;
2. claims it: raises the partition's epoch in the database (``PartitionStore.claim``);
3. starts, side by side, the partition's accounts that have running or paused bots on its
   ``InProcessRunner``, under the partition's fenced scope: each account reconciles with
   its exchange before any bot acts (``AccountRunner.start``), then tells the upkeep;
4. applies the partition's messages one at a time (``apply``): every transaction checks
   the epoch and records the message id in the same commit; the transport's ack comes
   after the commit. A run of messages that only need their ledger row commits at once.

A thread of the worker's own (``_presence``) writes its heartbeat row every tick and counts
the live workers (and, when it evicts hung peers, reads every worker's row: evict.py).
Every heartbeat round (``tick``, driven by the transport) the worker writes a fenced
heartbeat for each partition it owns (a refused
one means another worker took the partition over while this one was paused or cut off:
it leaves that partition), leaves one partition if it holds more than its share, and
returns the partitions nobody attends (the RabbitMQ transport wakes their consumers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from sealbot.domain import AlertLevel, Event
from sealbot.engine.clock import Clock
from sealbot.engine.guard import GuardPolicy
from sealbot.engine.journal import AlertRecord
from sealbot.engine.runner import AccountRunner, InProcessRunner, RunnerSettings, VenueFactory
from sealbot.engine.scaleout.broker import USER_REQUESTS, Signal, Topology
from sealbot.engine.scaleout.evict import DEFAULT_EVICT_AFTER, PeerReading
from sealbot.engine.scaleout.fence import CURRENT, FencedJournal, Scope
from sealbot.engine.scaleout.market_queue import MarketQueue
from sealbot.engine.scaleout.metrics import WorkerMetrics
from sealbot.engine.scaleout.partitions import AlreadyApplied, Applied, Fenced, PartitionStore
from sealbot.engine.scaleout.rabbit import RabbitSettings, RabbitTransport
from sealbot.engine.scaleout.transport import Delivery, Transport
from sealbot.engine.scaleout.upkeep import PartitionUpkeep
from sealbot.engine.store_journal import ACTIVE_ACCOUNTS
from sealbot.store import UnitOfWork
from sealbot.store.db import make_engine, make_session_factory
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
    # RabbitMQ (the default transport); unused with another transport. Not in the repr: it may hold a password
    broker_url: str = field(default="", repr=False)
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
    # RabbitMQ's management API (http://user:password@host:15672); with it, a peer whose
    # heartbeat row stood still for ``evict_after`` seconds has its broker connections
    # closed, so its partitions move at once instead of after RabbitMQ's 2-3 s heartbeat
    # timeout (evict.py explains the default). "" or evict_after 0: no eviction.
    broker_admin_url: str = field(default="", repr=False)
    evict_after: float = DEFAULT_EVICT_AFTER
    log_partitions: bool = True  # each claim and step-down at INFO (False: DEBUG; the embedded engine claims all)
    runner: RunnerSettings = field(default_factory=RunnerSettings)

    def rabbit(self) -> RabbitSettings:
        return RabbitSettings(self.broker_url, self.topology, self.worker_id, tick=self.tick,
                              amqp_heartbeat=self.amqp_heartbeat, prefetch=self.prefetch, batch=self.batch,
                              rejoin_after=self.rejoin_after, token_refresh=self.token_refresh,
                              broker_admin_url=self.broker_admin_url, evict_after=self.evict_after)


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
    """One worker: owns the partitions its transport gives it, runs their accounts.
    Without a ``transport``, RabbitMQ's (``options.broker_url``)."""

    def __init__(self, session_factory: sessionmaker[Session], venue_factory: VenueFactory,
                 decode: EventDecoder, options: WorkerOptions, metrics: WorkerMetrics | None = None,
                 guard: GuardPolicy | None = None, upkeep: PartitionUpkeep | None = None, *,
                 transport: Transport | None = None, clock: Clock | None = None) -> None:
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
        # This worker's heartbeat row is written by a thread of its own (``_presence``) on
        # (PostgreSQL) a connection of its own: in the heartbeat round it waited for the
        # round's other work (a fair-share leave stopping a partition's accounts, claims
        # queued for a lock in the shared pools), and live workers' rows stood still for
        # up to 2.2 s on a loaded host; peers evict a worker whose row stands still
        # (evict.py). Only a stopped process (or host) stops this thread.
        self._beat_store = self.store
        if bind.dialect.name == "postgresql":
            beats = make_session_factory(make_engine(bind.url, pool_size=1, max_overflow=1))
            _limit_idle_transactions(beats, options.idle_transaction_timeout)
            self._beat_store = PartitionStore(beats, self.topology.partitions)
        if options.market_data not in ("poll", "ingest"):
            raise ValueError("market_data: must be 'poll' or 'ingest'")
        ingest = options.market_data == "ingest"
        settings = replace(options.runner, poll_feeds=False) if ingest else options.runner
        self.runner = InProcessRunner(self.journal, venue_factory, guard=guard, clock=clock, settings=settings)
        self.upkeep = upkeep  # keeps owned accounts in step with the database, watches them (upkeep.py)
        if upkeep is not None:
            upkeep.attach(self.runner)
        self.metrics = metrics or WorkerMetrics(self.id)
        # candles and tickers from `sealbot ingest`, bound per (venue, pair) the runner's bots trade
        self.market = MarketQueue(self.topology, self.id, self.runner.hub, self.runner.prices) if ingest else None
        if transport is None:
            transport = RabbitTransport(options.rabbit(), market=self.market, metrics=self.metrics)
        elif ingest:
            raise ValueError("market_data: 'ingest' needs the worker's own RabbitMQ transport")
        self.transport = transport
        # told every worker's heartbeat as ``_presence`` reads it (set by the transport's
        # ``attach``: its evictor)
        self._peer_listener: Callable[[PeerReading], None] | None = None
        transport.attach(self)
        self.stats = WorkerStats()
        self._ownership_level = logging.INFO if options.log_partitions else logging.DEBUG
        self.owned: dict[int, int] = {}  # partition -> epoch
        self._fenced_out: set[tuple[int, int]] = set()  # (partition, epoch) found taken by ``fenced_out``
        self.accounts: dict[int, list[str]] = {}  # partition -> accounts started on the runner
        self._to_worker: deque[float] = deque(maxlen=5_000)  # recent signal-to-worker delays (s)
        self._to_commit: deque[float] = deque(maxlen=5_000)  # recent signal-to-commit delays (s)

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set (the transport steps down from every partition)."""
        self.store.ensure()
        presence_stop = threading.Event()
        presence = threading.Thread(target=self._presence, args=(presence_stop,), name=f"presence {self.id}",
                                    daemon=True)
        presence.start()
        try:
            await self.transport.run(stop)
        finally:
            presence_stop.set()
            await asyncio.to_thread(presence.join, 10)
            self.store.leave(self.id)  # after the thread ended: it would write the row again
            if self._ledger is not None:
                self._ledger.dispose()
            if self._beat_store is not self.store:
                self._beat_store.session_factory.kw["bind"].dispose()

    def watch_peers(self, listener: Callable[[PeerReading], None]) -> None:
        self._peer_listener = listener

    def _presence(self, stop: threading.Event) -> None:
        """Every tick until ``stop``: write this worker's heartbeat row, count the live
        workers (the fair share) and, for a peer listener (eviction), read every worker's
        row and hand the reading over, here on this thread."""
        live_within = timedelta(seconds=self.options.live_within)
        while True:
            started = time.monotonic()
            listener = self._peer_listener
            try:
                live, beats = self._beat_store.beat_and_read(self.id, len(self.owned), live_within,
                                                             peers=listener is not None)
            except sa.exc.SQLAlchemyError as exc:  # the database is away: tried again next tick
                log.warning("worker %s: heartbeat not written (%s)", self.id, type(exc).__name__)
            else:
                ended = time.monotonic()
                self.stats.live = live
                if listener is not None:
                    try:
                        listener(PeerReading(beats, ended, ended - started))
                    except Exception:  # a failing listener must not stop the heartbeat (peers would evict us)
                        log.exception("worker %s: the peer listener failed", self.id)
            if stop.wait(max(0.0, self.options.tick - (time.monotonic() - started))):
                return

    # -- ownership (called by the transport) ------------------------------------------------
    async def take(self, partition: int, claimed: Callable[[], Awaitable[None]] | None = None) -> bool:
        """Own ``partition`` (accept, claim, ``claimed``, start its accounts) or decline it: False."""
        if partition in self.owned:
            return True
        if not await self._accept(partition):
            self.stats.declined += 1
            return False
        await self._claim(partition)
        if claimed is not None:
            await claimed()
        await self._start_accounts(partition)
        return True

    async def _accept(self, p: int) -> bool:
        """Take a partition that lost its owner at once (takeover speed first; the fair
        share is restored by releases afterwards); one that was released cleanly only while
        under the fair share, or when no other worker waits for it."""
        share = math.ceil(self.topology.partitions / max(1, self.stats.live))
        if len(self.owned) < share:
            return True
        # in a thread, like every database round trip here: on the event loop it would
        # hold back the other partitions' deliveries (and the takeovers beside this one)
        if await asyncio.to_thread(self.store.owner_of, p) not in (None, self.id):
            return True
        return not await self.transport.contended(p)

    async def _claim(self, p: int) -> None:
        # in a thread: the claim waits for the old owner's transaction in flight, and the
        # event loop must keep answering the broker's heartbeats meanwhile
        epoch = await asyncio.to_thread(self.store.claim, p, self.id)
        self.owned[p] = epoch
        self.stats.claims += 1
        self.metrics.takeovers.inc()
        self.metrics.partitions_owned.set(len(self.owned))
        log.log(self._ownership_level, "worker %s: partition %s claimed at epoch %s", self.id, p, epoch)

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

    async def drop(self, p: int, *, release: bool) -> None:
        """Step down from ``p``: the upkeep's work for it ends, its accounts stop
        (``release``: the partition is marked ownerless, a clean hand-over)."""
        epoch = self.owned.pop(p, None)
        self._fenced_out.discard((p, epoch or 0))
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
        log.log(self._ownership_level, "worker %s: partition %s left (epoch %s, %s)", self.id, p, epoch,
                "released" if release else "stepped down")

    # -- messages ------------------------------------------------------------------------------
    async def apply(self, p: int, deliveries: Sequence[Delivery]) -> bool:
        """Apply what arrived, in order. A run of consecutive ledger-only messages commits
        in one fenced transaction (one WAL flush); a bot's event steps the bot in its own
        transaction as always. False when fenced: the rest is not acknowledged."""
        if p not in self.owned:
            return False
        i = 0
        while i < len(deliveries):
            run: list[tuple[Delivery, Signal]] = []
            while i < len(deliveries) and (signal := self._ledger_only(deliveries[i])) is not None:
                run.append((deliveries[i], signal))
                i += 1
            if run:
                if not await self._apply_run(p, run):
                    return False
                continue
            if not await self._handle(p, deliveries[i]):
                return False
            i += 1
        return True

    def _ledger_only(self, delivery: Delivery) -> Signal | None:
        """The signal, when applying it writes nothing but its ledger row (its account
        runs no bot it names here); None for bot events and unreadable bodies."""
        try:
            signal = Signal.parse(delivery.message_id or "", delivery.body)
        except (ValueError, KeyError, TypeError):
            return None
        if self._live_bot(signal) is not None:
            return None
        if signal.bot is not None and signal.kind in USER_REQUESTS:
            return None  # its user hears that it was not carried out (``_apply``)
        return signal

    def _live_bot(self, signal: Signal) -> tuple[AccountRunner, str] | None:
        """The account runner and bot a message is an event for, when that bot runs here."""
        runner = self.runner.accounts.get(signal.account)
        if signal.bot is None or runner is None or signal.bot not in runner.bots or signal.kind == "note":
            return None
        return runner, signal.bot

    async def _apply_run(self, p: int, run: list[tuple[Delivery, Signal]]) -> bool:
        epoch = self.owned[p]
        applied = [Applied(s.message_id, p, epoch, self.id, s.account, s.kind, s.seq, s.sent_at) for _, s in run]
        try:
            inserted = await asyncio.to_thread(self._record_many, p, epoch, applied)
        except Fenced as exc:
            self._fenced(exc)
            return False  # not acknowledged: the transport gives them back
        now = datetime.now(UTC)
        self.stats.applied += inserted
        self.metrics.applied.inc(inserted)
        if inserted < len(run):
            self.stats.duplicates += len(run) - inserted
            self.metrics.duplicates.inc(len(run) - inserted)
        for _, signal in run:
            if signal.sent_at is not None:
                self._committed((now - signal.sent_at).total_seconds())
        for delivery, _ in run:  # one by one: a ``multiple`` ack would take the held token along
            await delivery.ack()
        return True

    def _record_many(self, p: int, epoch: int, applied: list[Applied]) -> int:
        if self._ledger is not None:
            with self._ledger.connect() as connection:
                return self.store.record_fenced(connection, p, epoch, applied)
        with UnitOfWork(self.session_factory) as uow:
            self.store.fence(uow.session, p, epoch)
            return self.store.record_many(uow.session, applied)

    async def _handle(self, p: int, delivery: Delivery) -> bool:
        """Apply one message; False when fenced (this worker leaves the partition)."""
        epoch = self.owned[p]
        try:
            signal = Signal.parse(delivery.message_id or "", delivery.body)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("partition %s: unreadable message %s dropped (%s)", p, delivery.message_id, exc)
            await delivery.ack()
            return True
        scope = Scope(p, epoch, Applied(signal.message_id, p, epoch, self.id, signal.account, signal.kind,
                                        signal.seq, signal.sent_at))
        token = CURRENT.set(scope)
        try:
            await self._apply(signal, scope)
        except Fenced as exc:
            self._fenced(exc)
            return False  # not acknowledged: the transport gives it back
        except AlreadyApplied:
            self.stats.duplicates += 1
            self.metrics.duplicates.inc()
        finally:
            CURRENT.reset(token)
        await delivery.ack()
        return True

    async def _apply(self, signal: Signal, scope: Scope) -> None:
        live = self._live_bot(signal)
        if live is not None:
            runner, bot = live
            try:
                await runner.deliver(bot, self.decode(signal.kind, signal.payload))
            except (Fenced, AlreadyApplied):
                raise
            except Exception:  # the bot's failure is its account's: logged, reconciled before its next event
                log.exception("account %s: applying %s failed", signal.account, signal.message_id)
                self.stats.failed += 1
                runner.needs_reconcile = True
        if live is None and signal.kind in USER_REQUESTS:
            # queued while its bot ran, taken once it stopped (or its account failed to start)
            alert = await asyncio.to_thread(self._record_unserved, signal)
            if alert is not None and self.runner.alert_sink is not None:
                await self.runner.alert_sink(alert)
        elif not scope.recorded:  # nothing committed it yet (no live bot, or the bot's step failed)
            # in a thread (the scope goes with the copied context): the partitions' commits
            # then overlap and PostgreSQL groups their WAL flushes, instead of one flush at a time
            await asyncio.to_thread(self._record_only)
        self.stats.applied += 1
        self.metrics.applied.inc()
        if signal.sent_at is not None:
            self._committed((datetime.now(UTC) - signal.sent_at).total_seconds())

    def _record_only(self) -> None:
        with self.journal.transaction():
            pass

    def _record_unserved(self, signal: Signal) -> AlertRecord | None:
        """Record (with the message, under the fence) that a user's request found no
        running bot, as an alert for that user: the request was accepted, so silence
        would read as done."""
        with self.journal.transaction() as tx:
            bot = tx.get_bot(str(signal.bot))
            if bot is None:  # deleted meanwhile: nobody to tell
                return None
            what = signal.kind.replace("_", " ")
            deal = signal.payload.get("deal")
            return tx.add_alert(AlertRecord(
                bot.user, AlertLevel.WARNING, "request.not_carried_out",
                f"bot {bot.id}: {what}{f' of deal {deal}' if deal is not None else ''} was not carried out: "
                f"the bot was {bot.status} when the engine took the request", self.runner.clock.now(),
                signal.account, bot.id))

    def _committed(self, delay: float) -> None:
        self.metrics.signal_to_commit.observe(delay)
        if self.options.record_latencies:
            self._to_commit.append(delay)

    def arrived(self, body: bytes) -> None:
        """Signal-to-worker latency: broker timestamp (set at publish, in seconds) is too coarse,
        so the publish time in the body is used."""
        with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
            sent = json.loads(body).get("sent_at")
            if sent:
                delay = (datetime.now(UTC) - datetime.fromisoformat(sent)).total_seconds()
                self.metrics.signal_to_worker.observe(delay)
                if self.options.record_latencies:
                    self._to_worker.append(delay)

    def _fenced(self, exc: Fenced) -> None:
        self.stats.fenced += 1
        self.metrics.fenced_writes.inc()
        log.warning("worker %s: %s; stepping down", self.id, exc)

    # -- every heartbeat -----------------------------------------------------------------------
    async def tick(self) -> list[int]:
        """One heartbeat round: fenced heartbeats (a refused one: leave that partition), the
        fair share (live peers as ``_presence`` last counted them; one partition left per
        round: the others settle meanwhile); the partitions nobody attends."""
        # The database round trips run in a thread, in one transaction each: on the event
        # loop they would hold every partition's deliveries back for a WAL flush apiece.
        owned = dict(self.owned)
        stale, unattended = await asyncio.to_thread(self._beat_db, owned)
        for p in stale:
            if self.owned.get(p) == owned[p]:
                self._fenced(Fenced(p, owned[p], None))
                await self.transport.leave(p, release=False)
        share = math.ceil(self.topology.partitions / self.stats.live)
        if len(self.owned) > share:
            await self.transport.leave(max(self.owned), release=True)
        return [p for p in unattended if p not in self.owned]

    async def fenced_out(self, partitions: Collection[int]) -> list[int]:
        """Those of ``partitions`` owned here that another worker claimed meanwhile: their
        fenced heartbeat is refused, each counted once as a fenced write. A transport asks
        when it loses a partition's channel or its connection (a paused process woken up)
        before it steps down: what the fence refused is then on record, whichever part of
        the worker noticed the pause first."""
        owned = {p: e for p, e in self.owned.items() if p in partitions and (p, e) not in self._fenced_out}
        if not owned:
            return []
        stale = await asyncio.to_thread(self.store.heartbeat_many, owned)
        for p in stale:
            self._fenced_out.add((p, owned[p]))
            self._fenced(Fenced(p, owned[p], None))
        return stale

    def _beat_db(self, owned: dict[int, int]) -> tuple[list[int], list[int]]:
        """(partitions whose fenced heartbeat was refused, unattended partitions)."""
        stale = self.store.heartbeat_many(owned)
        return stale, self.store.unattended(timedelta(seconds=self.options.stale_after))

    def snapshot(self) -> dict[str, Any]:
        """What the stats file holds: owned partitions, counters, and the recent latencies
        (seconds) of signal-to-worker and signal-to-commit for the benchmark."""
        return {"worker": self.id, "pid": os.getpid(), "owned": {str(p): e for p, e in sorted(self.owned.items())},
                "tokens": [], **self.transport.describe(), **self.stats.__dict__,
                "market_messages": self.market.received if self.market else 0,
                "candles": self.market.delivered if self.market else 0,
                "market_waiting": len(self.market.waiting) if self.market else 0,
                "user_streams": self._user_streams(),
                "to_worker": list(self._to_worker), "to_commit": list(self._to_commit)}

    def _user_streams(self) -> dict[str, int]:
        """The running accounts' user-data streams (``engine.user_stream``): how many have a
        watcher, how many are subscribed now, and the execution reports they rang for.
        A watcher lives and dies with its account, so with its partition's ownership:
        zero here after a release or a step-down means no socket stayed open."""
        watchers = [a.user_stream for a in self.runner.accounts.values() if a.user_stream is not None]
        return {"accounts": len(watchers), "subscribed": sum(w.subscribed for w in watchers),
                "events": sum(w.events for w in watchers)}

    def write_stats(self) -> None:
        path = self.options.stats_file
        if path is None:
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()))
        tmp.replace(path)
