"""The one loop every stateless Kafka stage runs, and the one rule for when its input is committed.

Webhook mapping, CDC, the sinks, replay and the retry loops all run :class:`BatchLoop`
(``interlock.batchloop``)::

    consume a batch → handle it → settle its outputs → store its offsets

(stored offsets are committed by the consumer's auto-commit, and on close). Only the handling
differs: a *batch handler* gets the batch's messages and the :class:`Batch` they belong to. The
CDC stage maps the whole batch itself (``connectors.cdc.consumer``); :class:`StageLoop` is the
guarded handler that calls ``handler(record)`` record by record and routes each failure.

**The settle rule.** A batch's offsets are stored once every record it produced has been
acknowledged by the broker and every older batch's offsets are stored; a crash therefore replays
at most the batches not yet stored (at-least-once; deterministic event ids make the replay
harmless downstream). What a batch produced is acknowledged one of two ways:

- counted: produced with the batch's delivery callback ``batch.ack`` and added to ``batch.left``
  (the CDC stage's canonical events and dead letters);
- flushed: a batch marked ``batch.flush`` waits for the producer's flush before it is stored
  (records routed to retry or dead-letter topics, outputs produced without the callback).

``max_in_flight`` is how many handled batches may still wait for acknowledgements when
:meth:`BatchLoop.run_once` returns. With 0, the default, each batch is settled before the next is
consumed: flush per batch. The CDC stage keeps two, so batch N+1 is mapped while batch N's
deliveries complete. When a consume returns nothing, and when the loop stops
(:meth:`BatchLoop.drain`), every batch is settled. An output that is not acknowledged stops the
loop with its batch unstored, so the batch is read again by whoever consumes the partition next.

**Guarded records** (:class:`StageLoop`). ``handler(record)`` runs inside try/except; a failure
is routed by :class:`~interlock.retry.FailureRouter` (retry tier or dead letter) and the
partition goes on. The same loop consumes retry topics. A record read from ``retry.<t>.<n>`` is
handed to the handler as the ORIGINAL record (topic ``<t>``, its partition, offset, headers,
timestamp) once its ``interlock.retry.not_before`` has passed. Until then its partition is paused
and rewound to it (``consumer.pause`` + ``consumer.seek``) and resumed when due, so a waiting
retry blocks neither the source partitions nor other retry partitions. Tier topics hold one delay
each, so within a partition the records become due in order and waiting on the head is enough.

How a stage wires it (main stream and retries share one handler and one router)::

    router = FailureRouter(producer, "sink-erp", settings.retry.delays, instruments,
                           tiers_for=tiers_from_catalog(load_catalog(), settings.retry.delays))
    consumer = make_consumer(settings, "sink-erp")
    consumer.subscribe(with_retry_topics(["commands.erp.create-order"], router))
    run_stage(consumer, handle_command, router, stop=stop_event, instruments=instruments,
              on_batch_end=lambda: producer.flush(30))

``handler(record)`` raises :class:`~contracts.errors.InterlockError` (``reason``, ``transient``)
for a known failure; any other exception is a permanent ``PROCESSING_FAILED``. Its outputs are
not counted, so a batch with stored offsets is flushed (``router.flush``); ``on_batch_end``
flushes the stage's own producer first. A handler whose target is down as a whole (the sinks,
while a circuit breaker is open) raises :class:`TargetUnavailableError` instead: the record is
neither retried nor dead-lettered but stays in its partition, which is paused and rewound to it;
the later records of that partition in the batch are left for then too; other partitions go on;
after ``resume_in_s`` the same record comes again. A record held past the router's ``max_age_s``
is dead-lettered. A stage whose main path is not a Kafka loop (an HTTP receiver, a Faust agent)
routes its failures with ``router.route(record, error)`` and runs :func:`run_retry_loop` on the
retry topics in a thread. The handler must then be safe to call from both places.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from contracts.errors import InterlockError, Reason
from interlock.batchloop import Batch, BatchHandler, BatchLoop, consume_available
from interlock.instruments import Instruments
from interlock.logs import RateLimitedLog
from interlock.records import RawRecord
from interlock.retry import FailureRouter, restore, retry_info, retry_topics

__all__ = [
    "Batch",
    "BatchHandler",
    "BatchLoop",
    "Handler",
    "StageLoop",
    "StageStats",
    "TargetUnavailableError",
    "consume_available",
    "run_retry_loop",
    "run_stage",
    "with_retry_topics",
]

log = logging.getLogger(__name__)

Handler = Callable[[RawRecord], None]


class TargetUnavailableError(InterlockError):
    """What a record needs is down as a whole: keep the record in its partition, pause that
    partition, and try the same record again in ``resume_in_s`` seconds.

    ``once``: it is not known yet whether the target or the record is at fault. The record is
    held once; if the same record fails so again, it is a per-record failure and is routed
    (retry tier) like any other transient failure.
    """

    reason = Reason.SINK_UNAVAILABLE
    transient = True

    def __init__(
        self,
        message: str,
        *,
        resume_in_s: float,
        once: bool = False,
        reason: Reason | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.resume_in_s = resume_in_s
        self.once = once


def with_retry_topics(topics: Iterable[str], router: FailureRouter) -> list[str]:
    """The topics plus every retry topic the router may send them to (what to subscribe to)."""
    names = list(topics)
    return names + [r for t in names for r in retry_topics([t], router.tiers(t))]


@dataclass
class StageStats:
    """What a loop did: records handled fine, sent to retry, dead-lettered; deferrals."""

    ok: int = 0
    retried: int = 0
    dead_lettered: int = 0
    deferred: int = 0
    held: int = 0
    """Times a partition was paused at a record (:class:`TargetUnavailableError`)."""
    outcomes: list[tuple[str, int, int, str]] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.ok + self.retried + self.dead_lettered


class StageLoop:
    """One consumer, one handler, one router: the guarded per-record batch handler, on its own
    :class:`BatchLoop` (``loop``) that settles every batch before the next (the body of
    :func:`run_stage`).

    Args:
        consumer: a confluent-kafka consumer, subscribed or assigned, with
            ``enable.auto.offset.store=False`` (``interlock.kafka.make_consumer``).
        handler: handles one record; raises on failure.
        router: where failures go.
        instruments: metrics, optional (``events_consumed``, ``processing_seconds``).
        stage: stage label for ``interlock_processing_seconds`` (default: router.processor).
        batch_size: records per ``consume`` call.
        poll_timeout: longest wait for a batch, seconds.
        on_batch_end: called after each batch, before offsets are stored (flush your own
            output producer here, so outputs are durable before the input is committed).
        clock: seconds since the epoch.
        record_outcomes: keep (topic, partition, offset, outcome) per record in the stats
            (for tests and diagnostics).
    """

    def __init__(
        self,
        consumer: Any,
        handler: Handler,
        router: FailureRouter,
        *,
        instruments: Instruments | None = None,
        stage: str | None = None,
        batch_size: int = 500,
        poll_timeout: float = 0.5,
        on_batch_end: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
        record_outcomes: bool = False,
    ) -> None:
        self.consumer = consumer
        self.handler = handler
        self.router = router
        self.stats = StageStats()
        self.loop = BatchLoop(
            consumer,
            router.producer,
            self._handle_batch,
            flush=router.flush,
            batch_size=batch_size,
            poll_timeout=poll_timeout,
            clock=clock,
        )
        self._instruments = instruments
        self._stage = stage or router.processor
        self._on_batch_end = on_batch_end
        self._clock = clock
        self._record_outcomes = record_outcomes
        self._held: dict[tuple[str, int], tuple[int, int]] = {}
        """Partitions held in this batch: (offset to come back to, resume at ms)."""
        self._held_once: dict[tuple[str, int], int] = {}
        """Per partition, the offset last held ``once`` (held again: a per-record failure)."""
        self._quiet = RateLimitedLog(log)

    def _defer(self, msg: Any, not_before_ms: int) -> None:
        self.loop.pause(msg.topic(), msg.partition(), msg.offset(), not_before_ms)
        self.stats.deferred += 1

    def run_once(self) -> int:
        """Consume, handle and settle one batch; returns how many records were handled."""
        return self.loop.run_once()

    def _handle_batch(self, msgs: list[Any], batch: Batch) -> int:
        blocked: set[tuple[str, int]] = set()
        done: dict[tuple[str, int], int] = {}
        handled = 0
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consume error: %s", err)
                continue
            tp = (msg.topic(), msg.partition())
            if tp in blocked:
                continue
            raw = RawRecord.from_message(msg)
            info = retry_info(raw)
            if info is not None and info.not_before_ms > int(self._clock() * 1000):
                self._defer(msg, info.not_before_ms)
                blocked.add(tp)
                continue
            self._handle(raw)
            if tp in self._held:
                blocked.add(tp)
                continue
            done[tp] = msg.offset() + 1
            handled += 1
        if self._on_batch_end is not None:
            self._on_batch_end()
        self._pause_held(done)
        batch.offsets = done
        batch.flush = bool(done)  # outputs and routed records are not counted: flush them
        return handled

    def _pause_held(self, done: dict[tuple[str, int], int]) -> None:
        """Rewind each held partition to its held record, pause it until it may resume."""
        held, self._held = self._held, {}
        for (topic, partition), (offset, resume_at_ms) in held.items():
            done[(topic, partition)] = offset  # what came before it is done
            try:
                self.loop.pause(topic, partition, offset, resume_at_ms)
            except KafkaException as exc:  # revoked meanwhile: the next owner reads it
                log.debug("hold %s[%d]: %s", topic, partition, exc)

    def _hold(
        self, raw: RawRecord, record: RawRecord, attempt: int, exc: TargetUnavailableError
    ) -> bool:
        """Hold ``raw``'s partition at it; False if it must be routed instead: too old to wait
        (dead letter), or held once already for a failure of its own (retry tier)."""
        if self.router.expired(record):
            return False
        tp = (raw.topic, raw.partition)
        if exc.once:
            if self._held_once.get(tp) == raw.offset:
                del self._held_once[tp]
                return False
            self._held_once[tp] = raw.offset
        resume_at = int((self._clock() + max(0.05, exc.resume_in_s)) * 1000)
        self._held[tp] = (raw.offset, resume_at)
        self.stats.held += 1
        self._quiet.log(
            logging.INFO,
            ("held", raw.topic, raw.partition),
            "%s[%d] paused at offset %d (attempt %d) for %.1f s: %s",
            raw.topic,
            raw.partition,
            raw.offset,
            attempt,
            exc.resume_in_s,
            exc,
        )
        return True

    def _handle(self, raw: RawRecord) -> None:
        if (raw.topic, raw.partition) in self._held:
            return  # after a held record: read again when the partition resumes
        record, attempt = restore(raw)
        started = time.perf_counter()
        try:
            self.handler(record)
            outcome = "ok"
            self.stats.ok += 1
        except Exception as exc:
            if isinstance(exc, TargetUnavailableError) and self._hold(raw, record, attempt, exc):
                return
            route = self.router.route(record, exc, attempt)
            if route == "retry":
                outcome = "retried"
                self.stats.retried += 1
            else:
                outcome = "dead_lettered"
                self.stats.dead_lettered += 1
            self._quiet.log(
                logging.INFO if route == "retry" else logging.WARNING,
                (record.topic, outcome, type(exc).__name__),
                "%s[%d]@%d attempt %d failed (%s): %s",
                record.topic,
                record.partition,
                record.offset,
                attempt,
                outcome,
                exc,
            )
        if self._record_outcomes:
            self.stats.outcomes.append((record.topic, record.partition, record.offset, outcome))
        if self._instruments is not None:
            metrics = self._instruments
            service = metrics.service
            metrics.child(metrics.events_consumed, service, raw.topic, outcome).inc()
            metrics.child(metrics.processing_seconds, service, self._stage).observe(
                time.perf_counter() - started
            )

    def run(self, stop: threading.Event) -> StageStats:
        """Loop until ``stop`` is set; returns the stats. Offsets stored so far are committed
        by the consumer (auto-commit, and ``close``) — the caller closes it."""
        self.loop.run(stop)
        return self.stats


def run_stage(
    consumer: Any,
    handler: Handler,
    router: FailureRouter,
    *,
    stop: threading.Event,
    **options: Any,
) -> StageStats:
    """Run the guarded batch loop until ``stop`` is set (options: see :class:`StageLoop`)."""
    return StageLoop(consumer, handler, router, **options).run(stop)


def run_retry_loop(
    consumer: Any,
    handler: Handler,
    router: FailureRouter,
    *,
    stop: threading.Event,
    **options: Any,
) -> StageStats:
    """The same loop on a consumer subscribed to retry topics only (``retry_topics(...)``).

    For stages whose first attempt does not come from a Kafka loop (webhook receiver, Faust
    agent): they call ``router.route(record, error)`` themselves, and this loop retries.
    """
    return StageLoop(consumer, handler, router, **options).run(stop)
