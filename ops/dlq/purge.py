"""Purge: Kafka cannot delete one record, so purged dead letters are marked, or the topic truncated.

- With a filter: each matching dead letter gets a record on the compacted ``audit.dlq-purges``
  topic (key ``dlq topic/partition/offset``, JSON value); ``list``, ``show``, ``stats`` and
  ``replay`` hide it from then on. The bytes stay in the dead-letter topic until its retention.
- Without a filter: ``AdminClient.delete_records`` up to the end of every partition, where the
  broker supports it (Apache Kafka does; the embedded Tansu broker does not), else marking as
  above.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from confluent_kafka import TopicPartition

from interlock.kafka import produce
from ops.dlq.delivery import DeliveryErrors
from ops.dlq.model import DeadLetter

__all__ = ["mark_purged", "purge_value", "truncate"]


def purge_value(letter: DeadLetter, purge_id: str, at: datetime) -> bytes:
    """The JSON purge mark of one dead letter."""
    rec = letter.record
    return json.dumps(
        {
            "purge_id": purge_id,
            "dlq_topic": rec.topic,
            "dlq_partition": rec.partition,
            "dlq_offset": rec.offset,
            "reason": letter.reason,
            "at": at.isoformat(),
        },
        sort_keys=True,
    ).encode()


def mark_purged(
    producer: Any,
    letters: Sequence[DeadLetter],
    *,
    purge_topic: str,
    purge_id: str,
    at: datetime,
    on_marked: Callable[[DeadLetter], None] | None = None,
    flush_timeout: float = 60.0,
) -> list[str]:
    """Write a purge mark per dead letter; returns delivery errors (empty: all acknowledged)."""
    delivered = DeliveryErrors()
    for letter in letters:
        kwargs: dict[str, Any] = {
            "key": letter.coordinate.encode(),
            "value": purge_value(letter, purge_id, at),
            "on_delivery": delivered,
        }
        produce(producer, purge_topic, **kwargs)
        if on_marked is not None:
            on_marked(letter)
    return delivered.flush(producer, flush_timeout, "purge mark(s)")


def truncate(
    admin: Any, topic: str, ends: Mapping[tuple[str, int], int], timeout: float = 10.0
) -> bool:
    """Delete every record of ``topic`` below ``ends``; False when the broker refuses."""
    offsets = [TopicPartition(t, p, end) for (t, p), end in ends.items() if t == topic and end > 0]
    if not offsets:
        return True
    try:
        futures = admin.delete_records(offsets, request_timeout=timeout)
        for future in futures.values():
            future.result(timeout=timeout)
    except Exception:
        return False
    return True
