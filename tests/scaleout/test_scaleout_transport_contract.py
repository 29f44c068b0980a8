"""The transport contract, run against both transports: the same ``Worker`` on the
in-process transport (``local.LocalTransport``: the embedded engine; SQLite and
PostgreSQL) and on RabbitMQ (``rabbit.RabbitTransport``: ``sealbot worker``; the real
broker and PostgreSQL).

* every message is committed once, in its account's order, under the partition's epoch,
  and acknowledged only after its commit (a fresh worker finds nothing left to apply);
* a message already in the ledger (committed, but the ack was lost in a crash) is
  applied once;
* a write under a stale epoch is refused, the worker steps down, the message is not
  acknowledged: it comes back, and the worker applies it once it owns the partition
  again, under the new epoch.

The accounts have no bots, so a message's whole effect is its ledger row."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from sealbot.engine.journal import AccountRecord
from sealbot.engine.scaleout.broker import Signal, Topology
from sealbot.engine.scaleout.local import LocalTransport
from sealbot.engine.scaleout.partitions import PartitionStore
from sealbot.engine.scaleout.worker import Worker, WorkerOptions
from sealbot.services import inbox
from sealbot.store import make_session_factory
from sealbot.store.migrate import upgrade
from sealbot.store.models import EngineMessage
from sealbot.venues.base import Venue

from .conftest import BROKER_URL, seed_accounts

PARTITIONS = 4


async def _no_venue(_account: AccountRecord) -> Venue:
    raise AssertionError("no account runs a bot here")


@dataclass
class ListSource:
    """A message source in memory (the embedded engine's is the bot inbox)."""

    waiting: list[Signal] = field(default_factory=list)

    def pending(self, limit: int) -> Sequence[Signal]:
        return list(self.waiting[:limit])

    def acknowledge(self, message_id: str) -> None:
        self.waiting = [s for s in self.waiting if s.message_id != message_id]


@dataclass
class Backend:
    """One transport under test: ``serve`` runs a worker on it until the block ends,
    ``publish`` puts a signal into a partition the way that deployment does."""

    name: str
    url: str
    topology: Topology
    source: ListSource = field(default_factory=ListSource)
    publish: Callable[[int, Signal], Awaitable[None]] | None = None

    def worker(self, worker_id: str) -> Worker:
        factory = make_session_factory(self.url)
        options = WorkerOptions(BROKER_URL, self.topology, worker_id=worker_id, tick=0.1, rejoin_after=0.3)
        if self.name == "rabbitmq":
            return Worker(factory, _no_venue, inbox.decode, options)
        transport = LocalTransport(PartitionStore(factory, self.topology.partitions), source=self.source,
                                   poll=0.05, tick=0.1, rejoin_after=0.3)
        return Worker(factory, _no_venue, inbox.decode, options, transport=transport)

    @contextlib.asynccontextmanager
    async def serve(self, worker_id: str) -> AsyncIterator[Worker]:
        worker = self.worker(worker_id)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            assert await until(lambda: len(worker.owned) == PARTITIONS, 30), worker.owned
            yield worker
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)

    async def settle(self) -> None:
        """Wait for the acknowledgements of what was committed."""
        if self.name == "rabbitmq":
            await asyncio.sleep(1.0)  # an ack follows its commit within milliseconds
        else:
            assert await until(lambda: not self.source.waiting, 10), self.source.waiting

    async def send(self, worker: Worker, signal: Signal) -> None:
        partition = worker.store.partition_of(signal.account)
        if self.name == "rabbitmq":
            await worker.transport.publish(partition, signal)
        else:
            self.source.waiting.append(signal)
            assert isinstance(worker.transport, LocalTransport)
            worker.transport.wake()


@pytest.fixture(params=["in-process", "rabbitmq"])
def backend(request: pytest.FixtureRequest, database_url: str) -> Iterator[Backend]:
    if request.param == "rabbitmq":
        if not database_url.startswith("postgresql"):
            pytest.skip("the scaled-out transport runs on PostgreSQL")
        topology = request.getfixturevalue("topology")
        yield Backend("rabbitmq", database_url, Topology(topology.prefix, PARTITIONS))
        return
    yield Backend("in-process", database_url, Topology(f"local{uuid.uuid4().hex[:6]}", PARTITIONS))


async def until(predicate: Callable[[], Any], timeout: float, step: float = 0.02) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())


def _ledger(url: str) -> list[EngineMessage]:
    factory = make_session_factory(url)
    try:
        with factory() as session:
            return list(session.scalars(sa.select(EngineMessage).order_by(EngineMessage.id)))
    finally:
        factory.kw["bind"].dispose()


def _signal(message_id: str, account: str, seq: int) -> Signal:
    return Signal(message_id, account, None, "note", {}, seq, datetime.now(UTC))


