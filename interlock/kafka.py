"""Kafka client factory: producers, consumers and admin clients built from the one Settings.

Also the true end offset of a partition. Some Kafka-protocol brokers (the embedded Tansu among
them) answer ListOffsets "latest" with the base offset of the last record batch + 1 instead of
the last offset + 1, while Fetch reports the right high watermark. ``true_end_offsets`` reads
from the reported end - 1 until the fetch says end of partition: exact on both kinds of broker.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from interlock.settings import Settings

__all__ = [
    "consumer_config",
    "make_admin",
    "make_consumer",
    "make_producer",
    "produce",
    "producer_config",
    "subscribe",
    "true_end_offsets",
]


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """A durable, batching producer: acks=all, idempotent, ``kafka.linger_ms`` of linger."""
    conf = settings.kafka.librdkafka()
    conf.update(
        {
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": settings.kafka.linger_ms,
            "batch.num.messages": 10000,
            "compression.type": "none",
        }
    )
    conf.update(overrides)
    return conf


def consumer_config(settings: Settings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """A consumer that commits only what the caller stored after processing."""
    conf = settings.kafka.librdkafka()
    conf.update(
        {
            "group.id": group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "enable.auto.offset.store": False,
            "session.timeout.ms": int(settings.processors.session_timeout_s * 1000),
            "heartbeat.interval.ms": int(settings.processors.heartbeat_interval_s * 1000),
            "isolation.level": "read_committed",
        }
    )
    # The setting, unless ``kafka.extra`` names librdkafka's property itself.
    conf.setdefault("fetch.wait.max.ms", settings.kafka.fetch_wait_max_ms)
    conf.update(overrides)
    return conf


def make_producer(settings: Settings, **overrides: Any) -> Producer:
    return Producer(producer_config(settings, **overrides))


def make_consumer(settings: Settings, group_id: str, **overrides: Any) -> Consumer:
    return Consumer(consumer_config(settings, group_id, **overrides))


def subscribe(consumer: Any, topics: Iterable[str], gauge: Any = None) -> None:
    """Subscribe ``consumer`` to ``topics``; ``gauge`` (a metric child) follows its assignment.

    The gauge is 0 until the group is joined and partitions are assigned, so a supervisor, a
    readiness check or a dashboard can tell a member that consumes from one still joining.
    Assignments and revocations are applied as sets: right for eager and cooperative protocols.
    """
    held: set[tuple[str, int]] = set()

    def on_assign(_consumer: Any, partitions: list[TopicPartition]) -> None:
        held.update((p.topic, p.partition) for p in partitions)
        if gauge is not None:
            gauge.set(len(held))

    def on_revoke(_consumer: Any, partitions: list[TopicPartition]) -> None:
        held.difference_update((p.topic, p.partition) for p in partitions)
        if gauge is not None:
            gauge.set(len(held))

    consumer.subscribe(list(topics), on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)


def make_admin(settings: Settings, **overrides: Any) -> AdminClient:
    conf = settings.kafka.librdkafka()
    conf.update(overrides)
    return AdminClient(conf)


def produce(producer: Any, topic: str, *args: Any, timeout: float = 30.0, **kwargs: Any) -> None:
    """``producer.produce``, waiting for room when the local queue is full instead of failing.

    librdkafka raises BufferError when its queue is full; serving delivery reports (poll) makes
    room. Raises BufferError only if there is still no room after ``timeout`` seconds.
    """
    try:
        producer.produce(topic, *args, **kwargs)
        return
    except BufferError:
        deadline = time.monotonic() + timeout
    while True:
        producer.poll(0.1)
        try:
            producer.produce(topic, *args, **kwargs)
            return
        except BufferError:
            if time.monotonic() >= deadline:
                raise


def true_end_offsets(
    conf: Mapping[str, Any],
    partitions: Iterable[tuple[str, int]],
    timeout: float = 10.0,
) -> dict[tuple[str, int], int]:
    """The offset after the last record of each partition, exact even where ListOffsets is not.

    Args:
        conf: librdkafka base configuration (bootstrap and security).
        partitions: (topic, partition) pairs.
        timeout: overall time budget in seconds.
    """
    parts = list(partitions)
    if not parts:
        return {}
    consumer = Consumer(
        {
            **conf,
            "group.id": f"interlock-end-offsets-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_uncommitted",
            "fetch.wait.max.ms": 10,
        }
    )
    try:
        ends: dict[tuple[str, int], int] = {}
        assign: list[TopicPartition] = []
        for topic, partition in parts:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout
            )
            if high <= low:
                ends[(topic, partition)] = high
            else:
                assign.append(TopicPartition(topic, partition, high - 1))
                ends[(topic, partition)] = high
        pending = {(tp.topic, tp.partition) for tp in assign}
        if assign:
            consumer.assign(assign)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            key = (msg.topic() or "", msg.partition() or 0)
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    ends[key] = max(ends.get(key, 0), int(msg.offset() or 0))
                    pending.discard(key)
                continue
            ends[key] = max(ends.get(key, 0), int(msg.offset() or 0) + 1)
        return ends
    finally:
        consumer.close()
