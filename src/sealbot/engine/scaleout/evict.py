"""Eviction of a hung peer: its broker connections closed through RabbitMQ's management API.

A worker that is paused (SIGSTOP, a hung VM, a stalled host) sends nothing, but its
connection stays open until RabbitMQ misses its AMQP heartbeats: two to three heartbeat
intervals (1 s each, the shortest AMQP expresses), so 2-3 s. Until then its partitions,
and the place it holds in every partition queue's line of waiting consumers, are stuck.

Every worker writes its heartbeat row to the database every tick (0.2 s) and reads its
peers' rows in the same round. A peer whose heartbeat has not moved for ``evict_after``
seconds is asked to leave: its connections (named with its worker id, see
``rabbit.connection_names``) are closed with ``DELETE /api/connections/{name}``. RabbitMQ
then does what it does for a dead worker: single-active-consumer hands each partition,
with its unacknowledged token, to the next consumer at once. If the peer wakes up, the
epoch fence refuses its stale writes and it steps down, as after the broker dropped it;
if it was merely slow, it loses its partitions and queues again (harmless: whatever it
had not committed comes back to the next owner and is applied once).

The staleness is judged on this worker's own monotonic clock: a peer is stale when the
value of its heartbeat has not changed over ``evict_after`` seconds of this worker's
rounds, so no two hosts' clocks are compared. A round whose database work was slow
(the database stalled, holding every worker's heartbeat back alike) restarts every peer's
count (``StaleWatch``). A worker's heartbeat row is written by a thread of its own on a
database connection of its own (``worker.Worker._presence``), so neither a busy event loop
nor claims waiting for locks hold it back: only a stopped process does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Hashable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from sealbot.engine.scaleout.metrics import WorkerMetrics

log = logging.getLogger(__name__)

DEFAULT_EVICT_AFTER = 1.2
"""Seconds a peer's heartbeat may stand still before it is evicted. Six ticks of 0.2 s:
far above a live worker's heartbeat period even on a loaded host (its beats come every
0.2-0.35 s under a CPU hog: the SIGKILL takeover, which needs the same rounds, measured
at most 348 ms), and well under the 2-3 s RabbitMQ needs to drop the connection itself,
so a hung peer's partitions move in about 1.5 s instead of 2-3 s. A live worker evicted
by mistake only loses its partitions for a moment (the fence keeps every signal once)."""


@dataclass(frozen=True)
class PeerReading:
    """Every worker's heartbeat as one heartbeat round read it (worker -> heartbeat), when
    the read ended (``time.monotonic()``) and how long the round's database work took."""

    beats: Mapping[str, Hashable]
    at: float
    took: float


@dataclass
class _Seen:
    beat: Hashable  # the peer's heartbeat as last read
    since: float  # this worker's monotonic time when that value was first read
    done: bool = False  # an eviction for this value finished (closed, or nothing to close)
    retry_at: float = 0.0  # after a failed attempt: not before this time


class StaleWatch:
    """Which peers to evict, from successive reads of every worker's heartbeat (no I/O).

    ``observe`` takes the heartbeats read in one round and returns the peers due now:
    stale for ``evict_after`` seconds of this worker's rounds, none of them this worker,
    none with an eviction under way (several survivors may race for the same peer; each
    attempts it once: the broker closes the connection for the first and tells the others
    it is gone). ``finished`` ends an attempt; a failed one (the management API did not
    answer) is tried again after ``retry_after`` seconds, a done one not again until the
    peer beats and goes stale anew."""

    def __init__(self, me: str, evict_after: float, *, retry_after: float = 5.0) -> None:
        if evict_after <= 0:
            raise ValueError("evict_after: must be above 0 seconds")
        self.me, self.evict_after, self.retry_after = me, evict_after, retry_after
        self._seen: dict[str, _Seen] = {}
        self._busy: set[str] = set()
        # the longest a peer's heartbeat stood still before it moved again, evicted peers
        # aside: the margin a live worker keeps below ``evict_after`` (in the stats file)
        self.longest_still = 0.0

    def observe(self, now: float, beats: Mapping[str, Hashable], *, took: float = 0.0) -> list[str]:
        """``beats`` read at ``now``; ``took``: how long this round's database work took."""
        # A slow read means a slow database: the peers' writes may have waited for the same
        # reason (a stall that holds every worker back), so what stood still until now
        # counts for nothing. (A round that is late for want of CPU, or after this worker
        # was paused itself, needs no such care: the peers beat meanwhile, or they did not.)
        fast = took <= self.evict_after / 2
        if not fast:
            for watched in self._seen.values():
                watched.since = now
        due: list[str] = []
        for peer, beat in beats.items():
            if peer == self.me:
                continue
            seen = self._seen.get(peer)
            if seen is None or seen.beat != beat:
                if seen is not None and not seen.done and peer not in self._busy and fast:
                    self.longest_still = max(self.longest_still, now - seen.since)
                self._seen[peer] = _Seen(beat, now)
                continue
            if (fast and now - seen.since >= self.evict_after and not seen.done and now >= seen.retry_at
                    and peer not in self._busy):
                self._busy.add(peer)
                due.append(peer)
        for gone in self._seen.keys() - beats.keys():  # left cleanly (their row is deleted)
            del self._seen[gone]
        return due

    def finished(self, peer: str, now: float, *, ok: bool) -> None:
        self._busy.discard(peer)
        seen = self._seen.get(peer)
        if seen is None:
            return
        if ok:
            seen.done = True
        else:
            seen.retry_at = now + self.retry_after

    @property
    def busy(self) -> frozenset[str]:
        return frozenset(self._busy)


