"""The scaled-out deployment's use cases: run a worker, publish a signal to its partition.

``run_worker`` is what ``sealbot worker`` does: it opens the platform (for the venue of
each account: the signer-bound ccxt venue, as in the embedded engine), builds an
``engine.scaleout.Worker`` with a ``WorkerUpkeep`` (owned accounts kept in step with the
database, watched by the watchdog, valued; services/worker_upkeep.py) and serves until
SIGINT/SIGTERM. ``SignalPublisher`` is the webhook gateway's side: a signal the gate
accepted is published, persistently and with a publisher confirm, to its account's
partition, and the call returns only after the broker confirmed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal as os_signal
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa

from sealbot.config import EngineBackend, Settings
from sealbot.custody.redaction import register_secret
from sealbot.domain import Pair
from sealbot.domain.errors import InvalidConfig
from sealbot.engine.app import EngineOptions
from sealbot.engine.scaleout.broker import Publisher, Signal, Topology
from sealbot.engine.scaleout.evict import DEFAULT_EVICT_AFTER, BrokerAdmin
from sealbot.engine.scaleout.ingest import Ingestor
from sealbot.engine.scaleout.metrics import WorkerMetrics
from sealbot.engine.scaleout.partitions import PartitionStore
from sealbot.engine.scaleout.worker import Worker, WorkerOptions, new_worker_id
from sealbot.services import inbox
from sealbot.services.platform import Platform, open_platform
from sealbot.services.serving import long_lived_runner
from sealbot.services.webhooks import Accepted, SignalGate
from sealbot.services.worker_upkeep import WorkerUpkeep
from sealbot.store import make_session_factory
from sealbot.store.models import Bot
from sealbot.venues.ccxt_venue import CcxtVenue

DEFAULT_PARTITIONS = 128
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerConfig:
    """``sealbot worker``'s options (docs/deploy.md); None: the instance's setting."""

    partitions: int | None = None
    prefix: str | None = None
    tick: float = 0.2
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    stats_file: Path | None = None
    worker_id: str | None = None
    record_latencies: bool = False
    market_data: str = "poll"  # or "ingest": candles from `sealbot ingest` over the broker
    # seconds a peer's heartbeat may stand still before this worker closes its broker
    # connections (needs setting `broker_admin_url`); None: max(1.2 s, 6 ticks); 0: never
    evict_after: float | None = None


def broker_url(settings: Settings) -> str:
    """The broker URL; ``InvalidConfig`` naming the setting when it is missing."""
    if settings.broker_url is None or not settings.broker_url.get_secret_value():
        raise InvalidConfig("broker_url", "is required for the scaled-out engine (SEALBOT_BROKER_URL)")
    return settings.broker_url.get_secret_value()


def broker_admin_url(settings: Settings) -> str:
    """The management API URL, or "" (no eviction). Its password is registered with the
    redaction, and the URL is checked here: ``InvalidConfig`` naming the setting."""
    if settings.broker_admin_url is None or not settings.broker_admin_url.get_secret_value():
        return ""
    url = settings.broker_admin_url.get_secret_value()
    try:
        BrokerAdmin(url)
    except ValueError as exc:
        raise InvalidConfig("broker_admin_url", str(exc).partition(": ")[2]) from None
    password = urlsplit(url).password
    if password:
        register_secret(password)
    return url


def _check(config: WorkerConfig) -> None:
    if config.partitions is not None and not 1 <= config.partitions <= 4096:
        raise InvalidConfig("partitions", "must be between 1 and 4096")
    if config.market_data not in ("poll", "ingest"):
        raise InvalidConfig("market_data", "must be poll or ingest")
    if not 0.05 <= config.tick <= 10:
        raise InvalidConfig("tick", "must be between 0.05 and 10 seconds")
    if config.evict_after is not None and config.evict_after != 0 and not 3 * config.tick <= config.evict_after <= 60:
        raise InvalidConfig("evict_after", "must be 0 (never) or between 3 ticks and 60 seconds")
    if config.prefix is not None and (not config.prefix or not all(c.isalnum() or c in "-_." for c in config.prefix)):
        raise InvalidConfig("prefix", "letters, digits, '-', '_' and '.' only")


def build_worker(settings: Settings, config: WorkerConfig) -> Worker:
    _check(config)
    url = broker_url(settings)  # before opening anything: the missing setting is the message
    admin_url = broker_admin_url(settings)
    platform = open_platform(settings)
    topology = Topology(config.prefix or settings.broker_prefix, config.partitions or settings.engine_partitions)
    options = WorkerOptions(broker_url=url, topology=topology,
                            worker_id=config.worker_id or new_worker_id(), tick=config.tick,
                            live_within=max(1.0, 5 * config.tick), stale_after=1.5 * config.tick,
                            stats_file=config.stats_file, record_latencies=config.record_latencies,
                            market_data=config.market_data, broker_admin_url=admin_url,
                            evict_after=(config.evict_after if config.evict_after is not None
                                         else max(DEFAULT_EVICT_AFTER, 6 * config.tick)),
                            runner=long_lived_runner(settings))
    metrics = WorkerMetrics(options.worker_id)
    if config.metrics_port is not None:
        metrics.serve(config.metrics_port, config.metrics_host)
    return worker_for(platform, options, metrics)


def worker_for(platform: Platform, options: WorkerOptions, metrics: WorkerMetrics | None = None, *,
               engine: EngineOptions | None = None, sync_interval: float = 1.0) -> Worker:
    """A worker on ``platform``'s database and venues that, besides applying its
    partitions' messages, keeps their accounts in step with the database every
    ``sync_interval`` seconds, runs the watchdog and the portfolio refresher over them
    and sends alerts to the users' channels (``engine``: guard, watchdog and refresher
    settings; the runner's settings are ``options.runner``)."""
    engine = engine or EngineOptions()
    upkeep = WorkerUpkeep(platform, options.topology.partitions, options=engine, sync_interval=sync_interval)
    return Worker(platform.session_factory, platform.venue_for, inbox.decode, options, metrics,
                  guard=engine.guard, upkeep=upkeep)


