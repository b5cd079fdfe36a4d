"""Transient failures go to retry topics, permanent or exhausted ones to dead-letter topics.

One mechanism for every stage. A failed record is routed by :class:`FailureRouter`:

- transient (``InterlockError.transient``) and ``attempt <= tiers``: its original bytes are
  produced to ``retry.<original topic>.<attempt>`` with the headers below; the source
  partition goes on at once;
- otherwise (permanent, or the last tier failed too): :class:`DeadLetterWriter` writes it to
  ``dlq.<original topic>``, bytes intact.

With ``max_age_s`` (the sinks), exhausting the tiers is not a reason to give up: a transient
failure after the last tier goes to the last tier again, and only a record older than
``max_age_s`` (by its original Kafka timestamp) is dead-lettered. A stage that can tell its whole
target is down does better still: it raises :class:`interlock.stage.TargetUnavailableError`, and the
record waits in its partition instead of going round the tiers.

Retry headers (UTF-8 text), added to the original headers:

====================================  =======================================================
``interlock.retry.attempt``           attempts made so far (= the tier n of ``retry.<t>.<n>``)
``interlock.retry.not_before``        do not try again before (ms since the epoch)
``interlock.retry.reason``            reason code of the last failure
``interlock.retry.error.message``     its message (first 1 kB)
``interlock.retry.original.topic``    topic the record was first read from
``interlock.retry.original.partition`` its partition there
``interlock.retry.original.offset``   its offset there
====================================  =======================================================

Because a retried record carries its original coordinates, everything that happens to it later
(another retry, a dead letter) points at the ORIGINAL topic: ``retry.<t>.2`` and ``dlq.<t>``,
never ``dlq.retry.<t>.1``. :func:`restore` turns a retry-topic message back into the original
record (original topic, partition, offset, headers, timestamp) plus its next attempt number.
The consuming side lives in :mod:`interlock.stage`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from contracts.errors import InterlockError, Reason
from contracts.topics import TopicCatalog, retry_topic
from interlock.deadletter import DLQ_HEADER_PREFIX, DeadLetterWriter, failure_of
from interlock.instruments import Instruments
from interlock.kafka import produce
from interlock.records import Header, RawRecord

__all__ = [
    "RETRY_HEADER_PREFIX",
    "FailureRouter",
    "RetryInfo",
    "Route",
    "restore",
    "retry_info",
    "retry_topics",
    "tiers_from_catalog",
]

RETRY_HEADER_PREFIX = "interlock.retry."
Route = Literal["retry", "dead_letter"]


def retry_topics(topics: Iterable[str], tiers: int) -> list[str]:
    """``retry.<t>.1 .. retry.<t>.<tiers>`` for each topic (what a retry loop subscribes to)."""
    return [retry_topic(t, n) for t in topics for n in range(1, tiers + 1)]


def tiers_from_catalog(catalog: TopicCatalog, delays: Sequence[float]) -> Callable[[str], int]:
    """Retry tiers a topic has: its catalog ``retry_tiers``, capped by the configured delays.

    A topic absent from the catalog, or with ``retry_tiers: 0``, has no retry topics: its
    transient failures are dead-lettered at once (``error.class`` = ``transient``), to be replayed.
    """
    declared = {t.name: t.retry_tiers for t in catalog.topics if t.derived_from is None}

    def tiers(topic: str) -> int:
        return min(declared.get(topic, 0), len(delays))

    return tiers


@dataclass(frozen=True)
class RetryInfo:
    """What the retry headers of a record read from ``retry.<t>.<n>`` say."""

    attempt: int
    not_before_ms: int
    original_topic: str
    original_partition: int
    original_offset: int


def _text(headers: Sequence[Header], name: str) -> str | None:
    for key, value in headers:
        if key == name and value is not None:
            return value.decode("utf-8", errors="replace")
    return None


def _topic_and_tier(topic: str) -> tuple[str, int] | None:
    if not topic.startswith("retry."):
        return None
    base, _, tier = topic[len("retry.") :].rpartition(".")
    return (base, int(tier)) if base and tier.isdigit() else None


def retry_info(record: RawRecord) -> RetryInfo | None:
    """The retry state of a record read from a retry topic; ``None`` for a first-time record.

    Falls back on the topic name (``retry.<t>.<n>``) when headers are missing, so a record put
    on a retry topic by hand is still retried against ``<t>``.
    """
    parsed = _topic_and_tier(record.topic)
    if parsed is None:
        return None
    base, tier = parsed
    h = record.headers

    def number(name: str, default: int) -> int:
        raw = _text(h, RETRY_HEADER_PREFIX + name)
        try:
            return int(raw) if raw is not None else default
        except ValueError:
            return default

    return RetryInfo(
        attempt=number("attempt", tier),
        not_before_ms=number("not_before", 0),
        original_topic=_text(h, RETRY_HEADER_PREFIX + "original.topic") or base,
        original_partition=number("original.partition", record.partition),
        original_offset=number("original.offset", record.offset),
    )


def restore(record: RawRecord) -> tuple[RawRecord, int]:
    """The original record behind a retry-topic record, and the number of this next attempt.

    A record not from a retry topic is returned unchanged, as attempt 1.
    """
    info = retry_info(record)
    if info is None:
        return record, 1
    original = RawRecord(
        topic=info.original_topic,
        partition=info.original_partition,
        offset=info.original_offset,
        key=record.key,
        value=record.value,
        headers=tuple((k, v) for k, v in record.headers if not k.startswith(RETRY_HEADER_PREFIX)),
        timestamp_ms=record.timestamp_ms,
    )
    return original, info.attempt + 1


class FailureRouter:
    """Routes a failed record to its next retry tier or to its dead-letter topic.

    Args:
        producer: a confluent-kafka producer (acks=all). The router never flushes per record;
            the stage loop flushes once per batch before storing offsets.
        processor: name of the stage (``interlock.dlq.processor``, metric label).
        delays: seconds to wait before tier 1, 2, ... (``settings.retry.delays``).
        instruments: metrics (retries, dead letters), optional.
        tiers_for: retry tiers of an original topic (default: ``len(delays)`` for every topic;
            use :func:`tiers_from_catalog` so that topics without retry topics dead-letter).
        clock: seconds since the epoch (a test passes a fake one).
        dead_letters: the writer to use (default: one on the same producer).
        max_age_s: transient failures keep going round the last tier until the record is
            this old; None: dead-letter once the last tier failed.
    """

    def __init__(
        self,
        producer: Any,
        processor: str,
        delays: Sequence[float],
        instruments: Instruments | None = None,
        *,
        tiers_for: Callable[[str], int] | None = None,
        clock: Callable[[], float] = time.time,
        dead_letters: DeadLetterWriter | None = None,
        max_age_s: float | None = None,
    ) -> None:
        self.producer = producer
        self.max_age_s = max_age_s
        self.processor = processor
        self.delays = list(delays)
        self._instruments = instruments
        self._tiers_for = tiers_for or (lambda _topic: len(self.delays))
        self._clock = clock
        self._dead_letters = dead_letters or DeadLetterWriter(
            producer, processor, on_dead_letter=self._count_dead_letter
        )
        self._undelivered: list[str] = []

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._undelivered.append(f"{msg.topic()}: {err}")

    def _count_dead_letter(self, topic: str, reason: Reason) -> None:
        if self._instruments is not None:
            self._instruments.dead_letters.labels(
                self._instruments.service, topic, str(reason)
            ).inc()

    def tiers(self, topic: str) -> int:
        """How many retry tiers ``topic`` has (0: transient failures are dead-lettered)."""
        return min(self._tiers_for(topic), len(self.delays))

    def route(self, record: RawRecord, error: BaseException, attempt: int = 1) -> Route:
        """Send ``record`` (the ORIGINAL record, see :func:`restore`) to its next stop.

        ``attempt`` is the attempt that just failed (1 for the first delivery).
        """
        reason, transient = failure_of(error)
        tiers = self.tiers(record.topic)
        if transient and self.expired(record):
            error = self._too_old(record, error)
        elif transient and (attempt <= tiers or (self.max_age_s is not None and tiers > 0)):
            self._produce_retry(record, reason, error, attempt, min(attempt, tiers))
            return "retry"
        self._dead_letters.send(record, error, attempt=attempt, on_delivery=self._on_delivery)
        return "dead_letter"

    def expired(self, record: RawRecord) -> bool:
        """True when ``record`` is older than ``max_age_s`` (never without a max age)."""
        if self.max_age_s is None or record.timestamp_ms is None:
            return False
        return self._clock() - record.timestamp_ms / 1000 > self.max_age_s

    def _too_old(self, record: RawRecord, error: BaseException) -> InterlockError:
        reason, _ = failure_of(error)
        assert record.timestamp_ms is not None
        age = self._clock() - record.timestamp_ms / 1000
        too_old = InterlockError(
            f"still failing {age / 3600:.1f} h after it was written (max age "
            f"{(self.max_age_s or 0) / 3600:g} h): {error}",
            reason=reason,
            transient=True,
        )
        too_old.__cause__ = error
        return too_old

    def _produce_retry(
        self, record: RawRecord, reason: Reason, error: BaseException, attempt: int, tier: int
    ) -> None:
        not_before = int((self._clock() + self.delays[tier - 1]) * 1000)
        added = {
            "attempt": str(attempt),
            "not_before": str(not_before),
            "reason": str(reason),
            "error.message": str(error)[:1024],
            "original.topic": record.topic,
            "original.partition": str(record.partition),
            "original.offset": str(record.offset),
        }
        kept = [
            (k, v)
            for k, v in record.headers
            if not k.startswith((RETRY_HEADER_PREFIX, DLQ_HEADER_PREFIX))
        ]
        headers = kept + [(RETRY_HEADER_PREFIX + k, v.encode()) for k, v in added.items()]
        kwargs: dict[str, Any] = {
            "key": record.key,
            "value": record.value,
            "headers": headers,
            "on_delivery": self._on_delivery,
        }
        if record.timestamp_ms is not None:
            kwargs["timestamp"] = record.timestamp_ms
        topic = retry_topic(record.topic, tier)
        produce(self.producer, topic, **kwargs)
        if self._instruments is not None:
            self._instruments.retries.labels(
                self._instruments.service, record.topic, str(tier)
            ).inc()

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every routed record is acknowledged.

        Raises:
            InterlockError: (BROKER_UNAVAILABLE, transient) a retry or dead letter was not
                delivered; the caller must not store the offsets of the failed records.
        """
        remaining = int(self.producer.flush(timeout))
        failed, self._undelivered = self._undelivered, []
        if remaining or failed:
            detail = "; ".join(failed[:5]) or f"{remaining} record(s) still queued"
            raise InterlockError(
                f"retries/dead letters not delivered: {detail}",
                reason=Reason.BROKER_UNAVAILABLE,
                transient=True,
            )
