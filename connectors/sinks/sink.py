"""The outbound sink: command topics → target HTTP APIs, retried without blocking a partition.

Runs on :class:`interlock.stage.StageLoop`, subscribed to the command topics AND their
``retry.<topic>.<n>`` tiers. A 5xx, 408, 425, 429, timeout or connection error is transient
(``SINK_UNAVAILABLE``). It is first retried inside the call a few times with a short, jittered,
doubling backoff (``inline_retries``): most 503s of a busy API are blips. Any other 4xx is
``SINK_REJECTED``, dead-lettered at once.

What a transient failure that outlives the inline retries means is not known at once: the
target may be down, or only this command may fail. So the command first waits in its partition:
the call raises :class:`interlock.stage.TargetUnavailableError`, the loop pauses that partition
at the command (the other partitions go on) and hands it over again after ``first_hold_s`` or
the target's ``Retry-After``. If it fails again while the target's circuit breaker is closed,
it is a per-record failure: the router moves it to the next retry tier (delays from
``settings.retry.delays``, plus jitter) and later commands go on. Once the breaker is open, the
target is down as a whole: none of its commands is sent, none goes round the retry tiers; each
of its partitions stays paused at its first waiting command until the breaker lets a probe
through, and resumes when the target answers again. The rest of a key's chain in a batch waits
with a held command, so the commands of one order or deal go out in order through an outage.
A command is dead-lettered only when rejected, or when it is older than ``sinks.max_age_s``
(past the last tier, a per-record failure goes round the last tier again until then).
The failure that opened a breaker is logged once, with the target, the status and the error;
its closing too; failed probes in between at most every 30 s.
Every attempt sends the same ``Idempotency-Key`` (the command's event_id).

Within a batch, :meth:`CommandSink.handle_batch` sends calls concurrently (coroutines on the HTTP
client's event loop, which the stage loop's thread runs until the batch is done; at most
``concurrency`` calls in flight per target) while commands with the same Kafka key (the same
order or deal) are sent one after the other in offset order. An accepted create-order observes
``interlock_handoff_latency_seconds{flow="quote_to_order"}`` and an accepted update-deal
``{flow="status_to_crm"}``: now minus the command's ``occurred_at`` (the business event time).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from confluent_kafka.serialization import MessageField, SerializationContext

from connectors.sinks.breaker import CircuitBreaker
from connectors.sinks.contract import (
    REPORTED_KINDS,
    CommandKind,
    HttpCall,
    build_request,
    outcome_event,
)
from contracts import EventDeserializer, EventSerializer, InterlockError, OrderEvent, Reason
from interlock.httpclient import JSON_CONTENT_TYPE, Answer, HttpClient, TransportError, json_body
from interlock.instruments import CIRCUIT_STATES, Instruments
from interlock.kafka import produce
from interlock.logs import RateLimitedLog
from interlock.records import RawRecord
from interlock.stage import TargetUnavailableError

__all__ = ["CommandSink", "SinkTarget"]

log = logging.getLogger(__name__)

_TRANSIENT_STATUS = {408, 425, 429}
#: Handoff flow observed when a target accepts a command of this kind.
_HANDOFF_FLOWS: dict[str, str] = {"create-order": "quote_to_order", "update-deal": "status_to_crm"}


class _TransientError(Exception):
    """A transient failure of one attempt: the error to raise, and the server's Retry-After."""

    def __init__(self, error: InterlockError, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delay-seconds or HTTP-date form)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class SinkTarget:
    """One target API: base URL, auth headers, its breaker."""

    def __init__(
        self,
        name: str,
        base_url: str,
        token: str | None,
        breaker: CircuitBreaker,
        concurrency: int = 8,
    ):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.breaker = breaker
        self.slots = asyncio.Semaphore(concurrency)  # bound to the client's loop at first use


