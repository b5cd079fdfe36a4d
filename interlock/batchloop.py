"""The loop under every stateless Kafka stage: consume a batch → handle it → settle → store.

:class:`BatchLoop` is what :class:`interlock.stage.StageLoop` (record by record, guarded) and the
CDC stage (whole batches) run. When a batch's offsets are stored is one rule, documented with the
stages in :mod:`interlock.stage`: once everything the batch produced is acknowledged and every
older batch is stored, with at most ``max_in_flight`` batches unsettled between two consumes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from confluent_kafka import KafkaException, TopicPartition

__all__ = ["Batch", "BatchHandler", "BatchLoop", "consume_available"]

log = logging.getLogger(__name__)

R = TypeVar("R")


def consume_available(consumer: Any, batch_size: int, timeout: float) -> list[Any]:
    """Wait up to ``timeout`` for the first record, then take what is already fetched.

    ``Consumer.consume(n, timeout)`` returns only when ``n`` records arrived or the timeout
    passed, so at a moderate rate every stage would add its whole poll timeout to the latency
    of each record. Waiting for one and draining the rest without waiting keeps batches large
    under load and latency low when it is quiet.
    """
    first = consumer.consume(1, timeout)
    if not first or batch_size <= 1:
        return list(first)
    return [*first, *consumer.consume(batch_size - 1, 0)]


class Batch:
    """One consumed batch on its way to being stored (the settle rule: :mod:`interlock.stage`).

    A batch handler produces with ``on_delivery=batch.ack`` and adds what it produced so to
    ``left``, or sets ``flush`` for what it produced otherwise. ``offsets`` is where each
    partition resumes once the batch is stored; ``None`` (the default): past every record.
    """

    __slots__ = ("errors", "flush", "left", "messages", "offsets")

    def __init__(self, messages: Sequence[Any]) -> None:
        self.messages = messages
        self.offsets: dict[tuple[str, int], int] | None = None
        self.left = 0
        self.errors: list[Any] = []
        self.flush = False

    def ack(self, err: Any, _msg: Any) -> None:
        """Delivery report of one record this batch produced."""
        self.left -= 1
        if err is not None:
            self.errors.append(err)

    def store(self, consumer: Any) -> None:
        """Store this batch's offsets in ``consumer`` (committed by auto-commit or close)."""
        if self.offsets is not None:
            if self.offsets:
                consumer.store_offsets(
                    offsets=[TopicPartition(t, p, o) for (t, p), o in self.offsets.items()]
                )
            return
        highest: dict[tuple[str, int], Any] = {}
        for msg in self.messages:
            if msg.error() is None:
                highest[(msg.topic(), msg.partition())] = msg
        for msg in highest.values():
            consumer.store_offsets(message=msg)


#: Handles one consumed batch (possibly empty); what it returns, ``run_once`` returns.
BatchHandler = Callable[[list[Any], Batch], R]


def _flush_producer(producer: Any) -> Callable[[float], None]:
    def flush(timeout: float) -> None:
        remaining = producer.flush(timeout)
        if remaining:
            raise KafkaException(f"{remaining} records not acknowledged; not committing")

    return flush