class AdminError(Exception):
    """The broker's management API refused or failed a request (no credentials in the text)."""


class BrokerAdmin:
    """The few calls of RabbitMQ's management HTTP API that eviction needs (blocking: they
    run on the eviction's own threads, never on the event loop).

    ``url`` is the API's base (``http://user:password@host:15672``, the management plugin's
    port). The credentials go into the Authorization header only: they are not kept in
    the base URL, so they appear in no error text, log line or repr."""

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise ValueError("broker_admin_url: not a URL") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("broker_admin_url: must be an http(s) URL of the management API, "
                             "e.g. http://user:password@host:15672")
        self._auth = httpx.BasicAuth(parsed.username, parsed.password) if parsed.username else None
        base = parsed.copy_with(username=None, password=None, query=None, fragment=None)
        self.base = str(base).rstrip("/")
        self.timeout = timeout
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BrokerAdmin({self.base!r})"

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(auth=self._auth, timeout=self.timeout)
            return self._client

    def connections(self) -> list[tuple[str, str]]:
        """(broker's connection name, client-provided name) of every connection visible."""
        data = self._request("GET", "/api/connections", params={"columns": "name,user_provided_name"})
        if not isinstance(data, list):
            raise AdminError("GET /api/connections: not a list")
        return [(str(c["name"]), str(c.get("user_provided_name") or "")) for c in data
                if isinstance(c, dict) and "name" in c]

    def close_named(self, names: Collection[str], reason: str) -> int:
        """Close every connection whose client-provided name is one of ``names``; how many
        were closed (0: none open, or another worker closed them first)."""
        closed = 0
        for name, provided in self.connections():
            if provided in names and self._request(
                    "DELETE", f"/api/connections/{quote(name, safe='')}", headers={"X-Reason": reason},
                    missing_ok=True) is not None:
                closed += 1
        return closed

    def _request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None, missing_ok: bool = False) -> object:
        try:
            response = self._http().request(method, self.base + path, params=params, headers=headers)
        except httpx.HTTPError as exc:  # its text names the URL, which holds no credentials
            raise AdminError(f"{method} {path}: {type(exc).__name__}") from None
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code >= 300:
            raise AdminError(f"{method} {path}: HTTP {response.status_code}")
        return response.json() if response.content else True

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class Evictor:
    """Runs ``StaleWatch``'s decisions: each peer due is evicted on a thread of the
    evictor's own (its connections, named by ``names_of``, closed through ``BrokerAdmin``).

    ``round`` is called by the thread that reads the heartbeats (``worker.Worker._presence``),
    so from reading a hung peer's row to closing its connections nothing waits for the
    event loop, which on a loaded host can be busy for a second with claims and releases."""

    def __init__(self, me: str, admin: BrokerAdmin, evict_after: float,
                 names_of: Callable[[str], Collection[str]],
                 metrics: WorkerMetrics | None = None, *, parallel: int = 2) -> None:
        self.me, self.admin, self.metrics = me, admin, metrics
        self.watch = StaleWatch(me, evict_after)
        self._names_of = names_of
        self._lock = threading.Lock()  # the watch and the counter, from the reader and the eviction threads
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="evict")
        self._closed = False
        self.evicted = 0  # peers whose connections this worker closed

    def round(self, reading: PeerReading) -> None:
        """One heartbeat round's reading: start the evictions now due (any thread)."""
        with self._lock:
            if self._closed:
                return
            due = self.watch.observe(reading.at, reading.beats, took=reading.took)
            for peer in due:
                self._pool.submit(self._evict, peer)

    def _evict(self, peer: str) -> None:
        ok = False
        try:
            reason = f"sealbot worker {self.me}: heartbeat of {peer} stale".encode("ascii", "replace").decode()
            closed = self.admin.close_named(self._names_of(peer), reason)  # (a header: ASCII only)
            ok = True
            if closed:
                with self._lock:
                    self.evicted += 1
                if self.metrics is not None:
                    self.metrics.evictions.inc()
                log.warning("worker %s: evicted %s (heartbeat still for %.1f s): %s broker connection(s) closed",
                            self.me, peer, self.watch.evict_after, closed)
            else:
                log.info("worker %s: %s is stale but has no broker connection left", self.me, peer)
        except AdminError as exc:
            log.warning("worker %s: eviction of %s failed (%s); retrying later", self.me, peer, exc)
        finally:
            with self._lock:
                self.watch.finished(peer, time.monotonic(), ok=ok)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.admin.close()
