"""A sink target answering 503, 503, 201 is retried through the retry topics, never blocking.

Real parts: the broker fixture, a loopback HTTP server, httpx. The later commands on the same
partition reach the target before the retried one succeeds, and no dead letter is written.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from contracts.errors import InterlockError, Reason
from interlock.kafka import make_consumer as kafka_consumer
from interlock.kafka import make_producer
from interlock.records import RawRecord
from interlock.retry import FailureRouter
from interlock.settings import Settings
from interlock.stage import StageLoop, with_retry_topics
from tests.conftest import consume_n, end_offsets

pytestmark = pytest.mark.integration


class FlakyTarget:
    """Answers 503 to the first ``failures`` calls for ``flaky_key``, 201 otherwise."""

    def __init__(self, flaky_key: str, failures: int) -> None:
        self.flaky_key = flaky_key
        self.failures = failures
        self.calls: list[tuple[str, int]] = []
        self.called_at: list[float] = []
        self.created: list[str] = []
        self.lock = threading.Lock()

    def answer(self, key: str) -> int:
        with self.lock:
            tried = sum(1 for k, _ in self.calls if k == key)
            status = 503 if key == self.flaky_key and tried < self.failures else 201
            self.calls.append((key, status))
            self.called_at.append(time.time())
            if status == 201:
                self.created.append(key)
            return status


@pytest.fixture
def flaky_target() -> Iterator[tuple[str, FlakyTarget]]:
    target = FlakyTarget("order-1", failures=2)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            key = json.loads(self.rfile.read(length))["key"]
            status = target.answer(key)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/orders", target
    server.shutdown()
    server.server_close()


def sink_handler(client: httpx.Client, url: str) -> Callable[[RawRecord], None]:
    """What a sink does with one command: POST it; 5xx is transient, 4xx permanent."""

    def handle(record: RawRecord) -> None:
        response = client.post(url, json={"key": (record.key or b"").decode()})
        if response.status_code >= 500:
            raise InterlockError(
                f"target answered {response.status_code}",
                reason=Reason.SINK_UNAVAILABLE,
                transient=True,
            )
        if response.status_code >= 400:
            raise InterlockError(
                f"target rejected: {response.status_code}", reason=Reason.SINK_REJECTED
            )

    return handle


def test_503_twice_is_retried_via_retry_topics_while_the_partition_flows(
    settings: Settings,
    make_topic: Callable[..., str],
    make_group: Callable[[], str],
    make_consumer: Callable[..., object],
    flaky_target: tuple[str, FlakyTarget],
) -> None:
    url, target = flaky_target
    topic = make_topic(1, prefix="commands.test")
    for n in (1, 2, 3):
        make_topic(1, name=f"retry.{topic}.{n}")
    make_topic(1, name=f"dlq.{topic}")
    producer = make_producer(settings)
    keys = ["order-1", *(f"order-{i}" for i in range(2, 8))]
    for key in keys:
        producer.produce(topic, key=key.encode(), value=b'{"cmd":"create"}', headers=[("h", b"1")])
    producer.flush(10)

    router = FailureRouter(make_producer(settings), "sink-test", [0.2, 0.5, 1.0])
    consumer = kafka_consumer(settings, make_group())
    # assigned rather than subscribed to skip a group join; the next test subscribes
    consumer.assign(
        [TopicPartition(t, 0, OFFSET_BEGINNING) for t in with_retry_topics([topic], router)]
    )
    with httpx.Client(timeout=5) as client:
        loop = StageLoop(consumer, sink_handler(client, url), router, record_outcomes=True)
        deadline = time.monotonic() + 30
        while "order-1" not in target.created and time.monotonic() < deadline:
            loop.run_once()
    consumer.close()

    assert target.created[-1] == "order-1", target.created
    assert sorted(target.created[:-1]) == sorted(keys[1:])
    assert [s for k, s in target.calls if k == "order-1"] == [503, 503, 201]
    first_success_of_flaky = target.calls.index(("order-1", 201))
    later = [i for i, (k, s) in enumerate(target.calls) if k != "order-1" and s == 201]
    assert max(later) < first_success_of_flaky
    assert loop.stats.retried == 2
    assert loop.stats.dead_lettered == 0
    ends = end_offsets(
        settings.kafka.librdkafka(),
        [(f"retry.{topic}.{n}", 0) for n in (1, 2, 3)] + [(f"dlq.{topic}", 0)],
    )
    assert [ends[(f"retry.{topic}.{n}", 0)] for n in (1, 2, 3)] == [1, 1, 0]
    assert ends[(f"dlq.{topic}", 0)] == 0
    flaky_calls = [
        t for (k, _), t in zip(target.calls, target.called_at, strict=True) if k == "order-1"
    ]
    retried = []
    for n in (1, 2):
        reader = make_consumer()
        reader.assign([TopicPartition(f"retry.{topic}.{n}", 0, OFFSET_BEGINNING)])
        (msg,) = consume_n(reader, 1, 10)
        retried.append(msg)
        not_before_ms = int(dict(msg.headers())["interlock.retry.not_before"])  # type: ignore[attr-defined]
        assert flaky_calls[n] * 1000 >= not_before_ms  # each retry waited for its delay
    msg = retried[1]
    headers = dict(msg.headers())  # type: ignore[attr-defined]
    assert headers["interlock.retry.original.topic"] == topic.encode()
    assert headers["interlock.retry.original.offset"] == b"0"
    assert headers["interlock.retry.attempt"] == b"2"
    assert headers["h"] == b"1"
    assert msg.key() == b"order-1"  # type: ignore[attr-defined]


def test_a_retry_not_yet_due_pauses_only_its_own_partition(
    settings: Settings,
    make_topic: Callable[..., str],
    make_group: Callable[[], str],
) -> None:
    topic = make_topic(1, prefix="commands.test")
    make_topic(1, name=f"retry.{topic}.1")
    make_topic(1, name=f"dlq.{topic}")
    producer = make_producer(settings)
    producer.produce(topic, key=b"slow", value=b"first")
    producer.flush(10)
    handled: list[tuple[bytes, float]] = []
    failed_once: set[bytes] = set()

    def handle(record: RawRecord) -> None:
        if record.value == b"first" and record.value not in failed_once:
            failed_once.add(record.value)
            raise InterlockError("busy", reason=Reason.SINK_UNAVAILABLE, transient=True)
        handled.append((record.value or b"", time.time()))

    router = FailureRouter(make_producer(settings), "sink-test", [2.0])
    consumer = kafka_consumer(settings, make_group())
    consumer.subscribe(with_retry_topics([topic], router))
    loop = StageLoop(consumer, handle, router, poll_timeout=0.2)
    deadline = time.monotonic() + 30
    while loop.stats.retried == 0 and time.monotonic() < deadline:
        loop.run_once()
    routed_at = time.time()
    for i in range(5):
        producer.produce(topic, key=b"slow", value=f"later-{i}".encode())
    producer.flush(10)
    while b"first" not in [v for v, _ in handled] and time.monotonic() < deadline:
        loop.run_once()
    consumer.close()

    values = [v for v, _ in handled]
    assert values == [b"later-0", b"later-1", b"later-2", b"later-3", b"later-4", b"first"]
    assert loop.stats.deferred >= 1
    assert handled[-1][1] >= routed_at + 2.0 - 0.05  # not before its delay (clock granularity)
    assert loop.stats.dead_lettered == 0
