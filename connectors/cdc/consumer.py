"""The CDC mapping stage: Debezium change topics in, canonical events out, in batches.

A stateless confluent-kafka loop: ``consume(N, timeout)`` -> decode -> map -> encode ->
``produce`` (linger batches them) -> one ``flush`` per batch -> ``store_offsets``. Offsets are
stored only once every event of the batch was acknowledged, so a crash replays the batch
(at-least-once; the deterministic event ids make the replay harmless downstream).
Failures never stop a partition: tombstones are skipped, unknown tables are skipped and
counted (dead-lettered in strict mode), truncates and unmappable changes are dead-lettered
with their reason code.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from confluent_kafka import KafkaException
from confluent_kafka.serialization import MessageField, SerializationContext

from connectors.cdc.envelope import EnvelopeDecoder
from connectors.cdc.mapper import CdcMapper, TruncateError, UnknownTableError
from contracts.errors import InterlockError, Reason
from contracts.models import Envelope
from interlock.deadletter import DeadLetterWriter, RawRecord
from interlock.instruments import Instruments

__all__ = ["BatchResult", "CdcStage", "ConsumerLike", "ProducerLike"]

log = logging.getLogger(__name__)
SERVICE = "cdc"


class ConsumerLike(Protocol):
    """The part of ``confluent_kafka.Consumer`` the stage uses."""

    def consume(self, num_messages: int = ..., timeout: float = ...) -> list[Any]: ...

    def store_offsets(self, message: Any = ..., offsets: Any = ...) -> None: ...


class ProducerLike(Protocol):
    """The part of ``confluent_kafka.Producer`` the stage uses."""

    def produce(self, topic: str, *args: Any, **kwargs: Any) -> None: ...

    def poll(self, timeout: float = ...) -> int: ...

    def flush(self, timeout: float = ...) -> int: ...


Serializer = Callable[[Envelope, SerializationContext | None], bytes]


class BatchResult(Counter[str]):
    """Outcome counts of one batch: ok, skipped, unknown_table, truncate, dead_lettered."""


class CdcStage:
    """Maps one batch of Debezium records at a time.

    Args:
        consumer: subscribed consumer with ``enable.auto.offset.store=False``.
        producer: batching producer (acks=all, linger).
        mapper: the compiled mappings.
        decoder: the Debezium envelope decoder (with the registry for Avro values).
        serializers: canonical serializer per entity (``contracts.make_serializer``).
        dead_letters: the dead-letter writer of this stage.
        instruments: the process's metrics.
        strict: dead-letter changes of unknown tables instead of skipping them.
        batch_size: records per ``consume`` call.
        poll_timeout: seconds ``consume`` waits for the first record.
    """

    def __init__(
        self,
        consumer: ConsumerLike,
        producer: ProducerLike,
        mapper: CdcMapper,
        decoder: EnvelopeDecoder,
        serializers: Mapping[str, Serializer],
        dead_letters: DeadLetterWriter,
        instruments: Instruments,
        *,
        strict: bool = False,
        batch_size: int = 5000,
        poll_timeout: float = 0.2,
        flush_timeout: float = 30.0,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._mapper = mapper
        self._decoder = decoder
        self._serializers = dict(serializers)
        self._contexts: dict[str, SerializationContext] = {}
        self._dead = dead_letters
        self._metrics = instruments
        self._strict = strict
        self._batch_size = batch_size
        self._poll_timeout = poll_timeout
        self._flush_timeout = flush_timeout

    def _context(self, topic: str) -> SerializationContext:
        ctx = self._contexts.get(topic)
        if ctx is None:
            ctx = self._contexts[topic] = SerializationContext(topic, MessageField.VALUE)
        return ctx

    def run_once(self) -> BatchResult:
        """Consume, map and produce one batch; offsets are stored once it is acknowledged."""
        messages = self._consumer.consume(self._batch_size, self._poll_timeout)
        result = BatchResult()
        if not messages:
            return result
        started = time.perf_counter()
        produced: Counter[str] = Counter()
        consumed: Counter[tuple[str, str]] = Counter()
        now = datetime.now(UTC)
        decode, mapper, produce = self._decoder.decode, self._mapper.map, self._producer.produce
        last = None
        for msg in messages:
            if msg.error() is not None:
                log.warning("consume error: %s", msg.error())
                continue
            last = msg
            topic = msg.topic()
            outcome = "ok"
            try:
                change = decode(msg.value(), topic)
                if change is None:
                    outcome = "skipped"
                else:
                    mapped = mapper(change, now)
                    value = self._serializers[mapped.event.entity](
                        mapped.event, self._context(mapped.topic)
                    )
                    try:
                        produce(mapped.topic, value, mapped.key)
                    except BufferError:
                        self._producer.poll(0.5)
                        produce(mapped.topic, value, mapped.key)
                    produced[mapped.topic] += 1
            except UnknownTableError as exc:
                outcome = "unknown_table"
                table = exc.message.rsplit(" ", 1)[-1]
                self._metrics.unknown_tables.labels(table).inc()
                if self._strict:
                    self._dead_letter(msg, exc)
                    outcome = "dead_lettered"
            except TruncateError as exc:
                outcome = "truncate"
                log.warning("%s (topic %s offset %s)", exc, topic, msg.offset())
                self._dead_letter(msg, exc)
            except InterlockError as exc:
                outcome = "dead_lettered"
                self._dead_letter(msg, exc)
            except Exception as exc:  # a bug must not stop the partition: keep the record
                log.exception("unexpected failure mapping %s@%s", topic, msg.offset())
                outcome = "dead_lettered"
                self._dead_letter(msg, exc)
            result[outcome] += 1
            consumed[(topic, outcome)] += 1
        remaining = self._producer.flush(self._flush_timeout)
        if remaining:
            raise KafkaException(f"{remaining} canonical events not acknowledged; not committing")
        if last is not None:
            self._store(messages)
        elapsed = time.perf_counter() - started
        self._record(consumed, produced, elapsed, len(messages))
        return result

    def _store(self, messages: list[Any]) -> None:
        highest: dict[tuple[str, int], Any] = {}
        for msg in messages:
            if msg.error() is None:
                highest[(msg.topic(), msg.partition())] = msg
        for msg in highest.values():
            self._consumer.store_offsets(message=msg)

    def _dead_letter(self, msg: Any, error: BaseException) -> None:
        self._dead.send(RawRecord.from_message(msg), error)

    def _record(
        self,
        consumed: Counter[tuple[str, str]],
        produced: Counter[str],
        elapsed: float,
        count: int,
    ) -> None:
        m = self._metrics
        for (topic, outcome), n in consumed.items():
            m.events_consumed.labels(SERVICE, topic, outcome).inc(n)
        for topic, n in produced.items():
            m.events_produced.labels(SERVICE, topic).inc(n)
        m.processing_seconds.labels(SERVICE, "cdc_map").observe(elapsed / max(count, 1))

    def run(self, stop: threading.Event) -> None:
        """Run batches until ``stop`` is set."""
        while not stop.is_set():
            self.run_once()


def dead_letter_metrics(instruments: Instruments) -> Callable[[str, Reason], None]:
    """The ``on_dead_letter`` callback counting ``interlock_dead_letters_total``."""

    def count(topic: str, reason: Reason) -> None:
        instruments.dead_letters.labels(SERVICE, topic, str(reason)).inc()

    return count
