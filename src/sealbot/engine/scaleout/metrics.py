"""Prometheus metrics of one worker (served on ``sealbot worker --metrics-port``).

Each worker has its own registry, so several workers in one test process never clash;
the ``worker`` label names the process in a scrape of many."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class WorkerMetrics:
    def __init__(self, worker: str) -> None:
        self.registry = CollectorRegistry()
        labels = ["worker"]
        self.partitions_owned = Gauge("sealbot_partitions_owned", "Partitions this worker owns", labels,
                                      registry=self.registry).labels(worker)
        self.queue_lag = Gauge("sealbot_queue_lag_messages", "Messages waiting in the partitions this worker owns",
                               labels, registry=self.registry).labels(worker)
        self.signal_to_commit = Histogram(
            "sealbot_signal_to_commit_seconds", "From publish to the committed effect", labels,
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry).labels(worker)
        self.signal_to_worker = Histogram(
            "sealbot_signal_to_worker_seconds", "From publish to the delivery at the owning worker", labels,
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry).labels(worker)
        self.applied = Counter("sealbot_messages_applied", "Messages applied and committed", labels,
                               registry=self.registry).labels(worker)
        self.duplicates = Counter("sealbot_messages_duplicate", "Redelivered messages found in the ledger", labels,
                                  registry=self.registry).labels(worker)
        self.reconciliations = Counter("sealbot_reconciliations", "Accounts reconciled on taking a partition",
                                       labels, registry=self.registry).labels(worker)
        self.fenced_writes = Counter("sealbot_fenced_writes", "Writes refused by the epoch fence", labels,
                                     registry=self.registry).labels(worker)
        self.takeovers = Counter("sealbot_partition_claims", "Partitions claimed (epoch raised)", labels,
                                 registry=self.registry).labels(worker)
        self.releases = Counter("sealbot_partition_releases", "Partitions given up (fair share, fence, stop)",
                                labels, registry=self.registry).labels(worker)
        self.evictions = Counter("sealbot_peer_evictions",
                                 "Hung peers whose broker connections this worker closed (stale heartbeat)",
                                 labels, registry=self.registry).labels(worker)

        self.market_waiting = Gauge(
            "sealbot_market_streams_waiting",
            "Market streams (venue, pair) bound for ingested data that none came for lately (--market-data ingest)",
            labels, registry=self.registry).labels(worker)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)
