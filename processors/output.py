"""Outputs of the processors through one batching confluent-kafka producer, and event codecs.

Commands, audit records, review requests and dead letters all go through one librdkafka
producer with linger: no per-event awaited send, no tiny produce requests. ``flush`` is hooked
into Faust's pre-commit flush, so consumed offsets are committed only after every output of the
events before them is acknowledged (acks=all); a failed delivery fails the commit instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.serialization import MessageField, SerializationContext

from contracts.models import Envelope
from contracts.serde import EventSerializer, make_deserializer, make_serializer
from interlock.instruments import Instruments
from interlock.kafka import produce
from interlock.serializers import registry_client
from interlock.settings import Settings

if TYPE_CHECKING:  # the plain loop uses this module without Faust
    from processors.state import ChangelogEmit

__all__ = ["Codecs", "DeliveryFailedError", "Output", "TableChangelogs"]

log = logging.getLogger(__name__)


class DeliveryFailedError(RuntimeError):
    """An output could not be delivered: offsets must not be committed past its cause."""


class Output:
    """Queue records on a shared producer; ``flush`` makes them durable or raises."""

    def __init__(self, producer: Producer, flush_timeout_s: float = 60.0) -> None:
        self.producer = producer
        self.flush_timeout_s = flush_timeout_s
        self.failures: list[str] = []
        self._calls = 0
        self._delivered: dict[tuple[str, int], int] = {}
        self.changelog_failed = False
        """A changelog record was not delivered: the tables are ahead of their changelogs."""

    def take_delivered(self) -> dict[tuple[str, int], int]:
        """The last delivered offset per changelog partition since the last call."""
        delivered, self._delivered = self._delivered, {}
        return delivered

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        """A delivery report: a failed record fails the next flush (also for records produced
        on this producer by others, such as the dead letters)."""
        if err is not None:
            self.failures.append(f"{msg.topic()}: {err}")
            log.error("output to %s failed: %s", msg.topic(), err)

    def _on_changelog_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.changelog_failed = True
            self.on_delivery(err, msg)
        else:  # reports come in offset order per partition
            self._delivered[(msg.topic(), msg.partition())] = msg.offset()  # type: ignore[index,assignment]

    def changelog(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Any = None,
        partition: int | None = None,
    ) -> None:
        """Queue one changelog record and keep its offset once delivered (``take_delivered``)."""
        self._produce(topic, key, value, headers, partition, self._on_changelog_delivery)

    def __call__(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Any = None,
        partition: int | None = None,
    ) -> None:
        """Queue one record (``partition`` None: the producer's partitioner picks it)."""
        self._produce(topic, key, value, headers, partition, self.on_delivery)

    def _produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Any,
        partition: int | None,
        on_delivery: Callable[[KafkaError | None, Message], None],
    ) -> None:
        kwargs: dict[str, Any] = {"on_delivery": on_delivery}
        if headers:
            kwargs["headers"] = headers
        if partition is not None:
            kwargs["partition"] = partition
        produce(self.producer, topic, value, key, timeout=self.flush_timeout_s, **kwargs)
        self._calls += 1
        if self._calls >= 1000:
            self._calls = 0
            self.producer.poll(0)

    def flush_sync(self) -> None:
        """Block until every queued record is acknowledged; raise if any failed."""
        remaining = self.producer.flush(self.flush_timeout_s)
        if remaining:
            raise DeliveryFailedError(f"{remaining} output record(s) not delivered in time")
        if self.failures:
            failed, self.failures = self.failures, []
            raise DeliveryFailedError(f"output delivery failed: {'; '.join(failed[:5])}")

    async def flush(self) -> None:
        """:meth:`flush_sync` off the event loop (Faust's pre-commit hook)."""
        await asyncio.to_thread(self.flush_sync)


