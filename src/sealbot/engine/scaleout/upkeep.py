"""The worker's hook for what an owner does besides applying its partitions' messages.

A worker learns which partitions it owns from the broker; what it must keep doing for
their accounts — follow what users change through the web tier (bots started, stopped,
re-configured, kill switches, revoked keys), watch the accounts for orders sealbot did
not place, value them — needs the services layer (notification channels, the venue of
an idle account), which the engine must not import. So the services layer hands the
worker an object with this shape (``services.worker_upkeep.WorkerUpkeep``) and the worker
only says *when*: right after it claimed a partition (its accounts started), and before
it stops a partition's accounts when it leaves it. ``left`` returns only once nothing the
upkeep does for that partition is still in flight, so no work of an old epoch overlaps
the stop or a later claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sealbot.engine.runner import InProcessRunner


class PartitionUpkeep(Protocol):
    def attach(self, runner: InProcessRunner) -> None:
        """The worker's runner (called once, before any partition is claimed)."""

    async def claimed(self, partition: int, epoch: int, accounts: Sequence[str]) -> None:
        """This worker owns ``partition`` at ``epoch``; ``accounts`` were started by the claim."""

    async def left(self, partition: int) -> None:
        """This worker no longer owns ``partition``: stop any work for it, then return."""