async def test_every_message_is_committed_once_in_order_and_acknowledged_after(backend: Backend) -> None:
    upgrade(backend.url)
    accounts = seed_accounts(backend.url, 4)
    signals = [_signal(f"m{n}", accounts[n % 4], n) for n in range(40)]
    async with backend.serve("first") as worker:
        for signal in signals:
            await backend.send(worker, signal)
        assert await until(lambda: worker.stats.applied == 40, 20), worker.stats
        await backend.settle()  # the acks of those commits
        for signal in signals[:5]:  # the same messages again, once acknowledged: delivered twice, applied once
            await backend.send(worker, signal)
        assert await until(lambda: worker.stats.duplicates == 5, 20), worker.stats
        assert worker.stats.applied == 40
        owned = dict(worker.owned)
        await backend.settle()  # the acks of the last ones (a stop right after a commit would lose them)
    rows = _ledger(backend.url)
    assert sorted(r.message_id for r in rows) == sorted(s.message_id for s in signals)
    for account in accounts:  # each account's messages committed in the order they were sent
        seqs = [r.seq for r in rows if r.account_id == account]
        assert seqs == sorted(seqs) and len(seqs) == 10
    store = PartitionStore(make_session_factory(backend.url), PARTITIONS)
    assert all(r.partition == store.partition_of(r.account_id) and r.epoch == owned[r.partition]
               and r.worker == "first" for r in rows)
    if backend.name == "in-process":
        assert backend.source.waiting == []  # every one acknowledged to its source
    async with backend.serve("second") as again:  # nothing unacknowledged is left to deliver
        await asyncio.sleep(0.5)
        assert again.stats.applied == 0 and again.stats.duplicates == 0
    assert len(_ledger(backend.url)) == 40


async def test_a_message_committed_before_its_ack_was_lost_is_applied_once(backend: Backend) -> None:
    upgrade(backend.url)
    [account] = seed_accounts(backend.url, 1)
    async with backend.serve("first") as worker:
        await backend.send(worker, _signal("once", account, 1))
        assert await until(lambda: worker.stats.applied == 1, 20)
    async with backend.serve("second") as worker:  # the crash: the same message delivered again
        await backend.send(worker, _signal("once", account, 1))
        await backend.send(worker, _signal("next", account, 2))
        # at least once more (twice if the first worker stopped between its commit and its ack)
        assert await until(lambda: worker.stats.applied == 1 and worker.stats.duplicates >= 1, 20), worker.stats
    assert [(r.message_id, r.worker) for r in _ledger(backend.url)] == [("once", "first"), ("next", "second")]


async def test_a_stale_epoch_commits_nothing_and_the_message_comes_back(backend: Backend) -> None:
    upgrade(backend.url)
    [account] = seed_accounts(backend.url, 1)
    async with backend.serve("owner") as worker:
        partition = worker.store.partition_of(account)
        stale = worker.owned[partition]
        intruder = await asyncio.to_thread(worker.store.claim, partition, "intruder")  # behind the owner's back
        await backend.send(worker, _signal("late", account, 1))
        # refused under the stale epoch; applied once the owner took the partition again (a newer epoch)
        assert await until(lambda: worker.stats.applied == 1, 20), worker.stats
        assert worker.stats.fenced >= 1 and worker.owned[partition] > intruder > stale
    [row] = _ledger(backend.url)
    assert (row.message_id, row.worker, row.partition) == ("late", "owner", partition)
    assert row.epoch > intruder


@dataclass
class Probe:
    """A delivery that notes, when acknowledged, whether its ledger row was committed."""

    message_id: str
    url: str
    acks: list[tuple[str, bool]]

    @property
    def body(self) -> bytes:
        return _signal(self.message_id, self.account, 1).body()

    account: str = ""

    async def ack(self) -> None:
        committed = self.message_id in {r.message_id for r in _ledger(self.url)}
        self.acks.append((self.message_id, committed))


async def test_a_delivery_is_acknowledged_only_after_its_commit(database_url: str) -> None:
    upgrade(database_url)
    [account] = seed_accounts(database_url, 1)
    worker = Backend("in-process", database_url, Topology("probe", PARTITIONS)).worker("w")
    worker.store.ensure()
    partition = worker.store.partition_of(account)
    assert await worker.take(partition)
    acks: list[tuple[str, bool]] = []
    assert await worker.apply(partition, [Probe("a", database_url, acks, account),
                                          Probe("b", database_url, acks, account)])
    assert acks == [("a", True), ("b", True)]
    worker.store.claim(partition, "intruder")
    assert not await worker.apply(partition, [Probe("c", database_url, acks, account)])
    assert acks == [("a", True), ("b", True)]  # "c" was refused: never acknowledged
    assert [r.message_id for r in _ledger(database_url)] == ["a", "b"]
    await worker.drop(partition, release=False)
