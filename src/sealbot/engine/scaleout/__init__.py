"""The scaled-out engine: accounts partitioned over RabbitMQ single-active-consumer
queues, PostgreSQL as the system of record (docs/engine.md, docs/deploy.md).

``partitions`` (the epoch fence and the partition table), ``broker`` (queue topology,
message codec, confirmed publishing), ``worker`` (the process that owns partitions),
``ingest`` (market data over a topic exchange), ``metrics`` (Prometheus).
"""
