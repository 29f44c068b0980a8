"""A scaled-out worker as its own process, for the scale-out chaos test: the real
``engine.scaleout.Worker`` (RabbitMQ single-active-consumer partitions, the epoch fence
on PostgreSQL) running accounts on simex until killed.

    python scaleout_worker.py --zygote      # a fork server: one worker per JSON line on stdin

The JSON is crash_worker.py's (``db_url``, ``base_url``, ``admin_token``, ``accounts``)
plus ``broker_url``, ``prefix``, ``partitions``, ``worker_id``, ``stats_file`` and
``events`` (a file this worker appends its evidence to). The worker prints
``ready <pid>`` once it is connected to the broker.

The evidence, one JSON object per line, written before the act it describes can have
effects elsewhere (so a SIGKILL cannot hide it):

* ``claim``: the worker raised a partition's epoch (written once the claim committed);
* ``send``: an order request is about to go to simex, with the partition and epoch the
  account runs under;
* ``commit``: a fenced journal transaction committed, with the time it began;
* ``fenced``: the fence refused a journal transaction (a stale epoch).

What differs from ``sealbot worker``: simex venues with the test's keys instead of the
signer's, and the runner on simex's accelerated clock and one-second budgets (the
same settings as crash_worker.py), set on the worker's runner after it is built.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crash_worker import ShortWindowBudgets, dump_tasks_on_usr1, simex_clock, simex_settings, venue_factory, zygote

from sealbot.domain import Order
from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.journal import AccountRecord
from sealbot.engine.scaleout.broker import Topology
from sealbot.engine.scaleout.fence import CURRENT
from sealbot.engine.scaleout.partitions import Fenced
from sealbot.engine.scaleout.worker import Worker, WorkerOptions
from sealbot.engine.store_journal import StoreTx
from sealbot.services import inbox
from sealbot.store import make_session_factory
from sealbot.venues.base import Venue


class Evidence:
    """Appends one JSON line per event with a single ``write`` (O_APPEND)."""

    def __init__(self, path: str, worker: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.worker = worker

    def __call__(self, kind: str, **fields: Any) -> None:
        line = json.dumps({"kind": kind, "worker": self.worker, "t": time.time(), **fields}) + "\n"
        os.write(self.fd, line.encode())


def instrument(worker: Worker, evidence: Evidence) -> None:
    """Record claims and fenced/committed transactions of ``worker`` (see the module doc)."""
    claim = worker.store.claim

    def logged_claim(partition: int, worker_id: str) -> int:
        epoch = claim(partition, worker_id)
        evidence("claim", p=partition, epoch=epoch)
        return epoch

    worker.store.claim = logged_claim  # type: ignore[method-assign]
    transaction = worker.journal.transaction

    @contextmanager
    def logged_transaction() -> Iterator[StoreTx]:
        scope = CURRENT.get()
        began = time.time()
        try:
            with transaction() as tx:
                yield tx
        except Fenced as exc:
            evidence("fenced", p=exc.partition, epoch=exc.epoch, current=exc.current)
            raise
        if scope is not None:
            evidence("commit", p=scope.partition, epoch=scope.epoch, began=began)

    worker.journal.transaction = logged_transaction  # type: ignore[method-assign]


async def main(args: dict[str, Any]) -> None:
    clock = simex_clock(args)
    evidence = Evidence(args["events"], args["worker_id"])
    simex = venue_factory(args)

    async def factory(account: AccountRecord) -> Venue:
        venue = await simex(account)
        create = venue.create_order

        async def create_order(order: Order, attempt_at: datetime | None = None) -> Order:
            scope = CURRENT.get()
            evidence("send", account=account.id, cid=order.client_id.text,
                     p=scope.partition if scope else None, epoch=scope.epoch if scope else None)
            return await create(order, attempt_at)

        venue.create_order = create_order  # type: ignore[method-assign]
        return venue

    options = WorkerOptions(args["broker_url"], Topology(args["prefix"], int(args["partitions"])),
                            worker_id=args["worker_id"], stats_file=Path(args["stats_file"]),
                            runner=simex_settings(clock.speed))
    worker = Worker(make_session_factory(args["db_url"]), factory, inbox.decode, options,
                    guard=GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0))))
    # the runner on simex's clock (order times, fill look-backs) and the test's budgets
    worker.runner.clock = clock
    worker.runner.budgets = ShortWindowBudgets(clock)
    instrument(worker, evidence)
    dump_tasks_on_usr1()
    stop = asyncio.Event()
    serving = asyncio.create_task(worker.run(stop))
    while not worker.transport.connected and not serving.done():  # type: ignore[attr-defined]
        await asyncio.sleep(0.02)
    print(f"ready {os.getpid()}", flush=True)
    await serving


if __name__ == "__main__":
    zygote(main)
