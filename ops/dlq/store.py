"""Reading dead-letter and audit topics to their exact end, and what the audit topics say.

Counting must be exact on every broker, so a topic is read until the fetch reports the end of
each partition (librdkafka's partition EOF) at or past the high watermark asked for first,
never only up to a ListOffsets answer (short of the end on Tansu after batched produces).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from contracts.topics import DLQ_PREFIX
from interlock.records import RawRecord
from ops.dlq.model import DeadLetter

__all__ = [
    "AuditState",
    "list_dlq_topics",
    "read_audit",
    "read_dead_letters",
    "read_topic",
    "topic_partitions",
]


def _reader(conf: Mapping[str, Any]) -> Consumer:
    return Consumer(
        {
            **conf,
            "group.id": f"interlock-dlq-reader-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_uncommitted",
            "fetch.wait.max.ms": 50,
        }
    )


def topic_partitions(conf: Mapping[str, Any], topic: str, timeout: float = 10.0) -> list[int]:
    """Partitions of ``topic`` ([] when it does not exist).

    A transient metadata error (a leader being elected, a broker busy) is asked again until
    ``timeout``: read as "no such topic", it made a dead-letter topic look empty.
    """
    consumer = _reader(conf)
    deadline = time.monotonic() + timeout
    try:
        while True:
            meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
            if meta is None:
                return []
            if meta.error is None:
                return sorted(meta.partitions)
            if meta.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return []
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: metadata error {meta.error} for {timeout:.0f}s")
            time.sleep(0.2)
    finally:
        consumer.close()


def list_dlq_topics(conf: Mapping[str, Any], timeout: float = 10.0) -> dict[str, list[int]]:
    """Every ``dlq.*`` topic on the broker, by name, with its partitions (from one answer,
    which the reads then use rather than asking for each topic again)."""
    consumer = _reader(conf)
    try:
        topics = consumer.list_topics(timeout=timeout).topics
    finally:
        consumer.close()
    return {
        name: sorted(meta.partitions)
        for name, meta in sorted(topics.items())
        if name.startswith(DLQ_PREFIX) and meta.error is None and meta.partitions
    }


def read_topic(
    conf: Mapping[str, Any],
    topic: str,
    *,
    timeout: float = 60.0,
    on_record: Callable[[int], None] | None = None,
    partitions: Sequence[int] | None = None,
) -> list[RawRecord]:
    """Every record of ``topic`` from its start to its true end, per partition in order
    (``partitions``: the topic's, when the caller has just asked the broker; else asked here).

    A dead-letter topic must keep its records forever, as the catalog makes it
    (``contracts.topics``): a dead letter keeps its original record's timestamp, so under a
    time retention the broker deletes the letters of old records, and a read finds them gone.

    Raises:
        TimeoutError: the end was not reached within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    parts = list(partitions) if partitions is not None else topic_partitions(conf, topic)
    if not parts:
        return []
    marks = _reader(conf)
    try:
        watermarks = {p: _watermarks(marks, topic, p, timeout) for p in parts}
    finally:
        marks.close()
    highs = {p: high for p, (low, high) in watermarks.items() if high > low}
    if not highs:
        return []
    pending = set(highs)
    records: list[RawRecord] = []
    delivered: dict[int, int] = {}
    consumer = _reader(conf)
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(pending)])
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: end not reached in {timeout:.0f}s")
            for msg in consumer.consume(1000, 0.2):
                partition = msg.partition() or 0
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF and partition in pending:
                        _at_end(consumer, topic, partition, msg.offset(), highs, pending, delivered)
                    continue
                if partition not in pending:
                    continue
                delivered[partition] = (msg.offset() or 0) + 1
                records.append(RawRecord.from_message(msg))
                if on_record is not None:
                    on_record(1)
    finally:
        consumer.close()
    return records


def _at_end(
    consumer: Consumer,
    topic: str,
    partition: int,
    eof_offset: int | None,
    highs: Mapping[int, int],
    pending: set[int],
    delivered: Mapping[int, int],
) -> None:
    """Settle one partition's end-of-partition event.

    An end short of the high watermark asked for first is not the end (seen on Apache Kafka
    right after assignment); on Tansu, whose high watermark can be short of the true end, the
    fetch's end is the true one. An end while the records this reader was handed stop short of
    it means fetched records never reached the application (seen under load on Apache Kafka: a
    partition, once a whole topic, read as empty), so the partition is read again from the next
    record it was not handed, until the two agree or the read's timeout. (Dead-letter and audit
    topics are written without transactions: no control record can hold the two apart.) A
    partition whose every record the broker deleted (retention, a purge) after its watermarks
    were read has nothing left to hand: it is at its end once its low watermark has reached the
    end, rather than read again until the timeout.
    """
    end = eof_offset or 0
    if end < highs.get(partition, 0):
        return
    handed = delivered.get(partition)
    if handed is not None and handed >= end:
        pending.discard(partition)
        return
    if handed is None:
        low, _high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=10.0, cached=False
        )
        if low >= end:
            pending.discard(partition)
            return
    consumer.seek(TopicPartition(topic, partition, OFFSET_BEGINNING if handed is None else handed))


def _watermarks(consumer: Consumer, topic: str, partition: int, timeout: float) -> tuple[int, int]:
    """(low, high) of one partition, asked again while the answer is not an offset."""
    deadline = time.monotonic() + timeout
    while True:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=timeout
        )
        if low >= 0 and high >= 0:
            return int(low), int(high)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic}[{partition}]: no watermarks in {timeout:.0f}s")
        time.sleep(0.2)


def read_dead_letters(
    conf: Mapping[str, Any], topic: str, partitions: Sequence[int] | None = None
) -> list[DeadLetter]:
    """Every dead letter of ``topic`` (a ``dlq.*`` topic), parsed."""
    return [DeadLetter.parse(r) for r in read_topic(conf, topic, partitions=partitions)]


@dataclass
class AuditState:
    """What the audit topics say: replays per dead letter, and purged dead letters."""

    replayed: dict[str, int] = field(default_factory=dict)
    purged: set[str] = field(default_factory=set)


def read_audit(conf: Mapping[str, Any], replays_topic: str, purges_topic: str) -> AuditState:
    """Replay counts by dead-letter coordinate (dry runs write nothing, so all count) and the
    purged coordinates (a record with value ``null`` un-purges, as compaction would keep)."""
    state = AuditState()
    for record in read_topic(conf, replays_topic):
        if record.key is not None and _is_real_replay(record.value):
            coord = record.key.decode("utf-8", errors="replace")
            state.replayed[coord] = state.replayed.get(coord, 0) + 1
    for record in read_topic(conf, purges_topic):
        if record.key is None:
            continue
        coord = record.key.decode("utf-8", errors="replace")
        if record.value is None:
            state.purged.discard(coord)
        else:
            state.purged.add(coord)
    return state


def _is_real_replay(value: bytes | None) -> bool:
    if value is None:
        return False
    try:
        return not bool(json.loads(value).get("dry_run", False))
    except (ValueError, AttributeError):
        return False
