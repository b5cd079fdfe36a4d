"""Outputs of the processors through one batching confluent-kafka producer, and event codecs.

Commands, audit records, review requests and dead letters all go through one librdkafka
producer with linger: no per-event awaited send, no tiny produce requests. ``flush`` is hooked
into Faust's pre-commit flush, so consumed offsets are committed only after every output of the
events before them is acknowledged (acks=all); a failed delivery fails the commit instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.serialization import MessageField, SerializationContext

from contracts.models import Envelope
from contracts.serde import EventSerializer, make_deserializer, make_serializer
from interlock.kafka import produce
from interlock.serializers import registry_client
from interlock.settings import Settings

__all__ = ["CoalescedChangelog", "Codecs", "DeliveryFailedError", "HeldChangelog", "Output"]

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


class HeldChangelog:
    """Changelog records held back until the outputs queued before them are durable.

    A dedup mark (the ``seen`` table) says an event was acted on. Produced at once, a mark
    could reach its changelog before the effects it guards reached theirs (other topics,
    batches delivered independently); a worker killed in between left the mark and lost the
    effect, and the event, read again by the next owner, was dropped as a duplicate: accounts
    never merged, their quotes parked for good (tests/processors/test_crash_rebalance.py).
    Held records are emitted by :meth:`release`, a pre-commit hook that runs after the outputs'
    flush, and flushed in turn before Faust commits the offsets. A worker killed before then
    loses only marks: its events are acted on again, with the same deterministic event ids.
    The table itself is written at once, so dedup within the running worker is unchanged.
    """

    def __init__(
        self,
        emit: Callable[..., None],
        flush: Callable[[], Any],
        before: Callable[[], None] | None = None,
    ) -> None:
        self._emit = emit
        self._flush = flush
        self._before = before
        """Queues the effects not yet queued (the coalesced table records): events handled
        while the outputs' flush ran wrote them after the first pre-commit hook had emitted."""
        self._held: list[tuple[Any, ...]] = []

    def __call__(self, *record: Any) -> None:
        """Hold one record: the arguments ``emit`` takes (topic, key, value, headers, partition)."""
        self._held.append(record)

    async def release(self) -> None:
        """Emit the held records in order and make them durable (raises as the flush does)."""
        if not self._held:
            return
        if self._before is not None:  # the effects before the marks that guard them
            self._before()
        held, self._held = self._held, []
        for record in held:
            self._emit(*record)
        await self._flush()


class CoalescedChangelog:
    """Changelog records gathered until the next commit, the latest one per key.

    A table entry is often written several times between two commits: a quote's ledger entry
    when its command is read back, when the ERP answers and when the CRM is told; an account's
    match keys when it is indexed and when it is linked. Only the last value of each key
    matters to whoever restores the table from its changelog (a compacted topic keeps only
    that one too), so the records of one commit interval are kept here, one per (topic,
    partition, key), a later write replacing an earlier one, and emitted by :meth:`release`,
    the first pre-commit hook, just before the outputs' flush makes them durable with the
    rest. What a worker killed before then loses, it loses with the offsets of the events that
    wrote it, as when each record was produced at once: the events are handled again.
    """

    def __init__(self, emit: Callable[..., None], max_pending: int = 4096) -> None:
        self._emit = emit
        self.max_pending = max_pending
        """Records kept at most: at that many they are emitted at once (a burst's commits come
        seconds apart, and holding all its records grew a worker's memory by hundreds of MB)."""
        self._pending: dict[tuple[str, int | None, bytes | None], tuple[bytes | None, Any]] = {}
        self.written = 0
        """Records written to it since it was made (``emitted`` of them left)."""
        self.emitted = 0

    def __call__(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Any = None,
        partition: int | None = None,
    ) -> None:
        """Keep one record (a tombstone when ``value`` is None) in place of its key's last."""
        self._pending[(topic, partition, key)] = (value, headers)
        self.written += 1
        if len(self._pending) >= self.max_pending:
            self.emit_pending()  # as if produced at once: the flush before the commit still waits

    def __len__(self) -> int:
        return len(self._pending)

    def emit_pending(self) -> None:
        """Queue every kept record on the producer (the caller flushes)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        emit = self._emit
        for (topic, partition, key), (value, headers) in pending.items():
            emit(topic, key, value, headers, partition)
        self.emitted += len(pending)

    async def release(self) -> None:
        """The pre-commit hook: :meth:`emit_pending`, before the outputs' flush runs."""
        self.emit_pending()


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
