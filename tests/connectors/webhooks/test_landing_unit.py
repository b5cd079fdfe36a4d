"""Landing without a broker: delivery reports come in bulk, each settles its own request."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError

from connectors.webhooks.landing import (
    BrokerUnavailableError,
    Landing,
    RawRequest,
    RecordTooLargeError,
)

pytestmark = pytest.mark.unit
Report = Callable[[KafkaError | None, Any], None]


class BulkProducer:
    """Acknowledges everything produced since the last poll in one go, as a produce response
    does; a record whose key is in ``errors`` gets that error instead; ``silent`` never answers.
    """

    def __init__(self, errors: dict[bytes, int] | None = None, silent: bool = False) -> None:
        self.errors = errors or {}
        self.silent = silent
        self.produced: list[bytes] = []
        self.polls_with_reports = 0
        self.pollers: list[int] = []
        """The thread of each poll, in order."""
        self._polled = threading.Condition()
        self._pending: list[tuple[bytes, Report]] = []
        self._lock = threading.Condition()

    def produce(self, topic: str, *, key: bytes, on_delivery: Report, **_: Any) -> None:
        with self._lock:
            self.produced.append(key)
            if not self.silent:
                self._pending.append((key, on_delivery))
                self._lock.notify()

    def poll(self, timeout: float = 0) -> int:
        """As librdkafka's: waits up to ``timeout`` for delivery reports, then serves them all."""
        with self._polled:
            self.pollers.append(threading.get_ident())
            self._polled.notify_all()
        with self._lock:
            self._lock.wait_for(lambda: bool(self._pending), timeout=min(timeout, 0.05))
            pending, self._pending = self._pending, []
        for key, report in pending:
            code = self.errors.get(key)
            report(None if code is None else KafkaError(code), None)
        self.polls_with_reports += bool(pending)
        return len(pending)

    def wait_for_polls(self, enough: Callable[[list[int]], bool], timeout: float = 5.0) -> bool:
        """Wait until ``enough(pollers)`` holds; False if it did not within ``timeout``."""
        with self._polled:
            return self._polled.wait_for(lambda: enough(self.pollers), timeout)

    def list_topics(self, *_: Any, **__: Any) -> None:
        return None

    def flush(self, timeout: float = 0) -> int:
        return self.poll(0)

    def purge(self) -> None:
        return None


def _request(key: str) -> RawRequest:
    return RawRequest("raw.crm.standard", key, b"{}", [], 0)


def _landing(producer: BulkProducer, timeout_s: float = 5.0) -> Landing:
    return Landing(lambda _on_error: producer, timeout_s)  # type: ignore[arg-type,return-value]


def test_many_requests_acknowledged_together_all_return() -> None:
    producer = BulkProducer()
    landing = _landing(producer)

    async def land_all() -> None:
        await asyncio.gather(*(landing.land(_request(f"id-{i}")) for i in range(300)))

    try:
        asyncio.run(land_all())
    finally:
        landing.close()
    assert producer.produced == [f"id-{i}".encode() for i in range(300)]
    assert producer.polls_with_reports < 300  # reports came in bulk, not one per poll


def test_each_request_gets_its_own_delivery_error() -> None:
    errors = {
        b"big": KafkaError.MSG_SIZE_TOO_LARGE,
        b"full": KafkaError._QUEUE_FULL,
        b"late": KafkaError._MSG_TIMED_OUT,
    }
    producer = BulkProducer(errors)
    landing = _landing(producer)

    async def land_all() -> list[BaseException | None]:
        keys = ("ok-1", "big", "full", "late", "ok-2")
        return await asyncio.gather(
            *(landing.land(_request(k)) for k in keys), return_exceptions=True
        )

    try:
        ok_1, big, full, late, ok_2 = asyncio.run(land_all())
    finally:
        landing.close()
    assert (ok_1, ok_2) == (None, None)
    assert isinstance(big, RecordTooLargeError)
    assert isinstance(full, BrokerUnavailableError)
    assert full.landed == "no"  # never sent
    assert isinstance(late, BrokerUnavailableError)
    assert late.landed == "unknown"  # sent, not acknowledged


def test_a_report_that_never_comes_is_a_503_after_the_delivery_timeout() -> None:
    landing = _landing(BulkProducer(silent=True), timeout_s=0.05)
    started = time.monotonic()
    try:
        with pytest.raises(BrokerUnavailableError, match="did not acknowledge in time"):
            asyncio.run(landing.land(_request("lost")))
    finally:
        landing.close()
    assert time.monotonic() - started < 3.0


def test_while_a_request_waits_its_event_loop_polls_and_the_poll_thread_does_not() -> None:
    producer = BulkProducer(silent=True)
    landing = _landing(producer, timeout_s=0.3)
    loop_thread = threading.get_ident()
    polled: dict[str, int] = {}

    def by_loop(pollers: list[int], since: int = 0) -> int:
        return sum(1 for t in pollers[since:] if t == loop_thread)

    async def land_and_watch() -> None:
        waiting = asyncio.ensure_future(landing.land(_request("slow")))
        # past the poll thread's poll in progress when the request came (<= 50 ms)
        assert await asyncio.to_thread(producer.wait_for_polls, lambda p: by_loop(p) >= 60)
        first = len(producer.pollers)
        assert await asyncio.to_thread(producer.wait_for_polls, lambda p: by_loop(p, first) >= 50)
        during = producer.pollers[first:]
        polled["loop"] = by_loop(during)
        polled["thread"] = len(during) - polled["loop"]
        with pytest.raises(BrokerUnavailableError, match="did not acknowledge in time"):
            await waiting

    try:
        asyncio.run(land_and_watch())
    finally:
        landing.close()
    assert polled["thread"] == 0
    assert polled["loop"] >= 50


def test_an_event_loop_closed_with_a_request_in_flight_leaves_polling_to_the_thread() -> None:
    producer = BulkProducer(silent=True)
    landing = _landing(producer)
    loop_thread = threading.get_ident()

    async def polled_by_the_loop() -> bool:
        return await asyncio.to_thread(producer.wait_for_polls, lambda p: loop_thread in p)

    loop = asyncio.new_event_loop()
    try:
        abandoned = loop.create_task(landing.land(_request("abandoned")))
        assert loop.run_until_complete(polled_by_the_loop())
        loop.close()  # with the request still waiting for its report
        assert not abandoned.done()
        before = len(producer.pollers)
        assert producer.wait_for_polls(lambda p: any(t != loop_thread for t in p[before:])), (
            "the poll thread never polled again"
        )
    finally:
        landing.close()
