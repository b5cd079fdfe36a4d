"""Raw landing: a verified request is produced to ``raw.crm.<vendor>`` and awaited (acks=all).

The HTTP answer waits for Kafka's acknowledgement: ``produce`` with a delivery callback resolves
an asyncio future. While any request on an event loop awaits its report, that loop polls the
producer itself every millisecond, so the reports are served on the thread whose requests wait
for them: no thread hand-over and no contention for the GIL per report. The same ticks fail a
request whose report never came. When nothing is in flight a background thread polls instead,
for the producer's errors; a report it happens to serve is handed to its loop with the others
of the same poll (one ``call_soon_threadsafe`` per poll, not one per record).
``message.timeout.ms`` bounds the wait, so an unreachable broker gives a 503, not a hang.

A raw record is the request body byte for byte, keyed by the webhook id (a HubSpot request by
the company it is about, so that one company's requests keep their order), with headers
(``interlock.webhook.*``: source, vendor, id, received_at ms, and the sender's non-secret
headers; signatures are never kept) and the receipt time as its timestamp.

Self-healing: an idempotent producer can fail fatally (librdkafka raises e.g. PRODUCER_FENCED
from ``poll``; every later ``produce`` fails with ``_FATAL``), or the broker answers each of its
records with PRODUCER_FENCED or an invalid epoch without librdkafka calling it fatal. The poll
thread then replaces it with a new producer, so the next webhook lands again (the refused one is
produced once more on it); if new producers keep failing
(``recreate_limit`` in a row without a delivery in between) the service is declared dead
(:class:`~connectors.webhooks.health.ServiceHealth`) and the process exits non-zero. Readiness
(``/readyz``) is a metadata request to the broker every ``probe_interval_s``: the producer is
healthy and every partition of the raw topics had a leader at the last probe.

Whether a refused record landed anyway is in :attr:`BrokerUnavailableError.landed`: ``no`` when
the producer never sent it (queue full, producer failed, purged before sending), ``unknown``
when it was sent and not acknowledged in time (the broker may have written it).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from confluent_kafka import KafkaError, KafkaException, Producer

from connectors.webhooks.health import ServiceHealth
from connectors.webhooks.reports import Handover, LoopPoll
from contracts import InterlockError, Reason

__all__ = [
    "KEPT_HEADERS",
    "BrokerUnavailableError",
    "Landing",
    "ProducerFactory",
    "RawRequest",
    "RecordTooLargeError",
]

log = logging.getLogger(__name__)

#: Sender headers worth keeping (lower case); signatures and secrets never are.
KEPT_HEADERS = (
    "content-type",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "x-hubspot-request-timestamp",
)

ProducerFactory = Callable[[Callable[[KafkaError], None]], Producer]
"""Makes a new producer whose ``error_cb`` is the callback given."""

Landed = Literal["no", "unknown"]
_TOO_LARGE = frozenset((KafkaError.MSG_SIZE_TOO_LARGE,))
_NEVER_SENT = frozenset((KafkaError._PURGE_QUEUE, KafkaError._QUEUE_FULL, KafkaError._FATAL))
_STABLE_AFTER_S = 60.0
"""A producer that lived this long before failing resets the count of recreations."""


class BrokerUnavailableError(InterlockError):
    """Kafka did not acknowledge the raw record in time: the sender must retry (503).

    ``landed`` says whether the record may still be on the raw topic (``unknown``) or surely
    is not (``no``).
    """

    reason = Reason.BROKER_UNAVAILABLE
    transient = True

    def __init__(self, message: str, *, landed: Landed = "unknown") -> None:
        super().__init__(message)
        self.landed = landed


class RecordTooLargeError(InterlockError):
    """The body is larger than Kafka takes in one record (413): retrying cannot help."""

    reason = Reason.VALIDATION_FAILED
    transient = False


@dataclass(frozen=True)
class RawRequest:
    """A verified webhook request, as it lands on its raw topic."""

    topic: str
    key: str
    body: bytes
    headers: Sequence[tuple[str, bytes]]
    received_at_ms: int


_BROKEN_PRODUCER = frozenset(
    (
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.INVALID_PRODUCER_ID_MAPPING,
        KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
    )
)
"""Broker answers that this producer's id or epoch is no longer valid. librdkafka does not
always flag them fatal: after a long broker stall Tansu answers every produce of the old
idempotent producer with PRODUCER_FENCED as a plain delivery error, for good. No retry of the
same producer can land a record again, so they are handled like a fatal error."""


class _ProducerBrokenError(Exception):
    """The broker refused a record because its producer is no longer valid: not written."""

    def __init__(self, err: KafkaError, generation: int) -> None:
        super().__init__(err.str())
        self.err = err
        self.generation = generation


def _not_acknowledged() -> BaseException:
    return BrokerUnavailableError("broker did not acknowledge in time")


def _is_fatal(err: KafkaError) -> bool:
    return bool(err.fatal()) or err.code() == KafkaError._FATAL or err.code() in _BROKEN_PRODUCER


class Landing:
    """Produces raw requests and awaits their acknowledgement; replaces a fatally failed producer.

    Args:
        new_producer: makes a producer (at start and after each fatal error).
        timeout_s: the producer's delivery timeout (``message.timeout.ms``), seconds.
        probe_topics: the raw topics whose partitions must have a leader to be ready.
        probe_interval_s: seconds between broker probes.
        probe_timeout_s: longest wait for a probe's answer.
        recreate_limit: recreations in a row (without a delivery in between) before giving up.
        health: where readiness is registered and a death is reported.
    """

    def __init__(
        self,
        new_producer: ProducerFactory,
        timeout_s: float,
        *,
        probe_topics: Sequence[str] = (),
        probe_interval_s: float = 2.0,
        probe_timeout_s: float = 1.0,
        recreate_limit: int = 5,
        health: ServiceHealth | None = None,
    ) -> None:
        self._new_producer = new_producer
        self._timeout_s = timeout_s
        self._probe_topics = list(probe_topics)
        self._probe_interval_s = probe_interval_s
        self._probe_timeout_s = probe_timeout_s
        self._recreate_limit = recreate_limit
        self.health = health or ServiceHealth()
        self._generation = 0
        """Which producer is in use: a fatal error of an older one is old news."""
        self._producer = new_producer(self._error_callback(0))
        self._fatal: KafkaError | None = None
        self._streak = 0
        self._born = time.monotonic()
        self._probe: tuple[float, str | None] | None = None
        self.recreated = 0
        """How many times the producer was replaced after a fatal error."""
        self._stop = threading.Event()
        self._handover = Handover()
        self._loop_polls: dict[asyncio.AbstractEventLoop, LoopPoll] = {}
        """The event loops polling the producer now (those with requests in flight)."""
        self.health.add_check("landing", self.not_ready)
        self._thread = threading.Thread(target=self._poll, name="landing-poll", daemon=True)
        self._prober = threading.Thread(target=self._probe_loop, name="landing-probe", daemon=True)
        self._thread.start()
        self._prober.start()

    @property
    def producer(self) -> Producer:
        """The producer in use now (a new one after each fatal error)."""
        return self._producer

    def _error_callback(self, generation: int) -> Callable[[KafkaError], None]:
        def on_error(err: KafkaError) -> None:
            if _is_fatal(err):
                self._mark_fatal(err, generation)
            else:
                log.debug("landing producer: %s", err)

        return on_error

    def _mark_fatal(self, err: KafkaError, generation: int) -> None:
        if generation == self._generation and self._fatal is None:
            log.error("landing producer failed fatally: %s", err)
            self._fatal = err

    # -- the poll thread -------------------------------------------------------------------

    def _poll(self) -> None:
        try:
            while not self._stop.is_set():
                if self._loops_polling():  # they serve the reports; this thread heals
                    self._stop.wait(0.05)
                else:
                    self._poll_once(0.05)
                if self._fatal is not None:
                    self._recreate()
                self._handover.hand_over()
        except Exception as exc:  # without this thread no delivery is ever acknowledged
            self.health.fail("landing", f"poll thread failed: {exc!r}")
            raise

    def _poll_once(self, timeout: float) -> None:
        generation = self._generation
        try:
            self._producer.poll(timeout)
        except KafkaException as exc:
            err = exc.args[0]
            if isinstance(err, KafkaError) and _is_fatal(err):
                self._mark_fatal(err, generation)
            else:
                log.warning("landing producer: %s", exc)

    def _loops_polling(self) -> bool:
        """Whether a running event loop polls the producer (one closed with requests in
        flight, as at the end of ``asyncio.run``, polls no more)."""
        return any(not loop.is_closed() for loop in list(self._loop_polls))

    def poll_on_loop(self) -> None:
        """Serve the reports that are ready, on the calling event loop's thread (no wait)."""
        self._poll_once(0)

    def stopped_polling(self, loop: asyncio.AbstractEventLoop) -> None:
        """``loop`` has no request in flight any more: the poll thread takes over."""
        del self._loop_polls[loop]

    def _recreate(self) -> None:
        """Replace the failed producer; give up (service dead) after too many in a row."""
        now = time.monotonic()
        if now - self._born > _STABLE_AFTER_S:
            self._streak = 0
        if self._streak >= self._recreate_limit:
            self.health.fail(
                "landing",
                f"producer failed fatally {self._streak} times in a row (last: {self._fatal})",
            )
            self._stop.set()
            return
        if self._streak:  # a new producer failed again at once: do not spin
            self._stop.wait(min(0.5 * 2**self._streak, 10.0))
        self._streak += 1
        why = self._fatal
        try:
            fresh = self._new_producer(self._error_callback(self._generation + 1))
        except Exception as exc:
            log.error("cannot create a new landing producer: %s", exc)
            self._born = time.monotonic()  # counts as a producer that failed at once
            return  # the next poll tries again (still fatal), counted by the streak
        old, self._producer = self._producer, fresh
        self._generation += 1
        self._born = time.monotonic()
        self._fatal = None
        self.recreated += 1
        log.warning("landing producer replaced after a fatal error (%s)", why)
        self._retire(old)

    @staticmethod
    def _retire(old: Producer) -> None:
        """Fail what the old producer still holds (purged: never sent), then let it go.

        It is not closed here: another thread may be inside a call on it; it is destroyed when
        the last reference to it goes.
        """
        for step in (old.purge, lambda: old.poll(0), lambda: old.flush(0)):
            try:
                step()
            except KafkaException as exc:
                log.debug("retiring the failed producer: %s", exc)

    # -- readiness ---------------------------------------------------------------------------

    def _probe_loop(self) -> None:
        try:
            while not self._stop.is_set():
                self._probe_once()
                self._stop.wait(self._probe_interval_s)
        except Exception as exc:
            self.health.fail("landing", f"probe thread failed: {exc!r}")
            raise

    def _probe_once(self) -> None:
        producer = self._producer
        why: str | None = None
        try:
            topics: list[str | None] = [*self._probe_topics] or [None]
            for topic in topics:
                metadata = producer.list_topics(topic, timeout=self._probe_timeout_s)
                if topic is None:
                    continue
                found = metadata.topics.get(topic)
                if found is None or found.error is not None:
                    why = f"topic {topic} is not available: {found.error if found else 'absent'}"
                    break
                if not found.partitions or any(p.leader < 0 for p in found.partitions.values()):
                    why = f"a partition of {topic} has no leader"
                    break
        except KafkaException as exc:
            why = f"broker did not answer a metadata request: {exc.args[0]}"
        self._probe = (time.monotonic(), why)

    def not_ready(self) -> str | None:
        """Why no record can be landed now; None when one can."""
        if self._fatal is not None:
            return f"producer failed fatally ({self._fatal.str()}); a new one is being made"
        if self._stop.is_set():
            return "stopped"
        if self._probe is None:
            return "the broker was not probed yet"
        at, why = self._probe
        if why is not None:
            return why
        age = time.monotonic() - at
        if age > 3 * self._probe_interval_s + self._probe_timeout_s:
            return f"the last broker probe is {age:.0f} s old"
        return None

    # -- landing -----------------------------------------------------------------------------

    async def land(self, request: RawRequest) -> None:
        """Produce ``request`` and return once the broker acknowledged it (acks=all).

        A record the broker refused because its producer is no longer valid (fenced, a stale
        epoch) was not written: it is produced once more on the producer that replaces it,
        within the same delivery timeout, so the sender is not failed for the producer's sake.

        Raises:
            BrokerUnavailableError: not acknowledged within the delivery timeout.
            RecordTooLargeError: larger than the producer or the broker takes.
        """
        deadline = time.monotonic() + self._timeout_s
        try:
            await self._land_once(request, retry_broken=True)
        except _ProducerBrokenError as exc:
            if not await self._replaced(exc.generation, deadline):
                raise BrokerUnavailableError(
                    f"raw landing failed: {exc.err}; the producer is being replaced", landed="no"
                ) from None
            await self._land_once(request, retry_broken=False)

    async def _replaced(self, generation: int, deadline: float) -> bool:
        """Wait until the producer of ``generation`` is replaced; False: not before ``deadline``."""
        while self._generation == generation:
            if self._stop.is_set() or time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def _land_once(self, request: RawRequest, *, retry_broken: bool) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        generation, producer = self._generation, self._producer
        on_loop = threading.get_ident()

        def resolve(err: KafkaError | None, _msg: Any) -> None:
            if err is None:
                self._streak = 0  # this producer works: a later failure starts over
            elif _is_fatal(err):
                self._mark_fatal(err, generation)

            def settle() -> None:
                if future.done():
                    return
                if err is None:
                    future.set_result(None)
                elif err.code() in _TOO_LARGE:
                    future.set_exception(RecordTooLargeError(f"raw record refused: {err.str()}"))
                elif retry_broken and err.code() in _BROKEN_PRODUCER:
                    future.set_exception(_ProducerBrokenError(err, generation))
                else:
                    landed: Landed = "no" if err.code() in _NEVER_SENT else "unknown"
                    future.set_exception(
                        BrokerUnavailableError(f"raw landing failed: {err}", landed=landed)
                    )

            if threading.get_ident() == on_loop and loop.is_running():  # the loop's own poll
                settle()
            else:  # served by the poll thread, or by close()
                self._handover.add(loop, settle)

        if self._fatal is not None:
            raise BrokerUnavailableError(
                "the producer failed and is being replaced; not landed", landed="no"
            )
        try:
            producer.produce(
                request.topic,
                key=request.key.encode(),
                value=request.body,
                headers=list(request.headers),
                timestamp=request.received_at_ms,
                on_delivery=resolve,
            )
        except BufferError as exc:
            raise BrokerUnavailableError("producer queue is full; not landed", landed="no") from exc
        except KafkaException as exc:
            err = exc.args[0]
            if isinstance(err, KafkaError) and err.code() in _TOO_LARGE:
                raise RecordTooLargeError(f"raw record refused: {err.str()}") from exc
            if isinstance(err, KafkaError) and _is_fatal(err):
                self._mark_fatal(err, generation)
            raise BrokerUnavailableError(
                f"producer refused the record: {exc}; not landed", landed="no"
            ) from exc
        polling = self._loop_polls.get(loop)
        if polling is None:
            polling = self._loop_polls[loop] = LoopPoll(
                loop, self.poll_on_loop, self.stopped_polling, _not_acknowledged
            )
            loop.call_soon(polling.tick)
        polling.watch(future, time.monotonic() + self._timeout_s + 1.0)
        await future

    def close(self, timeout: float = 5.0) -> None:
        """Stop polling and probing and flush what is still queued."""
        self._stop.set()
        self._thread.join(timeout)
        self._prober.join(timeout)
        try:
            self._producer.flush(timeout)
        except KafkaException as exc:
            log.warning("flushing the landing producer: %s", exc)
        self._handover.hand_over()
