"""The worker's one-statement ledger commit on PostgreSQL (``PartitionStore.record_fenced``):
the same fence, de-duplication and order as ``fence`` + ``record_many``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from sealbot.engine.scaleout.partitions import Applied, Fenced, PartitionStore
from sealbot.store import make_session_factory
from sealbot.store.db import make_engine
from sealbot.store.models import EngineMessage, EnginePartition


@pytest.fixture
def ledger(pg_url: str) -> Iterator[tuple[PartitionStore, sa.Engine]]:
    store = PartitionStore(make_session_factory(pg_url), 4)
    store.ensure()
    engine = make_engine(pg_url, pool_pre_ping=False, isolation_level="AUTOCOMMIT")
    yield store, engine
    engine.dispose()
    store.session_factory.kw["bind"].dispose()


def _applied(mid: str, epoch: int, seq: int | None, sent: datetime | None = None) -> Applied:
    return Applied(mid, 1, epoch, "w1", "7", "note", seq, sent)


def _rows(store: PartitionStore) -> list[EngineMessage]:
    with store.session_factory() as session:
        return list(session.scalars(sa.select(EngineMessage).order_by(EngineMessage.id)))


def test_rows_go_in_once_and_in_order(ledger: tuple[PartitionStore, sa.Engine]) -> None:
    store, engine = ledger
    epoch = store.claim(1, "w1")
    sent = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    batch = [_applied(f"m{i}", epoch, i, sent if i % 2 else None) for i in (3, 1, 2)]
    with engine.connect() as connection:
        assert store.record_fenced(connection, 1, epoch, batch) == 3
        again = [_applied("m2", epoch, 2), _applied("m4", epoch, 4)]
        assert store.record_fenced(connection, 1, epoch, again) == 1  # m2 was applied before
        assert store.record_fenced(connection, 1, epoch, []) == 0
    rows = _rows(store)
    assert [r.message_id for r in rows] == ["m3", "m1", "m2", "m4"]  # the order given, not sorted
    assert [r.seq for r in rows] == [3, 1, 2, 4]
    assert rows[0].sent_at == sent and rows[2].sent_at is None
    assert {(r.partition, r.epoch, r.worker, r.account_id, r.kind) for r in rows} == {(1, epoch, "w1", "7", "note")}


def test_a_stale_epoch_commits_nothing(ledger: tuple[PartitionStore, sa.Engine]) -> None:
    store, engine = ledger
    old = store.claim(1, "w1")
    new = store.claim(1, "w2")
    with engine.connect() as connection, pytest.raises(Fenced) as refused:
        store.record_fenced(connection, 1, old, [_applied("late", old, 1)])
    assert (refused.value.epoch, refused.value.current) == (old, new)
    assert _rows(store) == []


def test_a_claim_waits_for_the_commit_in_flight(ledger: tuple[PartitionStore, sa.Engine]) -> None:
    """The statement's share lock on the partition row holds a claim back until it commits."""
    store, engine = ledger
    epoch = store.claim(1, "w1")
    blocker = engine.connect()  # holds the row exclusively, so the ledger statement waits on it
    blocker.exec_driver_sql("BEGIN")
    blocker.execute(sa.select(EnginePartition.epoch).where(EnginePartition.partition == 1).with_for_update())
    outcome: list[object] = []

    def record() -> None:
        with engine.connect() as connection:
            try:
                outcome.append(store.record_fenced(connection, 1, epoch, [_applied("m1", epoch, 1)]))
            except Fenced as exc:
                outcome.append(exc)

    writer = threading.Thread(target=record)
    writer.start()
    writer.join(0.5)
    assert writer.is_alive() and outcome == []  # waiting for the lock, nothing committed
    blocker.execute(sa.update(EnginePartition).where(EnginePartition.partition == 1)
                    .values(epoch=EnginePartition.epoch + 1))
    blocker.exec_driver_sql("COMMIT")
    blocker.close()
    writer.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], Fenced)  # it saw the new epoch
    assert _rows(store) == []
