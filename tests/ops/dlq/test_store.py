"""Reading a topic to its end when the broker deletes records under the read, on a real broker."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import OFFSET_BEGINNING, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from interlock.settings import Settings
from ops.dlq.store import _at_end, _reader
from tests.conftest import suite_broker_kind

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(suite_broker_kind() == "tansu", reason="Tansu has no DeleteRecords"),
]


def _three_records(
    make_topic: Callable[..., str], make_producer: Callable[..., Producer], prefix: str
) -> str:
    """A one-partition topic holding the records 0, 1 and 2."""
    topic = make_topic(1, prefix=prefix)
    producer = make_producer()
    for n in range(3):
        producer.produce(topic, value=b"%d" % n, partition=0)
    assert producer.flush(10) == 0
    return topic


def test_a_partition_emptied_after_its_watermarks_were_read_is_at_its_end(
    settings: Settings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Producer],
    admin: AdminClient,
) -> None:
    topic = _three_records(make_topic, make_producer, "read.deleted")
    for future in admin.delete_records([TopicPartition(topic, 0, 3)]).values():
        future.result(10)  # every record gone, as retention would have it
    consumer = _reader(settings.kafka.librdkafka())
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])  # as read_topic does
        pending = {0}
        # the read had seen watermarks (0, 3); the fetch then reached the end at 3 with no
        # record handed: the records are gone, not lost on the way
        _at_end(consumer, topic, 0, 3, {0: 3}, pending, {})
    finally:
        consumer.close()
    assert pending == set()


def test_a_partition_that_still_holds_records_nobody_was_handed_is_read_again(
    settings: Settings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Producer],
) -> None:
    topic = _three_records(make_topic, make_producer, "read.kept")
    consumer = _reader(settings.kafka.librdkafka())
    try:
        consumer.assign([TopicPartition(topic, 0, 3)])
        pending = {0}
        _at_end(consumer, topic, 0, 3, {0: 3}, pending, {})
        assert pending == {0}  # an end with nothing handed while records remain: read again
        values = [m.value() for m in consumer.consume(10, 10.0) if m.error() is None]
    finally:
        consumer.close()
    assert values == [b"0", b"1", b"2"]  # sought back to the start
