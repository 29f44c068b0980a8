"""Partitions, epochs and the fence, on the database.

An account belongs to one of ``P`` partitions: the row in ``engine_account_partitions``
if there is one, else ``crc32(account id) mod P``. A worker that becomes the broker's
active consumer of a partition *claims* it: one transaction raises the partition's
``epoch`` and names the worker owner. Every later write for that partition's accounts
first reads the epoch with a share lock (``fence``): a worker whose epoch is no longer
the current one cannot commit anything (its transaction raises ``Fenced``), and a claim
waits for the share locks of writes in flight, so no write of the old owner commits
after the new owner's claim.

The ``engine_messages`` ledger records each applied broker message in the same
transaction as its effect, so a message delivered twice (the broker redelivers what was
not acknowledged when a worker died) is applied once.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from sealbot.engine.journal import AccountRecord
from sealbot.engine.store_journal import ACTIVE_ACCOUNTS
from sealbot.store.models import EngineAccountPartition, EngineMessage, EnginePartition, EngineWorker, ExchangeAccount


class Fenced(Exception):
    """This worker's epoch for the partition is stale: another worker owns it now."""

    def __init__(self, partition: int, epoch: int, current: int | None) -> None:
        super().__init__(f"partition {partition}: epoch {epoch} is stale (current {current})")
        self.partition, self.epoch, self.current = partition, epoch, current


class AlreadyApplied(Exception):
    """The message id is in the ledger: it was applied (and committed) before."""


def default_partition(account_id: str, partitions: int) -> int:
    """crc32 of the account id's text, modulo P: stable across processes and machines."""
    return zlib.crc32(account_id.encode()) % partitions


@dataclass(frozen=True, slots=True)
class Applied:
    """What the ledger stores of one applied message."""

    message_id: str
    partition: int
    epoch: int
    worker: str
    account_id: str
    kind: str
    seq: int | None = None
    sent_at: datetime | None = None


def _now() -> datetime:
    return datetime.now(UTC)


# One statement: the CTE takes the fence's share lock (a claim waits for it) and the
# rows go in only when the epoch is current; WITH ORDINALITY keeps the messages' order.
_RECORD_FENCED = sa.text("""
WITH fence AS (SELECT epoch FROM engine_partitions WHERE partition = :p FOR SHARE),
ins AS (
    INSERT INTO engine_messages (message_id, partition, epoch, worker, account_id, kind, seq, sent_at, committed_at)
    SELECT m.message_id, :p, :e, :w, m.account_id, m.kind, m.seq, m.sent_at, :now
    FROM unnest(CAST(:ids AS text[]), CAST(:accounts AS text[]), CAST(:kinds AS text[]), CAST(:seqs AS bigint[]),
                CAST(:sent AS timestamptz[])) WITH ORDINALITY AS m(message_id, account_id, kind, seq, sent_at, n)
    WHERE (SELECT epoch FROM fence) = :e
    ORDER BY m.n
    ON CONFLICT (message_id) DO NOTHING
    RETURNING 1)
SELECT (SELECT epoch FROM fence), (SELECT count(*) FROM ins)
""")