class TableChangelogs:
    """The tables' changelog records on their way to the broker, in an order safe from crashes.

    Every table hands its records to one of two entry points:

    - :meth:`coalesce`, every table but ``seen``. A table entry is often written several times
      between two commits: a quote's ledger entry when its command is read back, when the ERP
      answers and when the CRM is told; an account's match keys when it is indexed and when it
      is linked. Only the last value of each key matters to whoever restores the table from
      its changelog (a compacted topic keeps only that one too), so the records of one commit
      interval are kept, one per (topic, partition, key), a later write replacing an earlier
      one. What a worker killed before they leave loses, it loses with the offsets of the
      events that wrote them, as when each record was produced at once: the events are
      handled again.
    - :meth:`hold`, the ``seen`` table's dedup marks, never coalesced. A mark says an event was
      acted on. Produced at once, it could reach its changelog before the effects it guards
      reached theirs (other topics, batches delivered independently); a worker killed in
      between left the mark and lost the effect, and the event, read again by the next owner,
      was dropped as a duplicate: accounts never merged, their quotes parked for good
      (tests/processors/test_crash_rebalance.py). A worker killed before the marks leave loses
      only marks: its events are acted on again, with the same deterministic event ids.

    The tables themselves are written at once, so reads and dedup within the running worker
    are unchanged. Two pre-commit hooks send the records: :meth:`release`, the first, emits the
    kept table records just before the outputs' flush makes them durable with the rest;
    :meth:`release_marks`, after that flush, emits the table records kept since (events are
    handled while the outputs' flush runs in a thread), then the marks, and flushes again
    before Faust commits the offsets. What the tables wrote and what left is counted per
    changelog topic (``interlock_changelog_writes_total``,
    ``interlock_changelog_records_emitted_total``).
    """

    def __init__(
        self,
        emit: ChangelogEmit,
        flush: Callable[[], Awaitable[None]],
        instruments: Instruments,
        max_pending: int = 4096,
    ) -> None:
        self._emit = emit
        self._flush = flush
        self._instruments = instruments
        self.max_pending = max_pending
        """Table records kept at most: at that many they are emitted at once (a burst's commits
        come seconds apart, and holding all its records grew a worker's memory by hundreds of
        MB)."""
        self._pending: dict[tuple[str, int | None, bytes | None], tuple[bytes | None, Any]] = {}
        self._marks: list[tuple[Any, ...]] = []
        # per changelog topic, added to the counters when records leave (no label lookup per
        # record)
        self._written: dict[str, int] = {}
        self._emitted: dict[str, int] = {}

    def coalesce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Any = None,
        partition: int | None = None,
    ) -> None:
        """Keep one table record (a tombstone when ``value`` is None) in place of its key's
        last."""
        self._pending[(topic, partition, key)] = (value, headers)
        written = self._written
        written[topic] = written.get(topic, 0) + 1
        if len(self._pending) >= self.max_pending:
            self.emit_pending()  # as if produced at once: the flush before the commit still waits

    def hold(self, *record: Any) -> None:
        """Hold one dedup mark until :meth:`release_marks`: the arguments of :meth:`coalesce`
        (topic, key, value, headers, partition)."""
        self._marks.append(record)
        written, topic = self._written, record[0]
        written[topic] = written.get(topic, 0) + 1

    def __len__(self) -> int:
        """The table records kept (the marks held not included)."""
        return len(self._pending)

    def emit_pending(self) -> None:
        """Queue every kept table record on the producer (the caller flushes); the marks stay
        held."""
        if self._pending:
            pending, self._pending = self._pending, {}
            emit, emitted = self._emit, self._emitted
            for (topic, partition, key), (value, headers) in pending.items():
                emit(topic, key, value, headers, partition)
                emitted[topic] = emitted.get(topic, 0) + 1
        self._count()

    async def release(self) -> None:
        """The first pre-commit hook: :meth:`emit_pending`, before the outputs' flush runs."""
        self.emit_pending()

    async def release_marks(self) -> None:
        """The pre-commit hook after the outputs' flush: the table records kept since, then the
        held marks in order, made durable (raises as the flush does)."""
        if not self._marks:
            return
        self.emit_pending()  # the effects before the marks that guard them
        marks, self._marks = self._marks, []
        emit, emitted = self._emit, self._emitted
        for record in marks:
            emit(*record)
            emitted[record[0]] = emitted.get(record[0], 0) + 1
        self._count()
        await self._flush()

    def _count(self) -> None:
        """Add what was written and emitted since the last call to the counters."""
        instruments = self._instruments
        for counts, metric in (
            (self._written, instruments.changelog_writes),
            (self._emitted, instruments.changelog_records_emitted),
        ):
            for topic, n in counts.items():
                instruments.child(metric, topic).inc(n)
            counts.clear()


class Codecs:
    """Decode any canonical event; encode with the configured wire format per topic."""

    def __init__(self, settings: Settings) -> None:
        registry = registry_client(settings)
        self._wire_format = settings.wire_format
        self._registry = registry
        self._strategy = settings.schema_registry.subject_strategy
        self._serializers: dict[str, EventSerializer] = {}
        self.decode: Callable[[bytes], Envelope] = make_deserializer(registry=registry).decode

    def encode(self, event: Envelope, topic: str) -> bytes:
        entity = type(event).ENTITY
        serializer = self._serializers.get(entity)
        if serializer is None:
            serializer = self._serializers[entity] = make_serializer(
                entity,
                wire_format=self._wire_format,
                registry=self._registry,
                subject_strategy=self._strategy,
            )
        return serializer(event, SerializationContext(topic, MessageField.VALUE))
