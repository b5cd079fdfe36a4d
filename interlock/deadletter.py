"""Dead letters: the original record, byte for byte, plus headers that say what went wrong.

Every stage (webhook mapping, CDC mapping, processors, sinks) routes a permanent failure here.
The value, key, headers and timestamp of the original record are kept exactly; the headers
below are added (all values UTF-8 text):

=================================  ==========================================================
``interlock.dlq.reason``           reason code, e.g. ``DECODE_FAILED``, ``JOIN_TIMEOUT``
``interlock.dlq.error.class``      ``transient`` or ``permanent``
``interlock.dlq.error.type``       exception class name
``interlock.dlq.error.message``    the error message (first 2 kB)
``interlock.dlq.error.stacktrace`` the stack trace (last 8 kB)
``interlock.dlq.original.topic``   topic the record was read from
``interlock.dlq.original.partition`` its partition
``interlock.dlq.original.offset``  its offset
``interlock.dlq.original.timestamp`` its timestamp (ms since the epoch)
``interlock.dlq.attempt``          how many times it was tried (1 + retries)
``interlock.dlq.processor``        the stage that gave up on it
``interlock.dlq.failed_at``        when (ISO-8601, UTC)
=================================  ==========================================================

A record that went through retry topics (:mod:`interlock.retry`) is dead-lettered as its
original record: ``dlq.<original topic>``, original coordinates and headers. Transient failures
are routed by :class:`interlock.retry.FailureRouter`, which uses this writer for the rest.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from contracts.errors import InterlockError, Reason
from contracts.topics import dlq_topic
from interlock.kafka import produce
from interlock.records import Header, RawRecord

__all__ = [
    "DLQ_HEADER_PREFIX",
    "DeadLetterWriter",
    "dlq_headers",
    "failure_of",
]

DLQ_HEADER_PREFIX = "interlock.dlq."


class ProducerLike(Protocol):
    """The part of confluent_kafka.Producer that the writer needs."""

    def produce(self, topic: str, *args: Any, **kwargs: Any) -> None: ...

    def poll(self, timeout: float = ...) -> int: ...


def failure_of(error: BaseException) -> tuple[Reason, bool]:
    """The reason code and transience of any exception (non-Interlock errors are permanent)."""
    if isinstance(error, InterlockError):
        return error.reason, error.transient
    return Reason.PROCESSING_FAILED, False


def dlq_headers(
    record: RawRecord,
    error: BaseException,
    *,
    processor: str,
    attempt: int = 1,
    now: datetime | None = None,
) -> list[Header]:
    """The original headers, without earlier DLQ headers, followed by the DLQ headers."""
    reason, transient = failure_of(error)
    stack = "".join(traceback.format_exception(error))[-8192:]
    failed_at = (now or datetime.now(UTC)).isoformat()
    added = {
        "reason": str(reason),
        "error.class": "transient" if transient else "permanent",
        "error.type": type(error).__name__,
        "error.message": str(error)[:2048],
        "error.stacktrace": stack,
        "original.topic": record.topic,
        "original.partition": str(record.partition),
        "original.offset": str(record.offset),
        "original.timestamp": "" if record.timestamp_ms is None else str(record.timestamp_ms),
        "attempt": str(attempt),
        "processor": processor,
        "failed_at": failed_at,
    }
    kept = [(k, v) for k, v in record.headers if not k.startswith(DLQ_HEADER_PREFIX)]
    return kept + [(DLQ_HEADER_PREFIX + k, v.encode()) for k, v in added.items()]


class DeadLetterWriter:
    """Produces failed records to ``dlq.<original topic>`` with their bytes intact.

    Args:
        producer: a confluent-kafka producer (acks=all); the writer never flushes it per record.
        processor: the name of the stage, written to ``interlock.dlq.processor``.
        topic_for: maps the original topic to its dead-letter topic.
        on_dead_letter: called after each dead letter (for metrics).
    """

    def __init__(
        self,
        producer: ProducerLike,
        processor: str,
        *,
        topic_for: Callable[[str], str] = dlq_topic,
        on_dead_letter: Callable[[str, Reason], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._producer = producer
        self._processor = processor
        self._topic_for = topic_for
        self._on_dead_letter = on_dead_letter
        self._clock = clock

    def send(
        self,
        record: RawRecord,
        error: BaseException,
        *,
        attempt: int = 1,
        on_delivery: Callable[[Any, Any], None] | None = None,
    ) -> str:
        """Queue the dead letter; returns the dead-letter topic. Delivery is async (acks=all)."""
        topic = self._topic_for(record.topic)
        headers = dlq_headers(
            record, error, processor=self._processor, attempt=attempt, now=self._clock()
        )
        kwargs: dict[str, Any] = {
            "key": record.key,
            "value": record.value,
            "headers": headers,
        }
        if record.timestamp_ms is not None:
            kwargs["timestamp"] = record.timestamp_ms
        if on_delivery is not None:
            kwargs["on_delivery"] = on_delivery
        produce(self._producer, topic, **kwargs)
        if self._on_dead_letter is not None:
            self._on_dead_letter(topic, failure_of(error)[0])
        return topic
