"""Signals at a steady rate, and the checks that read the outcome back from PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa

from sealbot.engine.scaleout.broker import Publisher, Signal, Topology
from sealbot.engine.scaleout.partitions import default_partition
from sealbot.store import make_session_factory
from sealbot.store.models import EngineMessage, EnginePartition


@dataclass
class Sent:
    """What the publisher got confirmed: message id -> (account, seq)."""

    messages: dict[str, tuple[str, int]] = field(default_factory=dict)
    next_seq: dict[str, int] = field(default_factory=lambda: defaultdict(int))


async def publish(broker_url: str, topology: Topology, accounts: list[str], *, rate: float, seconds: float,
                  sent: Sent, tag: str) -> None:
    """Round-robin over ``accounts`` at ``rate`` signals/s; each publish waits for its confirm."""
    from datetime import UTC, datetime

    publisher = Publisher(broker_url, topology)
    await publisher.open()
    try:
        start, n = time.monotonic(), 0
        while time.monotonic() - start < seconds:
            account = accounts[n % len(accounts)]
            sent.next_seq[account] += 1
            seq = sent.next_seq[account]
            mid = f"{tag}-{account}-{seq}"
            await publisher.publish(default_partition(account, topology.partitions),
                                    Signal(mid, account, None, "note", {}, seq, datetime.now(UTC)))
            sent.messages[mid] = (account, seq)
            n += 1
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
    finally:
        await publisher.close()


def committed(url: str) -> list[EngineMessage]:
    factory = make_session_factory(url)
    try:
        with factory() as session:
            return list(session.scalars(sa.select(EngineMessage).order_by(EngineMessage.id)))
    finally:
        factory.kw["bind"].dispose()


def wait_committed(url: str, count: int, timeout: float) -> list[EngineMessage]:
    deadline = time.monotonic() + timeout
    rows = committed(url)
    while len(rows) < count and time.monotonic() < deadline:
        time.sleep(0.25)
        rows = committed(url)
    return rows


def check_exactly_once_in_order(rows: list[EngineMessage], sent: Sent) -> None:
    """Every confirmed signal applied exactly once, and per account in the order sent."""
    ids = [r.message_id for r in rows]
    assert len(ids) == len(set(ids)), "a message was applied twice"
    missing = set(sent.messages) - set(ids)
    assert not missing, f"{len(missing)} confirmed signals never committed, e.g. {sorted(missing)[:3]}"
    assert set(ids) == set(sent.messages)
    per_account: dict[str, list[int]] = defaultdict(list)
    for r in rows:  # ids grow in commit order (one owner per partition at a time, fenced)
        assert r.seq is not None
        per_account[r.account_id].append(r.seq)
    for account, seqs in per_account.items():
        assert seqs == list(range(1, len(seqs) + 1)), f"account {account}: applied out of order {seqs}"


def partitions(url: str) -> dict[int, EnginePartition]:
    factory = make_session_factory(url)
    try:
        with factory() as session:
            return {r.partition: r for r in session.scalars(sa.select(EnginePartition))}
    finally:
        factory.kw["bind"].dispose()


def wait_until(predicate: object, timeout: float, interval: float = 0.1) -> bool:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def time_takeover(url: str, lost: set[int], epochs: dict[int, int], since: float, timeout: float) -> float:
    """Seconds from ``since`` (time.time()) until every partition in ``lost`` shows a newer
    epoch than ``epochs`` in the database, polled every 20 ms (a later claim by fair-share
    moves would overwrite ``claimed_at``, so the first new epoch is observed, not read back)."""
    factory = make_session_factory(url)
    try:
        pending = set(lost)
        seen = since
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            with factory() as session:
                rows = session.execute(sa.select(EnginePartition.partition, EnginePartition.epoch,
                                                 EnginePartition.claimed_at)
                                       .where(EnginePartition.partition.in_(pending)))
                for partition, epoch, claimed_at in rows:
                    if epoch > epochs[partition]:
                        pending.discard(partition)
                        seen = max(seen, claimed_at.timestamp() if claimed_at else time.time())
            if pending:
                time.sleep(0.02)
        if pending:
            raise AssertionError(f"partitions {sorted(pending)} not taken over within {timeout} s")
        return seen - since
    finally:
        factory.kw["bind"].dispose()

