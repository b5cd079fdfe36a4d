"""The CDC mapping stage: Debezium change topics in, canonical events out, in batches.

The batch handler of a stateless :class:`interlock.stage.BatchLoop`: decode -> map and encode
(one generated writer per mapping, ``connectors.cdc.fastpath``; the model-based reference path
for anything it refuses) -> ``produce`` (linger batches them). Canonical events and dead letters
are produced with the batch's delivery callback; the loop keeps two batches in flight, so batch
N+1 is mapped while batch N's deliveries complete. When offsets are stored is the loop's one
rule, described in :mod:`interlock.stage`.
Failures never stop a partition: tombstones are skipped, unknown tables are skipped and
counted (dead-lettered in strict mode), truncates and unmappable changes are dead-lettered
with their reason code. Debezium records that are not changes (transaction metadata,
heartbeats, schema changes), which a regex subscription may pick up, are skipped and counted
in ``interlock_events_consumed_total`` with the outcome ``transaction``, ``heartbeat`` or
``schema_change``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from confluent_kafka.serialization import MessageField, SerializationContext

from connectors.cdc.envelope import ChangeEvent, ControlRecord, EnvelopeDecoder
from connectors.cdc.fastpath import FastWriter, Writer
from connectors.cdc.mapper import CdcMapper, CompiledMapping, TruncateError, UnknownTableError
from contracts.errors import InterlockError, Reason
from contracts.models import Envelope
from interlock.deadletter import DeadLetterWriter
from interlock.instruments import Instruments
from interlock.kafka import produce
from interlock.records import RawRecord
from interlock.stage import Batch, BatchLoop

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
    """Outcome counts of one batch: ok, skipped, unknown_table, truncate, dead_lettered, and
    the control records skipped: transaction, heartbeat, schema_change."""


class CdcStage:
    """Maps one batch of Debezium records at a time (:meth:`map_batch`) on its own
    :class:`~interlock.stage.BatchLoop` (``loop``), producing while earlier batches settle.

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
        flush_timeout: seconds a batch may wait for its acknowledgements before the stage fails.
        max_in_flight: handled batches whose outputs may be unacknowledged when a batch is
            done (0: each batch settles before the next is consumed).
        on_truncate: called with each dead-lettered TRUNCATE (decoded), the raw record and its
            dead-letter topic, e.g. to report it to the audit topic.
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
        max_in_flight: int = 2,
        on_truncate: Callable[[ChangeEvent, RawRecord, str], None] | None = None,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._mapper = mapper
        self._decoder = decoder
        self._serializers = dict(serializers)
        self._contexts: dict[str, SerializationContext] = {}
        self._dead = dead_letters
        self._on_truncate = on_truncate
        self._metrics = instruments
        self._strict = strict
        self._writers: dict[int, FastWriter | None] = {}
        self._ready: dict[tuple[str, str | None], tuple[Writer, bytes, str]] = {}
        """(write, header, topic) of the writer of a (table, schema), once it knows its header."""
        self._header_size = {
            e: 10 if getattr(s, "wire_format", None) == "single-object" else 5
            for e, s in self._serializers.items()
        }
        self.loop: BatchLoop[BatchResult] = BatchLoop(
            consumer,
            producer,
            self.map_batch,
            batch_size=batch_size,
            poll_timeout=poll_timeout,
            flush_timeout=flush_timeout,
            max_in_flight=max_in_flight,
        )

    def _context(self, topic: str) -> SerializationContext:
        ctx = self._contexts.get(topic)
        if ctx is None:
            ctx = self._contexts[topic] = SerializationContext(topic, MessageField.VALUE)
        return ctx

    def _writer(self, mapping: CompiledMapping) -> FastWriter | None:
        key = id(mapping)
        if key not in self._writers:
            self._writers[key] = FastWriter.build(mapping, self._serializers.get(mapping.entity))
        return self._writers[key]

    def _encode(self, change: ChangeEvent, now: datetime) -> tuple[str, bytes, bytes]:
        """(topic, key, value): the generated writer, else the reference path (which raises)."""
        ready = self._ready.get((change.table, change.schema))
        if ready is not None:
            write, header, topic = ready
            try:
                key, value = write(change, now, header)
                return topic, key, value
            except Exception:  # noqa: S110 - the reference path decides below
                pass
        return self._encode_reference(change, now)

    def _encode_reference(self, change: ChangeEvent, now: datetime) -> tuple[str, bytes, bytes]:
        """(topic, key, value) by the reference path; teaches the table's writer its header."""
        mapped = self._mapper.map(change, now)  # raises: truncate, unknown table, unmappable
        value = self._serializers[mapped.event.entity](mapped.event, self._context(mapped.topic))
        mapping = self._mapper.mapping_for(change.table, change.schema)
        writer = self._writer(mapping) if mapping is not None else None
        if writer is not None:
            if writer.header is None:
                writer.learn(value, self._header_size[mapped.event.entity])
            assert writer.header is not None
            self._ready[(change.table, change.schema)] = (writer.write, writer.header, writer.topic)
        return mapped.topic, mapped.key, value

    def run_once(self) -> BatchResult:
        """Consume, map and produce one batch; store offsets of batches whose outputs are acked.

        Raises:
            KafkaException: an output was not acknowledged (offsets stay unstored).
        """
        return self.loop.run_once()

    def map_batch(self, messages: list[Any], batch: Batch) -> BatchResult:
        """Map and produce one batch, each output counted by ``batch.ack`` (the batch handler)."""
        result = BatchResult()
        if not messages:
            return result
        started = time.perf_counter()
        produced: Counter[str] = Counter()
        consumed: Counter[tuple[str, str]] = Counter()
        now = datetime.now(UTC)
        ack = batch.ack
        decode, encode, send = self._decoder.decode, self._encode, self._producer.produce
        for msg in messages:
            if msg.error() is not None:
                log.warning("consume error: %s", msg.error())
                continue
            topic = msg.topic()
            outcome = "ok"
            change: ChangeEvent | None = None
            try:
                decoded = decode(msg.value(), topic)
                if decoded is None:
                    outcome = "skipped"
                elif isinstance(decoded, ControlRecord):
                    outcome = decoded.kind
                else:
                    change = decoded
                    out_topic, key, value = encode(change, now)
                    try:
                        # (topic, value, key, partition: any, on_delivery), positionally: the
                        # keyword form costs a quarter of a microsecond more per record.
                        send(out_topic, value, key, -1, ack)
                    except BufferError:
                        produce(self._producer, out_topic, value, key, on_delivery=ack)
                    produced[out_topic] += 1
            except UnknownTableError as exc:
                outcome = "unknown_table"
                table = exc.message.rsplit(" ", 1)[-1]
                self._metrics.unknown_tables.labels(table).inc()
                if self._strict:
                    self._dead_letter(msg, exc, batch)
                    outcome = "dead_lettered"
            except TruncateError as exc:
                outcome = "truncate"
                log.warning("%s (topic %s offset %s)", exc, topic, msg.offset())
                dlq = self._dead_letter(msg, exc, batch)
                if self._on_truncate is not None and change is not None:
                    self._on_truncate(change, RawRecord.from_message(msg), dlq)
                    batch.flush = True  # the report is produced without the batch's callback
            except InterlockError as exc:
                outcome = "dead_lettered"
                self._dead_letter(msg, exc, batch)
            except Exception as exc:  # a bug must not stop the partition: keep the record
                log.exception("unexpected failure mapping %s@%s", topic, msg.offset())
                outcome = "dead_lettered"
                self._dead_letter(msg, exc, batch)
            consumed[(topic, outcome)] += 1
        # Acknowledgements are served only by poll(), so the count can be added afterwards.
        batch.left += sum(produced.values())
        for (_topic, outcome), n in consumed.items():
            result[outcome] += n
        self._record(consumed, produced, time.perf_counter() - started, len(messages))
        return result

    def drain(self) -> None:
        """Wait until every produced event is acknowledged and store all offsets."""
        self.loop.drain()

    def _dead_letter(self, msg: Any, error: BaseException, batch: Batch) -> str:
        topic = self._dead.send(RawRecord.from_message(msg), error, on_delivery=batch.ack)
        batch.left += 1
        return topic

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
        """Run batches until ``stop`` is set, then settle what is in flight."""
        self.loop.run(stop)


def dead_letter_metrics(instruments: Instruments) -> Callable[[str, Reason], None]:
    """The ``on_dead_letter`` callback counting ``interlock_dead_letters_total``."""

    def count(topic: str, reason: Reason) -> None:
        instruments.dead_letters.labels(SERVICE, topic, str(reason)).inc()

    return count
