"""The CDC stage on the one stage loop, without a broker: what its batches count and when their
offsets are stored (the rule itself is pinned in tests/interlock/test_batchloop.py)."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import pytest
from confluent_kafka import KafkaException
from prometheus_client import CollectorRegistry

from connectors.cdc import CdcMapper, EnvelopeDecoder, load_mapping_dir
from connectors.cdc.consumer import CdcStage
from contracts.models import EVENT_MODELS
from contracts.serde import make_serializer
from interlock.deadletter import DeadLetterWriter
from interlock.instruments import Instruments
from tests.connectors.cdc.conftest import CUSTOMER, debezium

pytestmark = pytest.mark.unit

TOPIC = "raw.erp.customers"


class Message:
    """The part of ``confluent_kafka.Message`` the stage reads."""

    def __init__(self, offset: int, value: bytes) -> None:
        self._offset = offset
        self._value = value

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes:
        return b"k"

    def error(self) -> None:
        return None

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000)


class Consumer:
    """Hands out one batch; records the offsets stored."""

    def __init__(self, messages: list[Message]) -> None:
        self.batches = deque([messages])
        self.stored: list[int] = []

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        if num_messages == 1:
            return list(self.batches[0][:1]) if self.batches else []
        return self.batches.popleft()[1:] if self.batches else []

    def store_offsets(self, message: Any = None, offsets: Any = None) -> None:
        self.stored.append(message.offset() + 1)


class Producer:
    """Delivers on poll and flush while ``answering``; refuses the records for ``refused``."""

    def __init__(self, refused: tuple[str, ...] = ()) -> None:
        self.refused = refused
        self.answering = True
        self.sent: list[str] = []
        self.flushes = 0
        self._reports: list[tuple[str, Any]] = []

    def produce(self, topic: str, *args: Any, **kwargs: Any) -> None:
        self.sent.append(topic)
        report = kwargs.get("on_delivery", args[3] if len(args) > 3 else None)
        if report is not None:
            self._reports.append((topic, report))

    def poll(self, timeout: float = 0) -> int:
        if not self.answering:
            return 0
        reports, self._reports = self._reports, []
        for topic, report in reports:
            report("refused" if topic in self.refused else None, None)
        return len(reports)

    def flush(self, timeout: float = 0) -> int:
        self.flushes += 1
        self.poll()
        return 0


def _stage(consumer: Consumer, producer: Producer, **options: Any) -> CdcStage:
    return CdcStage(
        consumer, producer, CdcMapper(load_mapping_dir()), EnvelopeDecoder(),
        {e: make_serializer(e) for e in EVENT_MODELS}, DeadLetterWriter(producer, "cdc"),
        Instruments(CollectorRegistry(), "cdc"), strict=True, **options,
    )  # fmt: skip


def _change(number: str) -> bytes:
    return json.dumps(debezium("c", "customers", None, {**CUSTOMER, "customer_number": number}))


GOOD = Message(0, _change("C-1").encode())
POISON = Message(1, b"\xff{not json")
TRUNCATE = Message(2, json.dumps(debezium("t", "customers", None, None)).encode())


def test_events_and_dead_letters_are_counted_and_the_batch_is_stored_without_a_flush() -> None:
    consumer, producer = Consumer([GOOD, POISON]), Producer()
    result = _stage(consumer, producer, max_in_flight=0).run_once()
    assert (result["ok"], result["dead_lettered"]) == (1, 1)
    assert producer.sent == ["canonical.account.v1", f"dlq.{TOPIC}"]
    assert consumer.stored == [2]
    assert producer.flushes == 0


def test_a_dead_letter_the_broker_refuses_leaves_the_batch_unstored() -> None:
    consumer, producer = Consumer([GOOD, POISON]), Producer(refused=(f"dlq.{TOPIC}",))
    with pytest.raises(KafkaException, match="not acknowledged"):
        _stage(consumer, producer, max_in_flight=0).run_once()
    assert consumer.stored == []


def test_a_reported_truncate_flushes_its_batch_before_the_offsets_are_stored() -> None:
    consumer, producer = Consumer([TRUNCATE]), Producer()
    reported: list[str] = []
    stage = _stage(
        consumer,
        producer,
        max_in_flight=2,
        on_truncate=lambda change, record, dlq: reported.append(dlq),
    )
    assert stage.run_once()["truncate"] == 1
    assert reported == [f"dlq.{TOPIC}"]
    assert producer.flushes == 1
    assert consumer.stored == [3]


def test_two_batches_stay_in_flight_until_the_stage_drains() -> None:
    consumer, producer = Consumer([GOOD]), Producer()
    producer.answering = False
    stage = _stage(consumer, producer)
    stage.run_once()
    assert (consumer.stored, stage.loop.in_flight) == ([], 1)
    producer.answering = True
    stage.drain()
    assert consumer.stored == [1]