async def _serve(worker: Worker) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (os_signal.SIGINT, os_signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await worker.run(stop)


def run_ingest(settings: Settings, exchange: str, pairs: list[str], *, timeframe: str = "1m",
               interval: float = 5.0, ticker_interval: float = 15.0, api_base: str | None = None) -> None:
    """Run one market-data ingestor until SIGINT/SIGTERM: public candles of ``pairs`` on
    ``exchange`` (no key: ccxt's public endpoints, or those at ``api_base``: a testnet, a
    simex) to the broker's market exchange, and their tickers at most once per
    ``ticker_interval`` seconds (0: none). Both name the venue identity of the endpoint
    polled (``engine.market.venue_key``): workers feed them only to accounts on it."""
    url = broker_url(settings)
    if not pairs:
        raise InvalidConfig("pairs", "name at least one pair, e.g. BTC/USDT")
    parsed = []
    for i, text in enumerate(pairs):
        try:
            parsed.append(Pair.parse(text))
        except ValueError as exc:
            raise InvalidConfig(f"pairs.{i}", str(exc)) from None
    if not 0.5 <= interval <= 3600:
        raise InvalidConfig("interval", "must be between 0.5 and 3600 seconds")
    if ticker_interval != 0 and not 1 <= ticker_interval <= 3600:
        raise InvalidConfig("ticker_interval", "must be 0 (no tickers) or between 1 and 3600 seconds")
    try:
        venue = CcxtVenue(exchange, urls={"api_base": api_base} if api_base else None)
    except InvalidConfig as exc:  # named as the option is
        raise InvalidConfig("api_base", exc.reason) from None
    ingestor = Ingestor(venue, exchange, parsed, url, Topology(settings.broker_prefix, settings.engine_partitions),
                        timeframe=timeframe, interval=interval, ticker_interval=ticker_interval or None,
                        stream=settings.feed_streams)

    log.info("ingest %s: venue %s", exchange, ingestor.identity)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (os_signal.SIGINT, os_signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        try:
            await ingestor.run(stop)
        finally:
            await venue.close()

    asyncio.run(serve())


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


class InboxRelay:
    """Moves bot-inbox items to the broker: each pending item is published to its
    account's partition (message id ``inbox-<item id>``, so a second publish of the same
    item is applied once by the worker's ledger), and marked delivered after the confirm.

    The webhook gate still records an accepted signal in the database first (the same
    checks, audit and de-duplication as the embedded engine), so a signal accepted while
    the broker is unreachable is not lost: the relay's periodic pass publishes it later.
    It runs its own event loop on a daemon thread, because the gate is synchronous (it
    runs in the web server's thread pool)."""

    def __init__(self, platform: Platform, *, partitions: int = DEFAULT_PARTITIONS, prefix: str = "sealbot",
                 interval: float = 1.0, confirm_timeout: float = 5.0) -> None:
        self.platform, self.interval, self.confirm_timeout = platform, interval, confirm_timeout
        self.store = PartitionStore(platform.session_factory, partitions)
        self.publisher = Publisher(broker_url(platform.settings), Topology(prefix, partitions))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="inbox relay", daemon=True)
        self._lock = asyncio.Lock()
        self._opened = False
        self._thread.start()
        self._periodic = asyncio.run_coroutine_threadsafe(self._every_interval(), self._loop)

    async def _every_interval(self) -> None:
        while True:
            try:
                await self._relay(None)
            except Exception as exc:  # broker or database away: the next pass retries
                log.warning("inbox relay: pass failed (%s); retrying", exc)
                self._opened = False
            await asyncio.sleep(self.interval)

    async def _relay(self, bot_ids: list[int] | None) -> int:
        async with self._lock:  # one pass at a time: items go out in inbox order
            if not self._opened:
                await self.publisher.close()
                await self.publisher.open()
                self._opened = True
            items = inbox.pending(self.platform, bot_ids=bot_ids, limit=500)
            if not items:
                return 0
            with self.platform.uow() as uow:
                accounts = {b.id: b.account_id for b in uow.session.scalars(
                    sa.select(Bot).where(Bot.id.in_({i.bot_id for i in items})))}
            for item in items:
                account = accounts.get(item.bot_id)
                if account is None:
                    continue  # a bot without an account has nothing to run on
                kind, payload = inbox.encode(item.event)  # type: ignore[arg-type]
                signal = Signal(f"inbox-{item.id}", str(account), str(item.bot_id), kind, payload, None,
                                datetime.now(UTC))
                await self.publisher.publish(self.store.partition_of(str(account)), signal)
                inbox.mark_delivered(self.platform, [item.id])
            return len(items)

    def relay(self, bot_ids: list[int] | None = None) -> int:
        """Publish the pending items (of ``bot_ids``, or all) and wait for the confirms."""
        future = asyncio.run_coroutine_threadsafe(self._relay(bot_ids), self._loop)
        return future.result(self.confirm_timeout)

    def close(self) -> None:
        self._periodic.cancel()
        asyncio.run_coroutine_threadsafe(self.publisher.close(), self._loop).result(self.confirm_timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(self.confirm_timeout)


class BrokerSignalGate(SignalGate):
    """The webhook gate of the scaled-out deployment: the same checks, then the accepted
    signal goes to its account's partition queue before the gate answers."""

    def __init__(self, platform: Platform, relay: InboxRelay) -> None:
        super().__init__(platform)
        self.relay = relay

    def receive(self, body: bytes, source_ip: str | None, now: datetime | None = None) -> Accepted:
        accepted = super().receive(body, source_ip, now)
        try:
            self.relay.relay([accepted.bot_id, *accepted.members])
        except Exception as exc:  # accepted and stored: the relay's next pass publishes it
            log.warning("signal %s stored; publishing deferred (%s)", accepted.signal_id, exc)
        return accepted


def signal_gate_for(platform: Platform) -> SignalGate:
    """The webhook gate this instance's settings ask for: in-process (the bot inbox, read
    by the embedded engine) or the broker (``engine = "rabbitmq"``)."""
    settings = platform.settings
    if settings.engine is EngineBackend.RABBITMQ:
        return BrokerSignalGate(platform, InboxRelay(platform, partitions=settings.engine_partitions,
                                                      prefix=settings.broker_prefix))
    return SignalGate(platform)