class CommandSink:
    """The StageLoop handler of the sinks, and the batch-end flush of its outcome events.

    Args:
        client: the pooled HTTP client (timeouts set on it); its loop runs the calls.
        targets: ``erp`` and/or ``crm``.
        routes: command topic → command kind.
        producer: for outcome events (acks=all, linger).
        deserializer / serializer: command decoding, OrderEvent encoding.
        instruments: metrics.
        outcome_topic: where outcomes go (``canonical.order.v1``).
        clock: now, for outcome events and handoff latency.
        inline_retries: quick retries of a transient failure within the call (0: none).
        inline_backoff_s: first inline retry's delay; doubles per retry, with full jitter.
        inline_max_wait_s: longest ``Retry-After`` waited inline; longer ones are waited
            with the partition paused.
        first_hold_s: how long a command whose inline retries failed waits in its paused
            partition (unless the target said ``Retry-After``) before it is tried once more;
            failing again while the breaker is closed, it goes to the retry tiers.
    """

    def __init__(
        self,
        client: HttpClient,
        targets: Mapping[str, SinkTarget],
        routes: Mapping[str, CommandKind],
        producer: Any,
        deserializer: EventDeserializer,
        serializer: EventSerializer,
        instruments: Instruments,
        *,
        outcome_topic: str = "canonical.order.v1",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        inline_retries: int = 0,
        inline_backoff_s: float = 0.05,
        inline_max_wait_s: float = 0.5,
        first_hold_s: float = 1.0,
    ) -> None:
        self._client = client
        self._targets = targets
        self._routes = routes
        self._producer = producer
        self._deserializer = deserializer
        self._serializer = serializer
        self._instruments = instruments
        self._outcome_topic = outcome_topic
        self._clock = clock
        self._undelivered: list[str] = []
        self._inline_retries = max(0, inline_retries)
        self._inline_backoff_s = inline_backoff_s
        self._inline_max_wait_s = inline_max_wait_s
        self._first_hold_s = first_hold_s
        self._opened_at: dict[str, float] = {}
        self._outcome_context = SerializationContext(outcome_topic, MessageField.VALUE)
        self._quiet = RateLimitedLog(log)
        for name, target in targets.items():
            self._show_breaker(name, target.breaker)

    def _show_breaker(self, name: str, breaker: CircuitBreaker) -> None:
        metrics = self._instruments
        metrics.child(metrics.circuit_breaker_state, name).set(CIRCUIT_STATES[breaker.state])

    def _count(self, target: str, outcome: str) -> None:
        metrics = self._instruments
        metrics.child(metrics.sink_calls, target, outcome).inc()

    async def send(self, record: RawRecord) -> None:
        """Send one command; raise on failure (the loop routes it)."""
        kind = self._routes.get(record.topic)
        if kind is None:
            raise InterlockError(
                f"no command route for {record.topic}", reason=Reason.SINK_REJECTED
            )
        command = self._deserializer(record.value)
        if not isinstance(command, OrderEvent):
            raise InterlockError(
                f"{record.topic} carries {type(command).__name__}, not an OrderEvent",
                reason=Reason.VALIDATION_FAILED,
            )
        call = build_request(kind, command)
        response = await self._send(call)
        now = self._clock()
        flow = _HANDOFF_FLOWS.get(kind)
        if flow is not None:
            latency = max(0.0, (now - command.occurred_at).total_seconds())
            metrics = self._instruments
            metrics.child(metrics.handoff_latency_seconds, flow).observe(latency)
        if kind in REPORTED_KINDS:  # the answer is read only when an outcome reports it
            try:
                answer = response.json()
            except ValueError:
                answer = None
            outcome = outcome_event(kind, command, answer, now)
            if outcome is not None:
                self._publish(outcome)

    def handle_batch(self, records: Sequence[RawRecord]) -> list[BaseException | None]:
        """Send a batch's commands concurrently; the failure (or ``None``) of each, in order.

        Records with the same key (an order's or a deal's commands) form one chain, sent in
        order by one coroutine; chains run concurrently on the HTTP client's loop, bounded per
        target by its semaphore.
        """
        return self._client.run(self._send_batch(records))

    async def _send_batch(self, records: Sequence[RawRecord]) -> list[BaseException | None]:
        results: list[BaseException | None] = [None] * len(records)
        chains: OrderedDict[bytes | None, list[int]] = OrderedDict()
        for index, record in enumerate(records):
            chains.setdefault(record.key, []).append(index)

        async def run(indexes: list[int]) -> None:
            held: TargetUnavailableError | None = None
            for index in indexes:
                if held is not None:  # a key's later commands wait with the held one
                    results[index] = held
                    continue
                try:
                    await self.send(records[index])
                except TargetUnavailableError as exc:
                    results[index] = held = exc
                except Exception as exc:  # routed by the caller, in offset order
                    results[index] = exc

        await asyncio.gather(*(run(indexes) for indexes in chains.values()))
        return results

    async def _send(self, call: HttpCall) -> Answer:
        """The accepting answer; retried inline while transient and allowed, else raises."""
        attempt = 0
        while True:
            try:
                return await self._attempt(call)
            except _TransientError as failure:
                breaker = self._targets[call.target].breaker
                if breaker.state != "closed":  # the target is down: hold, do not burn tiers
                    raise TargetUnavailableError(
                        f"{call.target} is unavailable (circuit breaker open): {failure.error}",
                        resume_in_s=breaker.retry_in(),
                    ) from failure.error
                wait = self._inline_wait(attempt, failure.retry_after)
                if wait is None:  # the target, or this command? wait once, then the tiers
                    raise TargetUnavailableError(
                        str(failure.error),
                        resume_in_s=failure.retry_after or self._first_hold_s,
                        once=True,
                    ) from failure.error
                self._count(call.target, "inline_retry")
                await asyncio.sleep(wait)
                attempt += 1

    def _inline_wait(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds before inline retry ``attempt + 1``, or None: leave it to the retry tiers."""
        if attempt >= self._inline_retries:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self._inline_max_wait_s else None
        return random.uniform(0, self._inline_backoff_s * 2**attempt)

    async def _attempt(self, call: HttpCall) -> Answer:
        target = self._targets.get(call.target)
        if target is None:
            raise InterlockError(
                f"no {call.target} target configured",
                reason=Reason.SINK_UNAVAILABLE,
                transient=True,
            )
        breaker = target.breaker
        if not breaker.allow():
            self._count(call.target, "unavailable")
            self._show_breaker(call.target, breaker)
            raise TargetUnavailableError(
                f"{call.target} circuit breaker is open", resume_in_s=breaker.retry_in()
            )
        started = time.perf_counter()
        try:
            async with target.slots:
                response = await self._client.request(
                    call.method,
                    target.base_url + call.path,
                    content=json_body(call.body),
                    headers={
                        **target.headers,
                        "Idempotency-Key": call.idempotency_key,
                        "Content-Type": JSON_CONTENT_TYPE,
                    },
                )
        except TransportError as exc:  # timeouts, refused and reset connections
            detail = f"{call.method} {call.path}: {exc}"
            self._failed(call, breaker, "unavailable", detail)
            error = InterlockError(detail, reason=Reason.SINK_UNAVAILABLE, transient=True)
            error.__cause__ = exc
            raise _TransientError(error, None) from exc
        finally:
            metrics = self._instruments
            metrics.child(metrics.sink_call_seconds, call.target).observe(
                time.perf_counter() - started
            )
        status = response.status_code
        if status >= 500 or status in _TRANSIENT_STATUS:
            detail = self._answered(call, response)
            self._failed(call, breaker, "retry", detail)
            error = InterlockError(detail, reason=Reason.SINK_UNAVAILABLE, transient=True)
            raise _TransientError(error, _retry_after(response.headers.get("retry-after")))
        if breaker.success():
            opened_at = self._opened_at.pop(call.target, None)
            down = time.monotonic() - opened_at if opened_at is not None else 0.0
            log.warning(
                "%s circuit breaker closed: %s %s answered %d after %.1f s; held commands go out",
                call.target,
                call.method,
                call.path,
                status,
                down,
            )
        self._show_breaker(call.target, breaker)
        if status >= 400:
            self._count(call.target, "rejected")
            raise InterlockError(self._answered(call, response), reason=Reason.SINK_REJECTED)
        self._count(call.target, "ok")
        return response

    @staticmethod
    def _answered(call: HttpCall, response: Answer) -> str:
        """What a refusing answer said, for its error (made only when the call failed)."""
        return f"{call.method} {call.path} answered {response.status_code}: {response.text[:500]}"

    def _failed(self, call: HttpCall, breaker: CircuitBreaker, outcome: str, detail: str) -> None:
        """Count a failed call; say why when it opened the breaker (once per opening)."""
        if breaker.failure():
            if call.target not in self._opened_at:
                self._opened_at[call.target] = time.monotonic()
                log.warning(
                    "%s circuit breaker opened after %d failures in a row; its commands wait "
                    "in their partitions until it answers again. Last failure: %s",
                    call.target,
                    breaker.threshold,
                    detail,
                )
            else:
                self._quiet.log(
                    logging.WARNING,
                    ("probe", call.target),
                    "%s still unavailable after %.0f s (probe failed: %s)",
                    call.target,
                    time.monotonic() - self._opened_at[call.target],
                    detail,
                )
        self._show_breaker(call.target, breaker)
        self._count(call.target, outcome)

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._undelivered.append(f"{msg.topic()}: {err}")

    def _publish(self, event: OrderEvent) -> None:
        topic = self._outcome_topic
        value = self._serializer(event, self._outcome_context)
        kwargs: dict[str, Any] = {
            "key": event.payload.account_id.encode(),
            "value": value,
            "headers": [("interlock.event_type", event.event_type.encode())],
            "on_delivery": self._on_delivery,
        }
        produce(self._producer, topic, **kwargs)
        metrics = self._instruments
        metrics.child(metrics.events_produced, metrics.service, topic).inc()

    def end_batch(self, timeout: float = 30.0) -> None:
        """Flush outcome events before the batch's offsets are stored.

        Raises:
            InterlockError: (BROKER_UNAVAILABLE) outcomes not acknowledged; the batch is consumed
                again and the target answers the repeated calls idempotently.
        """
        remaining = int(self._producer.flush(timeout))
        failed, self._undelivered = self._undelivered, []
        if remaining or failed:
            raise InterlockError(
                f"sink outcomes not delivered: {'; '.join(failed[:3]) or remaining}",
                reason=Reason.BROKER_UNAVAILABLE,
                transient=True,
            )