class BatchLoop(Generic[R]):
    """Consume → ``handle_batch`` → settle → store offsets, batch by batch (see the module docs).

    Args:
        consumer: a confluent-kafka consumer, subscribed or assigned, with
            ``enable.auto.offset.store=False`` (``interlock.kafka.make_consumer``).
        producer: the producer the batches' outputs go through (polled for delivery reports).
        handle_batch: handles the messages of one batch, producing through ``producer``.
        flush: makes everything produced so far durable, given a timeout in seconds, or
            raises (default: ``producer.flush``, raising if anything is left).
        batch_size: records per ``consume`` call.
        poll_timeout: longest wait for a batch, seconds.
        flush_timeout: seconds a batch may wait for its acknowledgements before the loop fails.
        max_in_flight: handled batches that may still wait for acknowledgements when
            ``run_once`` returns (0: each batch is settled before the next is consumed).
        clock: seconds since the epoch (when paused partitions resume).
    """

    def __init__(
        self,
        consumer: Any,
        producer: Any,
        handle_batch: BatchHandler[R],
        *,
        flush: Callable[[float], None] | None = None,
        batch_size: int = 500,
        poll_timeout: float = 0.5,
        flush_timeout: float = 30.0,
        max_in_flight: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self._handle_batch = handle_batch
        self._flush = flush or _flush_producer(producer)
        self._batch_size = batch_size
        self._poll_timeout = poll_timeout
        self._flush_timeout = flush_timeout
        self._max_in_flight = max(0, max_in_flight)
        self._clock = clock
        self._pending: deque[Batch] = deque()
        self._paused: dict[tuple[str, int], int] = {}
        """Paused partitions: resume at (ms since the epoch)."""

    @property
    def in_flight(self) -> int:
        """Handled batches whose offsets are not stored yet."""
        return len(self._pending)

    def pause(self, topic: str, partition: int, offset: int, resume_at_ms: int) -> None:
        """Rewind a partition to ``offset`` and read nothing from it until ``resume_at_ms``.

        Raises:
            KafkaException: the partition is no longer assigned.
        """
        self.consumer.pause([TopicPartition(topic, partition)])
        self.consumer.seek(TopicPartition(topic, partition, offset))
        self._paused[(topic, partition)] = resume_at_ms

    def _resume_due(self, now_ms: int) -> None:
        due = [tp for tp, at in self._paused.items() if at <= now_ms]
        for topic, partition in due:
            del self._paused[(topic, partition)]
            try:
                self.consumer.resume([TopicPartition(topic, partition)])
            except KafkaException as exc:  # revoked meanwhile: nothing to resume
                log.debug("resume %s[%d]: %s", topic, partition, exc)

    def _wait_s(self, now_ms: int) -> float:
        if not self._paused:
            return self._poll_timeout
        soonest = min(self._paused.values()) - now_ms
        return max(0.0, min(self._poll_timeout, soonest / 1000))

    def run_once(self) -> R:
        """Consume and handle one batch, then settle (store what may be stored); returns what
        the batch handler returned.

        Raises:
            KafkaException: an output was not acknowledged (its batch's offsets stay unstored).
        """
        if self._paused:
            self._resume_due(int(self._clock() * 1000))
            wait_s = self._wait_s(int(self._clock() * 1000))
        else:
            wait_s = self._poll_timeout
        messages = consume_available(self.consumer, self._batch_size, wait_s)
        batch = Batch(messages)
        result = self._handle_batch(messages, batch)
        if messages:
            self._pending.append(batch)
            self.settle(wait=len(self._pending) > self._max_in_flight)
        elif self._pending:  # quiet: nothing to map meanwhile, so settle everything
            self.settle(wait=True)
        return result

    def settle(self, *, wait: bool) -> None:
        """Store the offsets of the oldest batches whose outputs are all acknowledged.

        With ``wait``, serve delivery reports until no more than ``max_in_flight`` batches are
        left unsettled.
        """
        pending = self._pending
        producer = self.producer
        deadline = time.monotonic() + self._flush_timeout
        while pending:
            batch = pending[0]
            if batch.flush:
                self._flush(max(0.0, deadline - time.monotonic()))
                batch.flush = False
            if batch.left > 0:
                producer.poll(0)
            if batch.errors:
                raise KafkaException(
                    f"{len(batch.errors)} records not acknowledged ({batch.errors[0]}); "
                    "not committing"
                )
            if batch.left > 0:
                if not wait:
                    return
                if time.monotonic() > deadline:
                    raise KafkaException(f"{batch.left} records not acknowledged; not committing")
                producer.poll(0.05)
                continue
            batch.store(self.consumer)
            pending.popleft()
            wait = wait and len(pending) > self._max_in_flight

    def drain(self) -> None:
        """Wait until everything produced is acknowledged and store every batch's offsets."""
        if self._pending:
            self._pending[-1].flush = True  # do not wait for the producer's linger
            self.settle(wait=True)

    def run(self, stop: threading.Event) -> None:
        """Run batches until ``stop`` is set, then settle what is in flight. Offsets stored are
        committed by the consumer (auto-commit, and ``close``): the caller closes it."""
        while not stop.is_set():
            self.run_once()
        self.drain()
