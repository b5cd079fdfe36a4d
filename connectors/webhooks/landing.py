"""Raw landing: a verified request is produced to ``raw.crm.<vendor>`` and awaited (acks=all).

The HTTP answer waits for Kafka's acknowledgement: ``produce`` with a delivery callback resolves
an asyncio future through ``loop.call_soon_threadsafe``; a background thread polls the producer.
``message.timeout.ms`` bounds the wait, so an unreachable broker gives a 503, not a hang.

A raw record is the request body byte for byte, keyed by the webhook id (a HubSpot request by
the company it is about, so that one company's requests keep their order), with headers
(``interlock.webhook.*``: source, vendor, id, received_at ms, and the sender's non-secret
headers; signatures are never kept) and the receipt time as its timestamp.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Producer

from contracts import InterlockError, Reason

__all__ = ["KEPT_HEADERS", "BrokerUnavailableError", "Landing", "RawRequest"]

#: Sender headers worth keeping (lower case); signatures and secrets never are.
KEPT_HEADERS = (
    "content-type",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "x-hubspot-request-timestamp",
)


class BrokerUnavailableError(InterlockError):
    """Kafka did not acknowledge the raw record in time: the sender must retry (503)."""

    reason = Reason.BROKER_UNAVAILABLE
    transient = True


@dataclass(frozen=True)
class RawRequest:
    """A verified webhook request, as it lands on its raw topic."""

    topic: str
    key: str
    body: bytes
    headers: Sequence[tuple[str, bytes]]
    received_at_ms: int


class Landing:
    """Produces raw requests and awaits their acknowledgement, one poll thread per producer."""

    def __init__(self, producer: Producer, timeout_s: float) -> None:
        self._producer = producer
        self._timeout_s = timeout_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="landing-poll", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    async def land(self, request: RawRequest) -> None:
        """Produce ``request`` and return once the broker acknowledged it (acks=all).

        Raises:
            BrokerUnavailableError: not acknowledged within the delivery timeout.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def resolve(err: KafkaError | None, _msg: Any) -> None:
            def settle() -> None:
                if future.done():
                    return
                if err is None:
                    future.set_result(None)
                else:
                    future.set_exception(BrokerUnavailableError(f"raw landing failed: {err}"))

            loop.call_soon_threadsafe(settle)

        try:
            self._producer.produce(
                request.topic,
                key=request.key.encode(),
                value=request.body,
                headers=list(request.headers),
                timestamp=request.received_at_ms,
                on_delivery=resolve,
            )
        except BufferError as exc:
            raise BrokerUnavailableError("producer queue is full") from exc
        try:
            await asyncio.wait_for(future, self._timeout_s + 1.0)
        except TimeoutError as exc:
            raise BrokerUnavailableError("broker did not acknowledge in time") from exc

    def close(self, timeout: float = 5.0) -> None:
        """Stop polling and flush what is still queued."""
        self._stop.set()
        self._thread.join(timeout)
        self._producer.flush(timeout)
