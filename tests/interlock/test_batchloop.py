"""The settle rule of the one stage loop: offsets are stored once everything a batch produced is
acknowledged and every older batch is stored; ``max_in_flight`` batches may wait meanwhile."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaException

from interlock.batchloop import Batch, BatchLoop

pytestmark = pytest.mark.unit

TOPIC = "raw.erp.customers"


class Message:
    """The part of ``confluent_kafka.Message`` the loop reads."""

    def __init__(self, partition: int, offset: int) -> None:
        self._partition = partition
        self._offset = offset

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def error(self) -> None:
        return None


class Consumer:
    """Hands out prepared batches; records what was stored, as (partition, next offset)."""

    def __init__(self, *batches: list[Message]) -> None:
        self.batches = deque(batches)
        self.stored: list[tuple[int, int]] = []

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        if num_messages == 1:  # consume_available asks for the first record, then the rest
            return list(self.batches[0][:1]) if self.batches else []
        return self.batches.popleft()[1:] if self.batches else []

    def store_offsets(self, message: Any = None, offsets: Any = None) -> None:
        if message is not None:
            self.stored.append((message.partition(), message.offset() + 1))
        for tp in offsets or ():
            self.stored.append((tp.partition, tp.offset))


class Producer:
    """Delivery reports are served by poll and flush, and only while the broker acknowledges."""

    def __init__(self) -> None:
        self.acks = True
        self.failing = False
        self.flushes = 0
        self.waiting: list[Callable[[Any, Any], None]] = []

    def produce(
        self, topic: str, value: bytes, key: bytes, partition: int, on_delivery: Any
    ) -> None:
        self.waiting.append(on_delivery)

    def poll(self, timeout: float = 0) -> int:
        if not self.acks:
            return 0
        waiting, self.waiting = self.waiting, []
        for report in waiting:
            report("broker down" if self.failing else None, None)
        return len(waiting)

    def flush(self, timeout: float = 0) -> int:
        self.flushes += 1
        self.poll()
        return len(self.waiting)


def _batch(partition: int, first: int, n: int) -> list[Message]:
    return [Message(partition, o) for o in range(first, first + n)]


def _loop(consumer: Consumer, producer: Producer, **options: Any) -> BatchLoop[int]:
    def map_batch(messages: list[Any], batch: Batch) -> int:
        for _ in messages:
            producer.produce("canonical.account.v1", b"v", b"k", -1, batch.ack)
        batch.left += len(messages)
        return len(messages)

    return BatchLoop(consumer, producer, map_batch, poll_timeout=0, **options)


def test_flush_per_batch_is_max_in_flight_zero_every_batch_is_stored_before_the_next() -> None:
    consumer = Consumer(_batch(0, 0, 3), _batch(0, 3, 2))
    loop = _loop(consumer, Producer())
    assert loop.run_once() == 3
    assert consumer.stored == [(0, 3)]
    assert loop.run_once() == 2
    assert consumer.stored == [(0, 3), (0, 5)]
    assert loop.in_flight == 0


def test_a_pipelined_batch_is_stored_only_once_its_outputs_are_acknowledged() -> None:
    producer = Producer()
    consumer = Consumer(_batch(0, 0, 3), _batch(0, 3, 2), _batch(0, 5, 1))
    loop = _loop(consumer, producer, max_in_flight=1)
    producer.acks = False
    loop.run_once()
    assert (consumer.stored, loop.in_flight) == ([], 1)  # mapped, not acknowledged: not stored
    first, producer.waiting = producer.waiting, []
    for report in first:  # the broker acknowledges batch 1 only
        report(None, None)
    loop.run_once()  # batch 2 is mapped while it waits for its acknowledgements
    assert (consumer.stored, loop.in_flight) == ([(0, 3)], 1)
    producer.acks = True
    loop.run_once()  # two batches unsettled: more than max_in_flight, so the loop waits
    assert consumer.stored == [(0, 3), (0, 5), (0, 6)]


def test_a_newer_batch_is_never_stored_before_an_older_one() -> None:
    producer = Producer()
    consumer = Consumer(_batch(0, 0, 2), _batch(0, 2, 2))
    loop = _loop(consumer, producer, max_in_flight=2)
    producer.acks = False
    loop.run_once()
    older = list(producer.waiting)
    producer.waiting.clear()
    producer.acks = True
    loop.run_once()  # the newer batch is acknowledged, the older is not
    assert consumer.stored == []
    for report in older:
        report(None, None)
    loop.settle(wait=False)
    assert consumer.stored == [(0, 2), (0, 4)]


def test_a_quiet_consume_and_drain_settle_everything() -> None:
    producer = Producer()
    consumer = Consumer(_batch(0, 0, 2), _batch(1, 0, 2))
    loop = _loop(consumer, producer, max_in_flight=2)
    producer.acks = False
    loop.run_once()
    producer.acks = True
    assert loop.in_flight == 1
    loop.run_once()
    loop.run_once()  # nothing consumed: every batch in flight is settled
    assert sorted(consumer.stored) == [(0, 2), (1, 2)]
    assert loop.in_flight == 0
    loop.drain()  # nothing left: a no-op
    assert producer.flushes == 0


def test_an_unacknowledged_output_stops_the_loop_with_its_offsets_unstored() -> None:
    producer = Producer()
    producer.failing = True
    consumer = Consumer(_batch(0, 0, 2))
    with pytest.raises(KafkaException, match="not acknowledged"):
        _loop(consumer, producer).run_once()
    assert consumer.stored == []


def test_a_batch_waiting_too_long_for_its_acknowledgements_stops_the_loop() -> None:
    producer = Producer()
    producer.acks = False
    consumer = Consumer(_batch(0, 0, 2))
    with pytest.raises(KafkaException, match="2 records not acknowledged"):
        _loop(consumer, producer, flush_timeout=0.05).run_once()
    assert consumer.stored == []


def test_a_batch_marked_flush_is_flushed_before_it_is_stored() -> None:
    consumer = Consumer(_batch(0, 0, 2))
    flushed: list[float] = []

    def uncounted(messages: list[Any], batch: Batch) -> int:
        batch.flush = True  # produced without the batch's callback
        return len(messages)

    loop = BatchLoop(consumer, Producer(), uncounted, flush=flushed.append, max_in_flight=5)
    loop.run_once()
    assert len(flushed) == 1
    assert consumer.stored == [(0, 2)]  # flushed is acknowledged: nothing left to wait for


def test_explicit_offsets_replace_the_batch_s_last_records() -> None:
    consumer = Consumer(_batch(0, 0, 3))

    def held(messages: list[Any], batch: Batch) -> int:
        batch.offsets = {(TOPIC, 0): 1}  # records 1 and 2 are read again
        return 1

    BatchLoop(consumer, Producer(), held).run_once()
    assert consumer.stored == [(0, 1)]
