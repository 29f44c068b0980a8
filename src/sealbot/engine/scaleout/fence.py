"""The engine's journal, fenced: every transaction checks the partition's epoch.

A worker runs each partition's accounts inside a context naming (partition, epoch) and,
while it applies a broker message, that message. ``FencedJournal.transaction()`` opens
the usual ``StoreJournal`` unit of work and, before the caller writes anything, checks the
epoch (``PartitionStore.fence``) and adds the message to the ledger. So the bot's new
state, the orders it asked for and the "this message was applied" record commit together
or not at all, and nothing commits for a partition this worker no longer owns.

The context is a ``ContextVar``: tasks an ``AccountRunner`` starts (its event worker,
its poller) inherit the partition they were started under.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from sealbot.engine.scaleout.partitions import Applied, PartitionStore
from sealbot.engine.store_journal import StoreJournal, StoreTx
from sealbot.store import UnitOfWork


@dataclass
class Scope:
    """The partition (and, while applying one, the message) a transaction belongs to."""

    partition: int
    epoch: int
    message: Applied | None = None
    recorded: bool = False


CURRENT: ContextVar[Scope | None] = ContextVar("sealbot_engine_partition", default=None)


class FencedJournal(StoreJournal):
    """``StoreJournal`` whose every transaction is fenced by the current scope's epoch.
    A transaction outside any scope is refused: a scaled-out worker never writes
    account state without knowing which partition (and epoch) it writes for."""

    def __init__(self, session_factory: sessionmaker[Session], partitions: PartitionStore) -> None:
        super().__init__(session_factory)
        self.partitions = partitions

    @contextmanager
    def transaction(self) -> Iterator[StoreTx]:
        scope = CURRENT.get()
        if scope is None:
            raise RuntimeError("a fenced journal write outside a partition scope")
        with UnitOfWork(self.session_factory) as uow:
            self.partitions.fence(uow.session, scope.partition, scope.epoch)
            record_here = scope.message is not None and not scope.recorded
            if record_here:
                assert scope.message is not None
                self.partitions.record(uow.session, scope.message)
            yield StoreTx(uow, self.attempts)
        if record_here:
            scope.recorded = True  # only once the unit of work committed
