"""Eviction of a hung peer (engine/scaleout/evict.py).

``StaleWatch`` decides, from successive reads of the workers' heartbeat rows, which peer
to evict: no I/O, times given. ``BrokerAdmin`` closes a worker's named connections
through RabbitMQ's management API (the real one on this machine: ``broker_admin``)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aio_pika
import pytest

from sealbot.engine.scaleout.evict import AdminError, BrokerAdmin, PeerReading, StaleWatch
from sealbot.engine.scaleout.rabbit import connection_names

from .conftest import BROKER_URL

AFTER = 1.25  # exact in binary, like the tick: no rounding at the threshold
TICK = 0.25


def _rounds(watch: StaleWatch, start: float, seconds: float, beats: dict[str, int],
            moving: tuple[str, ...] = ()) -> tuple[float, list[str]]:
    """Heartbeat rounds every tick, the last at ``start + seconds``: the ``moving`` peers
    beat each round, the others stand still; (time of the last round, every peer found due)."""
    now, due = start, []
    while now + TICK <= start + seconds:
        now += TICK
        for peer in moving:
            beats[peer] += 1
        due += watch.observe(now, beats)
    return now, due


def test_a_peer_that_keeps_beating_is_never_evicted() -> None:
    watch = StaleWatch("me", AFTER)
    _, due = _rounds(watch, 0.0, 30, {"me": 0, "a": 0, "b": 0}, moving=("a", "b"))
    assert due == [] and watch.longest_still == TICK


def test_a_peer_whose_heartbeat_stands_still_is_evicted_once_after_the_threshold() -> None:
    watch = StaleWatch("me", AFTER)
    beats = {"me": 0, "a": 0, "hung": 0}
    now, due = _rounds(watch, 0.0, 1.0, beats, moving=("me", "a"))
    assert due == []  # still for 0.75 s of its rounds < 1.25 s
    now, due = _rounds(watch, now, 0.5, beats, moving=("me", "a"))
    assert due == ["hung"]
    # one eviction at a time: while it runs, the peer is not due again
    now, due = _rounds(watch, now, 3, beats, moving=("me", "a"))
    assert due == [] and watch.busy == {"hung"}
    watch.finished("hung", now, ok=True)
    # done: not again while the same heartbeat stands still (a SIGKILLed worker's row stays)
    now, due = _rounds(watch, now, 10, beats, moving=("me", "a"))
    assert due == [] and watch.busy == frozenset()
    # it woke up and beat, then hung again: a new eviction
    beats["hung"] += 1
    now, due = _rounds(watch, now, 1.5, beats, moving=("me", "a"))
    assert due == ["hung"]


def test_this_worker_is_never_its_own_eviction() -> None:
    watch = StaleWatch("me", AFTER)
    _, due = _rounds(watch, 0.0, 10, {"me": 0, "a": 0}, moving=("a",))
    assert due == []


def test_a_failed_eviction_is_retried_later_not_at_once() -> None:
    watch = StaleWatch("me", AFTER, retry_after=5.0)
    beats = {"me": 0, "hung": 0}
    now, due = _rounds(watch, 0.0, 1.5, beats)
    assert due == ["hung"]
    watch.finished("hung", now, ok=False)  # the management API did not answer
    now, due = _rounds(watch, now, 4.8, beats)
    assert due == []
    now, due = _rounds(watch, now, 0.4, beats)
    assert due == ["hung"]


def test_a_slow_database_read_judges_nobody_and_restarts_the_count() -> None:
    """The database stalled (every worker's heartbeat held back alike): what stood still
    until then counts for nothing; a peer still standing still afterwards is judged anew."""
    watch = StaleWatch("me", AFTER)
    beats = {"me": 0, "a": 0}
    now, due = _rounds(watch, 0.0, 1.0, beats)
    assert due == []
    now += 1.0  # this round's database work took a second, and the peer's row has not moved
    assert watch.observe(now, beats, took=1.0) == []
    now, due = _rounds(watch, now, 1.0, beats)  # fast reads again, the row still the same
    assert due == []
    now, due = _rounds(watch, now, 0.25, beats)
    assert due == ["a"]


def test_a_round_late_for_want_of_cpu_still_judges_and_a_worker_back_from_a_pause_sees_fresh_beats() -> None:
    watch = StaleWatch("me", AFTER)
    beats = {"me": 0, "hung": 0, "live": 0}
    now, due = _rounds(watch, 0.0, 1.0, beats, moving=("live",))
    assert due == []
    now += 0.75  # a slow round on a loaded host; its read itself was quick
    beats["live"] += 1
    assert watch.observe(now, beats) == ["hung"]
    now += 10.0  # this worker was paused itself: its peers beat meanwhile
    beats["live"] += 50
    assert watch.observe(now, beats) == []


def test_several_stale_peers_are_evicted_side_by_side_and_a_peer_gone_is_forgotten() -> None:
    watch = StaleWatch("me", AFTER)
    beats = {"me": 0, "x": 0, "y": 0}
    now, due = _rounds(watch, 0.0, 1.5, beats)
    assert sorted(due) == ["x", "y"]
    watch.finished("x", now, ok=True)
    del beats["x"]  # left cleanly: its row is deleted
    assert watch.observe(now + TICK, beats) == []
    beats["x"] = 7  # a worker of the same name comes back and hangs at once
    now, due = _rounds(watch, now + TICK, 1.5, beats)
    assert due == ["x"]


def test_the_admin_url_must_be_an_http_url() -> None:
    with pytest.raises(ValueError, match="broker_admin_url"):
        BrokerAdmin("amqp://guest:guest@127.0.0.1:5672/")
    admin = BrokerAdmin("http://user:s3cret-pass@127.0.0.1:15672/")
    assert admin.base == "http://127.0.0.1:15672"
    assert "s3cret" not in repr(admin) and "s3cret" not in admin.base


async def _named(name: str) -> aio_pika.abc.AbstractConnection:
    return await aio_pika.connect(BROKER_URL, client_properties={"connection_name": name})


async def _listed(admin: BrokerAdmin, names: set[str]) -> None:
    """The management API lists a new connection after its next stats round (up to ~2 s)."""
    async with asyncio.timeout(15):
        while not names <= {provided for _, provided in await asyncio.to_thread(admin.connections)}:
            await asyncio.sleep(0.2)


async def test_closing_a_workers_connections_closes_those_and_only_those(broker_admin: str) -> None:
    worker = f"evict-{uuid.uuid4().hex[:8]}"
    other = f"{worker}0"  # a longer id that begins with the same text is another worker
    admin = BrokerAdmin(broker_admin)
    connections = [await _named(name) for name in (*sorted(connection_names(worker)), other)]
    try:
        await _listed(admin, {*connection_names(worker), other})
        assert await asyncio.to_thread(admin.close_named, connection_names(worker), "test: stale heartbeat") == 2
        async with asyncio.timeout(5):
            while not all(c.transport is None or c.transport.connection.is_closed for c in connections[:2]):
                await asyncio.sleep(0.05)
        names = {provided for _, provided in await asyncio.to_thread(admin.connections)}
        assert other in names and not names & connection_names(worker)
        # a second survivor that races for the same peer finds nothing left to close
        assert await asyncio.to_thread(admin.close_named, connection_names(worker), "test") == 0
    finally:
        for connection in connections:
            await connection.close()
        admin.close()


def test_a_refused_login_names_the_status_never_the_password(broker_admin: str) -> None:
    import httpx

    url = httpx.URL(broker_admin).copy_with(password="not-the-password-91")
    admin = BrokerAdmin(str(url))
    try:
        with pytest.raises(AdminError) as refused:
            admin.connections()
        assert "401" in str(refused.value) and "not-the-password-91" not in str(refused.value)
    finally:
        admin.close()
    unreachable = BrokerAdmin("http://guest:pw-that-is-secret@127.0.0.1:1", timeout=1)
    try:
        with pytest.raises(AdminError) as failed:
            unreachable.connections()
        assert "pw-that-is-secret" not in str(failed.value)
    finally:
        unreachable.close()


def test_the_setting_and_the_worker_option_are_checked_and_the_password_is_masked(
        isolated_settings: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from sealbot.config import load_settings, masked_view
    from sealbot.custody.redaction import redact
    from sealbot.domain.errors import InvalidConfig
    from sealbot.services.scaleout import WorkerConfig, _check, broker_admin_url

    assert broker_admin_url(load_settings()) == ""  # unset: no eviction
    monkeypatch.setenv("SEALBOT_BROKER_ADMIN_URL", "amqp://mq:5672/")
    with pytest.raises(InvalidConfig) as refused:
        broker_admin_url(load_settings())
    assert refused.value.field == "broker_admin_url"
    monkeypatch.setenv("SEALBOT_BROKER_ADMIN_URL", "http://sealbot:admin-pass-4729@mq:15672")
    settings = load_settings()
    assert broker_admin_url(settings) == "http://sealbot:admin-pass-4729@mq:15672"
    assert masked_view(settings)["broker_admin_url"] == "***"
    assert "admin-pass-4729" not in redact("GET http://sealbot:admin-pass-4729@mq:15672/api/connections failed")
    for bad in (0.4, 61.0, -1.0):  # under three ticks of 0.2 s, over a minute, negative
        with pytest.raises(InvalidConfig) as bad_option:
            _check(WorkerConfig(evict_after=bad))
        assert bad_option.value.field == "evict_after"
    _check(WorkerConfig(evict_after=0))  # never
    _check(WorkerConfig(evict_after=1.5))


async def _no_venue(_account: object) -> object:
    raise AssertionError("no account runs here")


def test_the_worker_hands_every_heartbeat_reading_to_its_evictor(tmp_path: Path) -> None:
    """The RabbitMQ transport's evictor is told each reading of the presence thread, which
    reads every worker's row (only when someone listens) beside writing its own."""
    import threading
    from datetime import timedelta

    from sealbot.engine.scaleout.partitions import PartitionStore
    from sealbot.engine.scaleout.rabbit import RabbitTransport
    from sealbot.engine.scaleout.worker import Worker, WorkerOptions
    from sealbot.services import inbox
    from sealbot.store import make_session_factory
    from sealbot.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'w.db'}"
    upgrade(url)
    factory = make_session_factory(url)
    options = WorkerOptions("amqp://unused", worker_id="w1", broker_admin_url="http://guest:guest@127.0.0.1:1")
    worker = Worker(factory, _no_venue, inbox.decode, options)  # type: ignore[arg-type]
    transport = worker.transport
    assert isinstance(transport, RabbitTransport) and transport.evictor is not None
    assert worker._peer_listener == transport.evictor.round
    plain = Worker(factory, _no_venue, inbox.decode, WorkerOptions("amqp://unused", worker_id="w2"))  # type: ignore[arg-type]
    assert isinstance(plain.transport, RabbitTransport) and plain.transport.evictor is None
    assert plain._peer_listener is None

    PartitionStore(factory, options.topology.partitions).beat("peer", 3, timedelta(seconds=1))
    readings: list[PeerReading] = []
    worker.watch_peers(readings.append)
    stop = threading.Event()
    stop.set()  # one round, then return
    worker._presence(stop)
    assert len(readings) == 1 and set(readings[0].beats) == {"w1", "peer"} and readings[0].took >= 0
    assert worker.stats.live == 2
    transport.evictor.close()