class PartitionStore:
    """The partition table, the worker heartbeats and the message ledger."""

    def __init__(self, session_factory: sessionmaker[Session], partitions: int) -> None:
        if partitions < 1:
            raise ValueError("partitions: must be at least 1")
        self.session_factory, self.partitions = session_factory, partitions

    def _insert(self, session: Session, table: type[EnginePartition] | type[EngineWorker] | type[EngineMessage]) -> Any:
        """The dialect's INSERT (both PostgreSQL and SQLite have ON CONFLICT)."""
        module: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        return module.insert(table)

    def ensure(self) -> None:
        """Create the partition rows that do not exist yet (idempotent, safe to race)."""
        with self.session_factory.begin() as session:
            stmt = self._insert(session, EnginePartition).values(
                [{"partition": p, "epoch": 0} for p in range(self.partitions)])
            session.execute(stmt.on_conflict_do_nothing(index_elements=["partition"]))

    def claim(self, partition: int, worker: str) -> int:
        """Take the partition over: the new epoch (waits for the old owner's writes in flight).
        ``claimed_at`` is the time the lock was granted, so it includes that wait."""
        with self.session_factory.begin() as session:
            row = session.scalar(sa.select(EnginePartition).where(EnginePartition.partition == partition)
                                 .with_for_update())
            if row is None:
                raise KeyError(f"partition {partition} does not exist (run ensure first)")
            now = _now()
            row.epoch, row.owner, row.claimed_at, row.heartbeat = row.epoch + 1, worker, now, now
            return row.epoch

    def fence(self, session: Session, partition: int, epoch: int) -> None:
        """Inside the caller's transaction: raise ``Fenced`` unless ``epoch`` is current.
        The share lock keeps a claim from committing until this transaction ends."""
        current = session.scalar(sa.select(EnginePartition.epoch).where(EnginePartition.partition == partition)
                                 .with_for_update(read=True))
        if current != epoch:
            raise Fenced(partition, epoch, current)

    def record(self, session: Session, applied: Applied) -> None:
        """Inside the caller's transaction: add the message to the ledger, or raise
        ``AlreadyApplied`` when its id is there already."""
        stmt = self._insert(session, EngineMessage).values(
            message_id=applied.message_id, partition=applied.partition, epoch=applied.epoch, worker=applied.worker,
            account_id=applied.account_id, kind=applied.kind, seq=applied.seq, sent_at=applied.sent_at,
            committed_at=_now())
        inserted = session.execute(stmt.on_conflict_do_nothing(index_elements=["message_id"])
                                   .returning(EngineMessage.message_id)).all()
        if not inserted:
            raise AlreadyApplied(applied.message_id)

    def record_many(self, session: Session, applied: list[Applied]) -> int:
        """Inside the caller's transaction: add the messages to the ledger in order; how
        many were new (the others were applied before and are skipped)."""
        if not applied:
            return 0
        now = _now()
        stmt = self._insert(session, EngineMessage).values([
            {"message_id": a.message_id, "partition": a.partition, "epoch": a.epoch, "worker": a.worker,
             "account_id": a.account_id, "kind": a.kind, "seq": a.seq, "sent_at": a.sent_at, "committed_at": now}
            for a in applied])
        result = session.execute(stmt.on_conflict_do_nothing(index_elements=["message_id"])
                                 .returning(EngineMessage.message_id))
        return len(result.all())  # RETURNING, not rowcount: the driver may not know a multi-row count

    def record_fenced(self, connection: sa.Connection, partition: int, epoch: int, applied: list[Applied]) -> int:
        """PostgreSQL, on an autocommit connection: ``fence`` and ``record_many`` as one
        statement, so one round trip and one commit instead of five round trips (begin,
        fence, insert, commit, and the pool's ping). The epoch is read with the same share
        lock, held until the statement commits. Raises ``Fenced``; how many rows were new."""
        if not applied:
            return 0
        current, inserted = connection.execute(_RECORD_FENCED, {
            "p": partition, "e": epoch, "w": applied[0].worker, "now": _now(),
            "ids": [a.message_id for a in applied], "accounts": [a.account_id for a in applied],
            "kinds": [a.kind for a in applied], "seqs": [a.seq for a in applied],
            "sent": [a.sent_at for a in applied]}).one()
        if current != epoch:
            raise Fenced(partition, epoch, current)
        return int(inserted)

    def heartbeat(self, partition: int, epoch: int) -> bool:
        """A fenced write of the owner's heartbeat: False when the epoch is stale."""
        with self.session_factory.begin() as session:
            result = session.execute(sa.update(EnginePartition)
                                     .where(EnginePartition.partition == partition, EnginePartition.epoch == epoch)
                                     .values(heartbeat=_now()))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def heartbeat_many(self, owned: dict[int, int]) -> list[int]:
        """Fenced heartbeats of every owned partition in one transaction; the partitions
        whose epoch is stale (another worker claimed them)."""
        stale: list[int] = []
        if not owned:
            return stale
        now = _now()
        with self.session_factory.begin() as session:
            for partition, epoch in sorted(owned.items()):
                result = session.execute(sa.update(EnginePartition).where(
                    EnginePartition.partition == partition, EnginePartition.epoch == epoch).values(heartbeat=now))
                if not result.rowcount:  # type: ignore[attr-defined]
                    stale.append(partition)
        return stale

    def release(self, partition: int, epoch: int) -> None:
        """Give the partition up cleanly (no owner until the next claim raises the epoch)."""
        with self.session_factory.begin() as session:
            session.execute(sa.update(EnginePartition)
                            .where(EnginePartition.partition == partition, EnginePartition.epoch == epoch)
                            .values(owner=None))

    def unattended(self, stale_after: timedelta) -> list[int]:
        """Partitions with no owner, or whose owner's heartbeat is older than ``stale_after``."""
        cutoff = _now() - stale_after
        with self.session_factory() as session:
            rows = session.execute(sa.select(EnginePartition.partition).where(
                sa.or_(EnginePartition.owner.is_(None), EnginePartition.heartbeat.is_(None),
                       EnginePartition.heartbeat < cutoff)))
            return sorted(r[0] for r in rows)

    def owner_of(self, partition: int) -> str | None:
        with self.session_factory() as session:
            return session.scalar(sa.select(EnginePartition.owner).where(EnginePartition.partition == partition))

    def owners(self) -> dict[int, tuple[int, str | None]]:
        """partition -> (epoch, owner)."""
        with self.session_factory() as session:
            return {r.partition: (r.epoch, r.owner) for r in session.scalars(sa.select(EnginePartition))}

    def beat(self, worker: str, owned: int, live_within: timedelta) -> int:
        """Record this worker's heartbeat; how many workers (this one included) are live."""
        return self.beat_and_read(worker, owned, live_within, peers=False)[0]

    def beat_and_read(self, worker: str, owned: int, live_within: timedelta, *,
                      peers: bool = True) -> tuple[int, dict[str, datetime]]:
        """``beat``, and (``peers``) every worker row's heartbeat as read in the same
        transaction, this worker's included: worker -> heartbeat (eviction, evict.py)."""
        now = _now()
        with self.session_factory.begin() as session:
            stmt = self._insert(session, EngineWorker).values(
                worker=worker, started_at=now, heartbeat=now, partitions=owned)
            session.execute(stmt.on_conflict_do_update(
                index_elements=["worker"], set_={"heartbeat": now, "partitions": owned}))
            live = session.scalar(sa.select(sa.func.count()).select_from(EngineWorker)
                                  .where(EngineWorker.heartbeat >= now - live_within))
            beats = ({r.worker: r.heartbeat for r in session.execute(
                sa.select(EngineWorker.worker, EngineWorker.heartbeat))} if peers else {})
            return max(1, int(live or 0)), beats

    def leave(self, worker: str) -> None:
        with self.session_factory.begin() as session:
            session.execute(sa.delete(EngineWorker).where(EngineWorker.worker == worker))

    def partition_of(self, account_id: str) -> int:
        with self.session_factory() as session:
            row = session.get(EngineAccountPartition, int(account_id)) if account_id.isdigit() else None
            return row.partition if row is not None else default_partition(account_id, self.partitions)

    def partitions_of(self, account_ids: list[str]) -> dict[str, int]:
        """``partition_of`` for many accounts in one query."""
        pinned: dict[str, int] = {}
        numeric = [int(a) for a in account_ids if a.isdigit()]
        if numeric:
            with self.session_factory() as session:
                pinned = {str(r.account_id): r.partition for r in session.scalars(
                    sa.select(EngineAccountPartition).where(EngineAccountPartition.account_id.in_(numeric)))}
        return {a: pinned.get(a, default_partition(a, self.partitions)) for a in account_ids}

    def assign(self, account_id: str, partition: int) -> None:
        """Pin an account to a partition (e.g. to spread a few heavy accounts by hand)."""
        if not 0 <= partition < self.partitions:
            raise ValueError(f"partition: must be between 0 and {self.partitions - 1}")
        with self.session_factory.begin() as session:
            row = session.get(EngineAccountPartition, int(account_id))
            if row is None:
                session.add(EngineAccountPartition(account_id=int(account_id), partition=partition))
            else:
                row.partition = partition

    def accounts_of(self, partition: int) -> list[AccountRecord]:
        """The active accounts of one partition, by id."""
        with self.session_factory() as session:
            pinned = {str(r.account_id): r.partition for r in session.scalars(sa.select(EngineAccountPartition))}
            rows = session.scalars(sa.select(ExchangeAccount).where(ExchangeAccount.status.in_(ACTIVE_ACCOUNTS))
                                   .order_by(ExchangeAccount.id))
            found = []
            for r in rows:
                account_id = str(r.id)
                if pinned.get(account_id, default_partition(account_id, self.partitions)) == partition:
                    found.append(AccountRecord(account_id, str(r.owner_id), r.exchange, r.label))
            return found
