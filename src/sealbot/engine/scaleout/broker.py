"""RabbitMQ topology and messages of the scaled-out engine.

Names derive from one ``prefix`` (default ``sealbot``) so several instances, or test
runs, share a broker without meeting:

* ``<prefix>.accounts`` — a direct exchange; partition ``n`` is routed with key ``n``;
* ``<prefix>.p.<n>`` — partition ``n``'s queue: durable, quorum, single active consumer.

Every worker consumes every partition queue; RabbitMQ delivers a queue's messages to one
consumer at a time and hands the queue to the next consumer when that one cancels or its
connection dies, so the broker (not sealbot) decides which worker owns which partition.

A message is JSON with a ``type`` header: ``signal`` (an event for one account's bot;
``message_id`` de-duplicates it), ``tick`` (no payload; it only tells a consumer that
has just become active that it owns the partition now) or ``token`` (no payload; the
partition's owner keeps it unacknowledged, so when the owner's channel or connection
dies the broker hands it back and delivers it at once to the next consumer: that is how
the new owner learns it became active, without waiting for a tick).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from pamqp.common import FieldTable

TICK = "tick"
TOKEN = "token"
SIGNAL = "signal"


@dataclass(frozen=True, slots=True)
class Topology:
    prefix: str = "sealbot"
    partitions: int = 128

    @property
    def exchange(self) -> str:
        return f"{self.prefix}.accounts"

    def queue(self, partition: int) -> str:
        return f"{self.prefix}.p.{partition}"

    def queues(self) -> list[str]:
        return [self.queue(p) for p in range(self.partitions)]


QUEUE_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum", "x-single-active-consumer": True}


async def declare(channel: AbstractChannel, topology: Topology) -> AbstractExchange:
    """Declare the exchange and every partition queue (idempotent)."""
    exchange = await channel.declare_exchange(topology.exchange, aio_pika.ExchangeType.DIRECT, durable=True)
    for p in range(topology.partitions):
        queue = await channel.declare_queue(topology.queue(p), durable=True, arguments=QUEUE_ARGUMENTS)
        await queue.bind(exchange, routing_key=str(p))
    return exchange


async def partition_queue(channel: AbstractChannel, topology: Topology, partition: int) -> AbstractQueue:
    return await channel.declare_queue(topology.queue(partition), durable=True, arguments=QUEUE_ARGUMENTS)


async def delete(channel: AbstractChannel, topology: Topology) -> None:
    """Remove the topology (tests; tearing an instance down)."""
    for name in topology.queues():
        await channel.queue_delete(name)
    await channel.exchange_delete(topology.exchange)


USER_REQUESTS = frozenset({"close_at_market", "add_funds"})
"""Kinds a user asked for by hand: one that finds no running bot is told to its user, not
only recorded (a webhook signal for a stopped bot is simply not acted on)."""


@dataclass(frozen=True, slots=True)
class Signal:
    """An event for one account (and bot), as it travels through the broker."""

    message_id: str
    account: str
    bot: str | None
    kind: str  # inbox kind: signal / close_at_market / add_funds, or "note" (no bot event)
    payload: dict[str, Any]
    seq: int | None = None
    sent_at: datetime | None = None

    def body(self) -> bytes:
        return json.dumps({"account": self.account, "bot": self.bot, "kind": self.kind, "payload": self.payload,
                           "seq": self.seq, "sent_at": self.sent_at.isoformat() if self.sent_at else None},
                          separators=(",", ":")).encode()

    @classmethod
    def parse(cls, message_id: str, body: bytes) -> Signal:
        data = json.loads(body)
        sent = data.get("sent_at")
        return cls(message_id, str(data["account"]), data.get("bot"), str(data["kind"]), data.get("payload") or {},
                   data.get("seq"), datetime.fromisoformat(sent) if sent else None)


def signal_message(signal: Signal) -> aio_pika.Message:
    return aio_pika.Message(signal.body(), message_id=signal.message_id, type=SIGNAL,
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT, content_type="application/json",
                            timestamp=datetime.now(UTC))


def tick_message(ttl_seconds: float) -> aio_pika.Message:
    # Ticks expire: a partition no consumer takes must not pile them up.
    return aio_pika.Message(b"", type=TICK, expiration=ttl_seconds, delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT)


def token_message() -> aio_pika.Message:
    # No expiry: a token waits in its queue until a consumer takes it (never piles up:
    # the owner acknowledges any token beyond the one it holds).
    return aio_pika.Message(b"", type=TOKEN, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)


class Publisher:
    """Publishes signals with publisher confirms: ``publish`` returns once the broker
    has the message on its quorum queue (durably), or raises."""

    def __init__(self, url: str, topology: Topology, *, name: str | None = None) -> None:
        self.url, self.topology, self.name = url, topology, name  # name: the connection's, as the broker shows it
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._exchange: AbstractExchange | None = None

    async def open(self, *, declare_topology: bool = True) -> None:
        properties: FieldTable | None = {"connection_name": self.name} if self.name else None
        self._connection = await aio_pika.connect(self.url, client_properties=properties)
        channel = await self._connection.channel(publisher_confirms=True)
        if declare_topology:
            self._exchange = await declare(channel, self.topology)
        else:
            self._exchange = await channel.get_exchange(self.topology.exchange)

    async def publish(self, partition: int, signal: Signal) -> None:
        if self._exchange is None:
            raise RuntimeError("publisher is not open")
        await self._exchange.publish(signal_message(signal), routing_key=str(partition), mandatory=True)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection, self._exchange = None, None
