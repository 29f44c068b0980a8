"""Workers on the real RabbitMQ and PostgreSQL: a killed worker's partitions move to the
others, and no signal is lost, applied twice or applied out of order.

Takeover time is measured from the signal (SIGKILL, SIGSTOP) to the moment the last of
the victim's partitions was claimed at a new epoch (``claimed_at``: when the claim got
the partition row's lock in PostgreSQL).

A *heartbeat* here is the AMQP heartbeat interval the workers negotiate with RabbitMQ
(``WorkerOptions.amqp_heartbeat``, 1 s). RabbitMQ checks a connection for incoming bytes
once per interval and drops it after two checks in a row saw none: between two and three
intervals after the last byte it received. The workers do not wait for that: a peer whose
heartbeat row stood still for ``evict_after`` (1.2 s) has its connections closed through
the management API (engine/scaleout/evict.py), and its partitions move then.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from datetime import datetime

from sealbot.engine.scaleout.broker import Topology
from sealbot.engine.scaleout.evict import DEFAULT_EVICT_AFTER as EVICT_AFTER
from sealbot.engine.scaleout.evict import BrokerAdmin
from sealbot.engine.scaleout.rabbit import connection_names
from sealbot.engine.scaleout.worker import WorkerOptions

from .conftest import BROKER_URL, PARTITIONS, seed_accounts
from .traffic import (
    Sent,
    check_exactly_once_in_order,
    partitions,
    publish,
    time_takeover,
    wait_committed,
    wait_until,
)


def _all_owned(workers: list) -> bool:  # type: ignore[type-arg]
    owned = [w.owned() for w in workers]
    return sum(len(o) for o in owned) == PARTITIONS and len(set().union(*owned)) == PARTITIONS


def _fair(workers: list) -> bool:  # type: ignore[type-arg]
    share = -(-PARTITIONS // len(workers))
    return _all_owned(workers) and all(0 < len(w.owned()) <= share for w in workers)


def _tokens_held(workers: list) -> bool:  # type: ignore[type-arg]
    """Every worker holds the token of each partition it owns (the fast takeover path)."""
    return all(set(w.stats().get("tokens", [])) == w.owned() for w in workers)


HEARTBEAT = float(WorkerOptions.amqp_heartbeat)  # seconds (see the module's docstring)
TICK = WorkerOptions.tick


def test_sigkill_of_the_busiest_worker_loses_and_duplicates_nothing(pg_url: str, topology: Topology,
                                                                     spawn: object) -> None:
    assert callable(spawn)
    accounts = seed_accounts(pg_url, 200)
    workers = [spawn(f"w{i}") for i in range(3)]
    assert wait_until(lambda: _fair(workers) and _tokens_held(workers), 30), \
        [w.stats() for w in workers]
    sent = Sent()
    publisher = threading.Thread(target=lambda: asyncio.run(
        publish(BROKER_URL, topology, accounts, rate=200, seconds=6, sent=sent, tag="kill")))
    publisher.start()
    threading.Event().wait(2.0)
    victim = max(workers, key=lambda w: len(w.owned()))
    lost = victim.owned()
    epochs = {p: r.epoch for p, r in partitions(pg_url).items()}
    killed_at = victim.signal(signal.SIGKILL)
    takeover = time_takeover(pg_url, lost, epochs, killed_at, timeout=15)
    publisher.join()
    rows = wait_committed(pg_url, len(sent.messages), timeout=30)
    check_exactly_once_in_order(rows, sent)
    after = partitions(pg_url)
    assert all(after[p].epoch > epochs[p] and after[p].owner != victim.stats()["worker"] for p in lost)
    print(f"takeover after SIGKILL: {takeover * 1000:.0f} ms for {len(lost)} partitions; "
          f"{len(sent.messages)} signals")
    # The broker hands the dead worker's tokens to the survivors as soon as its socket closes.
    # Measured 69-348 ms (median 133 ms) in 20 runs with a CPU hog beside the test (load average 2.7-12).
    assert takeover < 1.0, f"takeover took {takeover:.3f} s"
    survivors = [w for w in workers if w is not victim]
    assert wait_until(lambda: _all_owned(survivors), 10)


def _traffic(topology: Topology, accounts: list[str], sent: Sent, seconds: float, tag: str,
             rate: float = 100) -> threading.Thread:
    thread = threading.Thread(target=lambda: asyncio.run(
        publish(BROKER_URL, topology, accounts, rate=rate, seconds=seconds, sent=sent, tag=tag)))
    thread.start()
    return thread


def test_a_paused_worker_is_replaced_and_fenced_when_it_wakes_up(pg_url: str, topology: Topology,
                                                                  spawn: object, broker_admin: str) -> None:
    assert callable(spawn)
    accounts = seed_accounts(pg_url, 60)
    workers = [spawn(f"s{i}") for i in range(3)]
    # 60 s: on a loaded host (load average 10 on two cores) one worker's start alone took 45 s
    assert wait_until(lambda: _fair(workers) and _tokens_held(workers), 60), [w.stats() for w in workers]
    sent = Sent()
    traffic = _traffic(topology, accounts, sent, 7, "stop")
    threading.Event().wait(1.5)
    victim = max(workers, key=lambda w: len(w.owned()))
    name, lost = victim.stats()["worker"], victim.owned()
    epochs = {p: r.epoch for p, r in partitions(pg_url).items()}
    stopped_at = victim.signal(signal.SIGSTOP)
    takeover = time_takeover(pg_url, lost, epochs, stopped_at, timeout=15)
    after = partitions(pg_url)
    print(f"takeover after SIGSTOP: {takeover * 1000:.0f} ms for {len(lost)} partitions")
    # RabbitMQ alone takes two to three heartbeats to drop the paused worker's connection (the
    # module's docstring): 2.18-3.05 s, above 3 s in 2 of 45 runs (docs/deploy.md). A survivor
    # evicts the paused worker once its heartbeat row stood still for evict_after (its last
    # beat came up to a tick before the SIGSTOP), and its tokens reach the survivors at once.
    survivors = [w for w in workers if w is not victim]
    still = max(w.stats().get("peer_still_max", 0.0) for w in survivors)
    print(f"longest a live peer's heartbeat stood still, seen by the survivors: {still * 1000:.0f} ms")
    assert takeover > EVICT_AFTER - 2 * TICK, "taken over before a survivor can have judged the worker hung"
    assert takeover < 3 * HEARTBEAT, f"takeover took {takeover:.3f} s"
    assert wait_until(lambda: sum(w.stats().get("evictions", 0) for w in survivors) >= 1, 5), \
        ("the takeover came from the broker's heartbeat timeout, not from an eviction",
         [line for w in survivors for line in w.log.read_text().splitlines() if "evict" in line])
    evicted = min(datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                  for w in survivors for line in w.log.read_text().splitlines() if ": evicted " in line)
    print(f"eviction done {(evicted - stopped_at) * 1000:.0f} ms after the SIGSTOP")
    fenced_before = victim.stats()["fenced"]
    victim.signal(signal.SIGCONT)
    traffic.join()

    def stepped_down() -> bool:
        """Its writes were refused and it holds none of the lost partitions at the epoch it
        had: after stepping down it may win some back through the fair share, at a new epoch."""
        stats = victim.stats()
        owned = {int(p): int(e) for p, e in stats.get("owned", {}).items()}
        return stats.get("fenced", 0) > fenced_before and all(owned.get(p, epochs[p] + 1) > epochs[p] for p in lost)

    assert wait_until(stepped_down, 15), victim.stats()
    rows = wait_committed(pg_url, len(sent.messages), timeout=30)
    check_exactly_once_in_order(rows, sent)
    # nothing the paused worker wrote for a lost partition committed after the takeover
    for row in rows:
        if row.worker == name and row.partition in lost and row.epoch == epochs[row.partition]:
            claimed = after[row.partition].claimed_at
            assert claimed is not None and row.committed_at <= claimed


def _close_connections_of(admin_url: str, worker: str) -> int:
    admin = BrokerAdmin(admin_url)
    try:
        return admin.close_named(connection_names(worker), "test: a live worker evicted by mistake")
    finally:
        admin.close()


def _listed(admin_url: str, worker: str) -> bool:
    admin = BrokerAdmin(admin_url)
    try:
        return any(provided in connection_names(worker) for _, provided in admin.connections())
    finally:
        admin.close()


def test_evicting_a_live_worker_by_mistake_loses_and_duplicates_nothing(pg_url: str, topology: Topology,
                                                                       spawn: object, broker_admin: str) -> None:
    """What a survivor does to a worker it wrongly judged hung (a pause longer than
    evict_after, shorter than the broker's timeout), done here to a worker that runs on
    under traffic: its connections close in the middle of its work. It steps down, the
    others take its partitions, what it had in flight is applied once by them (the fence
    refuses its late writes), and it reconnects and gets a fair share back."""
    assert callable(spawn)
    accounts = seed_accounts(pg_url, 60)
    workers = [spawn(f"e{i}") for i in range(3)]
    assert wait_until(lambda: _fair(workers) and _tokens_held(workers), 60), [w.stats() for w in workers]
    sent = Sent()
    traffic = _traffic(topology, accounts, sent, 6, "evict", rate=200)
    threading.Event().wait(1.5)
    victim = max(workers, key=lambda w: len(w.owned()))
    # The management API lists a connection a moment after it opened (0.4-2.2 s measured),
    # and on a loaded host a peer may just have taken the victim for hung and made it
    # reconnect: close its connections only once the API shows them.
    assert wait_until(lambda: _listed(broker_admin, victim.stats()["worker"]), 15), \
        "the victim's connections never showed in the management API"
    lost = victim.owned()
    epochs = {p: r.epoch for p, r in partitions(pg_url).items()}
    closed_at = time.time()
    assert _close_connections_of(broker_admin, victim.stats()["worker"]) >= 1
    takeover = time_takeover(pg_url, lost, epochs, closed_at, timeout=15)
    print(f"takeover after closing a live worker's connections: {takeover * 1000:.0f} ms for {len(lost)} partitions")
    assert takeover < 1.0, f"takeover took {takeover:.3f} s"
    traffic.join()
    rows = wait_committed(pg_url, len(sent.messages), timeout=30)
    check_exactly_once_in_order(rows, sent)
    assert victim.proc.poll() is None, "the evicted worker exited instead of reconnecting"
    assert wait_until(lambda: _fair(workers), 30), [w.stats() for w in workers]
    # For the record (not asserted: it depends on the host's load): how close the live
    # workers' heartbeats came to the threshold, and whether any was taken for hung.
    still = max(w.stats().get("peer_still_max", 0.0) for w in workers)
    evictions = sum(w.stats().get("evictions", 0) for w in workers)
    print(f"longest a live peer's heartbeat stood still: {still * 1000:.0f} ms (evict_after {EVICT_AFTER} s); "
          f"evictions by the workers themselves: {evictions}")


def test_a_fourth_worker_gets_a_fair_share_without_losing_a_signal(pg_url: str, topology: Topology,
                                                                   spawn: object) -> None:
    assert callable(spawn)
    accounts = seed_accounts(pg_url, 60)
    workers = [spawn(f"f{i}") for i in range(3)]
    assert wait_until(lambda: _fair(workers), 30), [w.stats() for w in workers]
    sent = Sent()
    traffic = _traffic(topology, accounts, sent, 8, "grow")
    threading.Event().wait(1.0)
    workers.append(spawn("f3"))
    assert wait_until(lambda: _fair(workers), 30), [w.stats() for w in workers]
    assert all(len(w.owned()) == PARTITIONS // 4 for w in workers)
    traffic.join()
    rows = wait_committed(pg_url, len(sent.messages), timeout=30)
    check_exactly_once_in_order(rows, sent)
