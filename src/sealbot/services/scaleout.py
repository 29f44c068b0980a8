"""The scaled-out deployment's use cases: run a worker, publish a signal to its partition.

``run_worker`` is what ``sealbot worker`` does: it opens the platform (for the venue of
each account: the signer-bound ccxt venue, as in the embedded engine), builds an
``engine.scaleout.Worker`` and serves until SIGINT/SIGTERM. ``SignalPublisher`` is the
webhook gateway's side: a signal the gate accepted is published, persistently and with a
publisher confirm, to its account's partition, and the call returns only after the
broker confirmed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal as os_signal
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sealbot.config import Settings
from sealbot.domain.errors import InvalidConfig
from sealbot.engine.runner import RunnerSettings
from sealbot.engine.scaleout.broker import Publisher, Signal, Topology
from sealbot.engine.scaleout.metrics import WorkerMetrics
from sealbot.engine.scaleout.partitions import PartitionStore
from sealbot.engine.scaleout.worker import Worker, WorkerOptions, new_worker_id
from sealbot.services import inbox
from sealbot.services.platform import open_platform
from sealbot.store import make_session_factory

DEFAULT_PARTITIONS = 128


@dataclass(frozen=True)
class WorkerConfig:
    """``sealbot worker``'s options (docs/deploy.md)."""

    partitions: int = DEFAULT_PARTITIONS
    prefix: str = "sealbot"
    tick: float = 0.2
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    stats_file: Path | None = None
    worker_id: str | None = None


def broker_url(settings: Settings) -> str:
    """The broker URL; ``InvalidConfig`` naming the setting when it is missing."""
    if settings.broker_url is None or not settings.broker_url.get_secret_value():
        raise InvalidConfig("broker_url", "is required for the scaled-out engine (SEALBOT_BROKER_URL)")
    return settings.broker_url.get_secret_value()


def _check(config: WorkerConfig) -> None:
    if not 1 <= config.partitions <= 4096:
        raise InvalidConfig("partitions", "must be between 1 and 4096")
    if not 0.05 <= config.tick <= 10:
        raise InvalidConfig("tick", "must be between 0.05 and 10 seconds")
    if not config.prefix or not all(c.isalnum() or c in "-_." for c in config.prefix):
        raise InvalidConfig("prefix", "letters, digits, '-', '_' and '.' only")


def build_worker(settings: Settings, config: WorkerConfig) -> Worker:
    _check(config)
    platform = open_platform(settings)
    options = WorkerOptions(broker_url=broker_url(settings), topology=Topology(config.prefix, config.partitions),
                            worker_id=config.worker_id or new_worker_id(), tick=config.tick,
                            live_within=max(1.0, 5 * config.tick), stale_after=1.5 * config.tick,
                            stats_file=config.stats_file, runner=RunnerSettings())
    metrics = WorkerMetrics(options.worker_id)
    if config.metrics_port is not None:
        metrics.serve(config.metrics_port, config.metrics_host)
    return Worker(platform.session_factory, platform.venue_for, inbox.decode, options, metrics)


async def _serve(worker: Worker) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (os_signal.SIGINT, os_signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await worker.run(stop)


def run_worker(settings: Settings, config: WorkerConfig) -> None:
    """Serve as one worker until SIGINT/SIGTERM (then hand the partitions over at once)."""
    asyncio.run(_serve(build_worker(settings, config)))


class SignalPublisher:
    """Publishes events for accounts to their partition queues (the webhook gateway)."""

    def __init__(self, settings: Settings, *, partitions: int = DEFAULT_PARTITIONS, prefix: str = "sealbot") -> None:
        self.store = PartitionStore(make_session_factory(settings.effective_database_url), partitions)
        self.publisher = Publisher(broker_url(settings), Topology(prefix, partitions))

    async def open(self) -> None:
        await self.publisher.open()

    async def close(self) -> None:
        await self.publisher.close()

    async def publish(self, account_id: str, bot_id: str | None, kind: str, payload: dict[str, object],
                      *, message_id: str | None = None, seq: int | None = None) -> str:
        """Publish and wait for the broker's confirm; the message id (it de-duplicates)."""
        mid = message_id or uuid.uuid4().hex
        signal = Signal(mid, account_id, bot_id, kind, dict(payload), seq, datetime.now(UTC))
        await self.publisher.publish(self.store.partition_of(account_id), signal)
        return mid
