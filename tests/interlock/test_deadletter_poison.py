"""Poison pills land in the dead-letter topic, bytes intact, while the partition goes on.

Four kinds on one partition, each followed by a good event: undecodable bytes, an unknown
schema fingerprint, a well-formed quote with invalid business data, and a quote that makes the
processing raise. The handler decodes with the contracts serde, like every real stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from contracts import QuoteEvent, ValidationError, decode, encode
from interlock.kafka import make_consumer, make_producer
from interlock.records import RawRecord
from interlock.retry import FailureRouter
from interlock.settings import Settings
from interlock.stage import StageLoop
from tests.conftest import consume_n
from tests.contracts.samples import sample_events

pytestmark = pytest.mark.integration

DLQ_NAMES = {
    "reason",
    "error.class",
    "error.type",
    "error.message",
    "error.stacktrace",
    "original.topic",
    "original.partition",
    "original.offset",
    "original.timestamp",
    "attempt",
    "processor",
    "failed_at",
}


def quote(quote_id: str, total: str = "100.00") -> bytes:
    event = sample_events()["quote"]
    assert isinstance(event, QuoteEvent)
    payload = event.payload.model_copy(update={"quote_id": quote_id, "total": Decimal(total)})
    return encode(event.model_copy(update={"event_id": f"ev-{quote_id}", "payload": payload}))


def handle_quote(processed: list[str]) -> Callable[[RawRecord], None]:
    """Decode (contracts serde), validate business data, process."""

    def handle(record: RawRecord) -> None:
        event = decode(record.value or b"")
        assert isinstance(event, QuoteEvent)
        if event.payload.total is not None and event.payload.total < 0:
            raise ValidationError(f"quote {event.payload.quote_id}: negative total")
        if event.payload.quote_id == "q-crash":
            raise RuntimeError("processor bug: division by zero in pricing")
        processed.append(event.payload.quote_id)

    return handle


def test_each_poison_pill_is_dead_lettered_byte_for_byte_and_the_partition_goes_on(
    settings: Settings, make_topic: Callable[..., str], make_group: Callable[[], str]
) -> None:
    topic = make_topic(1, prefix="canonical.test")
    dlq = make_topic(1, name=f"dlq.{topic}")
    unknown_schema = b"\xc3\x01" + bytes(range(8)) + b"\x02body"
    poison = {
        "DECODE_FAILED": b"{not avro at all",
        "SCHEMA_UNKNOWN": unknown_schema,
        "VALIDATION_FAILED": quote("q-bad", "-5.00"),
        "PROCESSING_FAILED": quote("q-crash"),
    }
    sent: list[tuple[bytes, bytes, list[tuple[str, bytes]], int]] = []
    producer = make_producer(settings)
    for i, value in enumerate(poison.values()):
        good = quote(f"q-good-{i}")
        for key, val in ((f"bad-{i}".encode(), value), (f"good-{i}".encode(), good)):
            headers = [("traceparent", f"00-{i}".encode()), ("dup", b"\x00\xff"), ("dup", b"2")]
            ts = 1_700_000_000_000 + len(sent)
            producer.produce(topic, key=key, value=val, headers=headers, timestamp=ts)
            sent.append((key, val, headers, ts))
    producer.flush(10)

    processed: list[str] = []
    router = FailureRouter(producer, "quote-test", [1, 10, 60])
    consumer = make_consumer(settings, make_group())
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    loop = StageLoop(consumer, handle_quote(processed), router, poll_timeout=0.2)
    deadline = time.monotonic() + 20
    while loop.stats.handled < len(sent) and time.monotonic() < deadline:
        loop.run_once()
    consumer.close()

    assert processed == [f"q-good-{i}" for i in range(4)]
    assert loop.stats.dead_lettered == 4
    reader = make_consumer(settings, make_group(), **{"enable.auto.offset.store": True})
    reader.assign([TopicPartition(dlq, 0, OFFSET_BEGINNING)])
    letters = consume_n(reader, 4, 15)
    reader.close()
    assert len(letters) == 4
    for n, (reason, msg) in enumerate(zip(poison, letters, strict=True)):
        key, value, headers, ts = sent[2 * n]
        assert msg.key() == key  # type: ignore[attr-defined]
        assert msg.value() == value  # type: ignore[attr-defined]
        assert msg.timestamp()[1] == ts  # type: ignore[attr-defined]
        got = msg.headers()  # type: ignore[attr-defined]
        assert got[: len(headers)] == headers
        added = {k.removeprefix("interlock.dlq."): v.decode() for k, v in got[len(headers) :]}
        assert set(added) == DLQ_NAMES
        assert added["reason"] == reason
        assert added["error.class"] == "permanent"
        assert added["original.topic"] == topic
        assert added["original.partition"] == "0"
        assert added["original.offset"] == str(2 * n)
        assert added["original.timestamp"] == str(ts)
        assert added["attempt"] == "1"
        assert added["processor"] == "quote-test"
        assert "Traceback" in added["error.stacktrace"]
    types = [dict(m.headers())["interlock.dlq.error.type"] for m in letters]  # type: ignore[attr-defined]
    assert types == [b"DecodeError", b"SchemaUnknownError", b"ValidationError", b"RuntimeError"]
