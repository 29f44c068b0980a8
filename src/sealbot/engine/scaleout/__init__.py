"""The scaled-out engine: accounts partitioned over RabbitMQ single-active-consumer
queues, PostgreSQL as the system of record (docs/engine.md, docs/deploy.md); and, with
the same worker code, the embedded engine.

``partitions`` (the epoch fence and the partition table), ``broker`` (queue topology,
message codec, confirmed publishing), ``worker`` (the partition logic: claims, accounts,
fenced and de-duplicated messages, fair share), ``transport`` (the seam between the
worker and what carries its messages), ``rabbit`` (the RabbitMQ transport of
``sealbot worker``), ``local`` (the in-process transport of the embedded engine),
``ingest`` (market data over a topic exchange), ``metrics`` (Prometheus).
"""
