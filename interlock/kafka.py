"""Kafka client factory: producers, consumers and admin clients built from the one Settings.

Also the end offset of a partition (``true_end_offsets``): the high watermark on Apache Kafka;
on Tansu, whose ListOffsets is wrong, read from the fetch path (``interlock.tansu``).

And a refused login or an untrusted broker certificate as an error: librdkafka retries those
like any broken connection, so a command would wait out its whole timeout and then report only
"broker transport failure". Admin clients from ``make_admin`` raise :class:`KafkaAccessError`
instead, as soon as :func:`list_topics` sees the cause.
"""

from __future__ import annotations

import time
import uuid
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ClusterMetadata

from contracts.errors import ConfigError
from interlock.settings import Settings

__all__ = [
    "KafkaAccessError",
    "consumer_config",
    "key_partition",
    "list_topics",
    "make_admin",
    "make_consumer",
    "make_producer",
    "produce",
    "producer_config",
    "raise_access_error",
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
            # librdkafka's default, named: co-partitioned topics need every producer to place
            # a key alike, and :func:`key_partition` to know where it went
            "partitioner": "consistent_random",
        }
    )
    conf.update(overrides)
    return conf


def key_partition(key: bytes, partitions: int) -> int:
    """The partition a record keyed ``key`` (not empty) goes to among ``partitions``, as the
    producers of :func:`producer_config` place it (librdkafka's ``consistent_random``: the
    key's CRC-32 modulo the partition count)."""
    return zlib.crc32(key) % partitions


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
    # The settings, unless ``kafka.extra`` names librdkafka's properties themselves.
    conf.setdefault("fetch.wait.max.ms", settings.kafka.fetch_wait_ms)
    conf.setdefault("fetch.min.bytes", settings.kafka.fetch_min_bytes)
    # a refused login or untrusted certificate ends the stage's loop at its next poll
    conf["error_cb"] = raise_access_error
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


class KafkaAccessError(ConfigError):
    """The broker refused our login, or its TLS certificate is not trusted: retrying cannot help."""


_ACCESS_ERRORS = {
    KafkaError._AUTHENTICATION: (
        "Kafka authentication failed",
        "check INTERLOCK_KAFKA__SASL_MECHANISM, __SASL_USERNAME and __SASL_PASSWORD",
    ),
    KafkaError._SSL: (
        "TLS connection to Kafka failed",
        "check that INTERLOCK_KAFKA__SSL_CA_LOCATION holds the CA of the broker's certificate",
    ),
}


def raise_access_error(error: KafkaError) -> None:
    """A librdkafka ``error_cb``: raise KafkaAccessError for a refused login or TLS failure.

    It runs in the client's ``poll``; every other error passes (librdkafka logs it and retries).
    """
    known = _ACCESS_ERRORS.get(error.code())
    if known is not None:
        what, hint = known
        raise KafkaAccessError(f"{what}: {error.str()}; {hint}")


def make_admin(settings: Settings, **overrides: Any) -> AdminClient:
    """An admin client whose access errors :func:`list_topics` raises at once."""
    conf = settings.kafka.librdkafka()
    conf["error_cb"] = raise_access_error
    conf.update(overrides)
    return AdminClient(conf)


def list_topics(admin: AdminClient, timeout: float = 15.0) -> ClusterMetadata:
    """``admin.list_topics``, but failing within a second when access is refused.

    librdkafka hands the cause of a failed connection only to ``error_cb``, which runs in
    ``poll``; so the metadata is asked for in growing steps with a poll in between, where the
    callback of a :func:`make_admin` client raises.

    Raises:
        KafkaAccessError: the broker refused our credentials, or TLS verification failed.
        KafkaException: no metadata within ``timeout`` for another reason (broker down).
    """
    deadline = time.monotonic() + timeout
    step = 0.5
    while True:
        try:
            return admin.list_topics(timeout=max(0.01, min(step, deadline - time.monotonic())))
        except KafkaException:
            admin.poll(0)  # a make_admin client's error_cb raises KafkaAccessError here
            if time.monotonic() >= deadline:
                raise
        step *= 2


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
    *,
    tansu: bool = False,
    consumer: Consumer | None = None,
) -> dict[tuple[str, int], int]:
    """The offset after the last record of each partition (the high watermark).

    Args:
        conf: librdkafka base configuration (bootstrap and security).
        partitions: (topic, partition) pairs.
        timeout: overall time budget in seconds.
        tansu: the broker is Tansu, whose ListOffsets is wrong after batched produces: read
            the end from the fetch path instead (:func:`interlock.tansu.tansu_end_offsets`).
        consumer: a consumer to ask with (kept by a caller that asks often; it is not closed);
            by default one is made for this call.
    """
    parts = list(partitions)
    if not parts:
        return {}
    if tansu:
        from interlock.tansu import tansu_end_offsets

        return tansu_end_offsets(conf, parts, timeout)
    own = consumer is None
    if consumer is None:
        consumer = Consumer(
            {
                **conf,
                "group.id": f"interlock-end-offsets-{uuid.uuid4()}",
                "enable.auto.commit": False,
            }
        )
    deadline = time.monotonic() + timeout
    try:
        return {tp: _high_watermark(consumer, tp, deadline) for tp in parts}
    finally:
        if own:
            consumer.close()


# A partition created a moment ago, or on a restarting broker: asked again, not raised (the
# KafkaError of a ListOffsets answer does not mark these retriable).
_LEADER_MOVING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
    }
)


def _high_watermark(consumer: Consumer, tp: tuple[str, int], deadline: float) -> int:
    """A partition's high watermark, asked again while its leader is moving or not yet known
    (a topic created a moment ago, a broker restarting)."""
    while True:
        left = max(0.5, deadline - time.monotonic())
        try:
            return int(consumer.get_watermark_offsets(TopicPartition(*tp), timeout=left)[1])
        except KafkaException as exc:
            error = exc.args[0]
            moving = error.retriable() or error.code() in _LEADER_MOVING
            if not moving or time.monotonic() >= deadline:
                raise
            time.sleep(0.1)
