"""The broker fixture and the embedded broker: produce and consume with confluent-kafka."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from interlock.broker import EmbeddedBroker
from interlock.kafka import true_end_offsets
from interlock.settings import Settings
from tests.conftest import consume_n
from tests.e2e.stack import process_alive

pytestmark = pytest.mark.integration


def test_produce_and_consume_through_the_fixture(
    make_topic: Callable[..., str],
    make_producer: Callable[..., Producer],
    make_consumer: Callable[..., Consumer],
) -> None:
    topic = make_topic(partitions=3)
    producer = make_producer()
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(300)}
    for key, value in sent.items():
        producer.produce(topic, key=key, value=value, headers=[("h", b"1")])
    assert producer.flush(30) == 0
    received = consume_n(make_consumer(topic), len(sent))
    assert {m.key(): m.value() for m in received} == sent  # type: ignore[attr-defined]
    assert all(m.headers() == [("h", b"1")] for m in received)  # type: ignore[attr-defined]


def test_true_end_offsets_count_every_record_of_batched_produces(
    settings: Settings, make_topic: Callable[..., str], make_producer: Callable[..., Producer]
) -> None:
    topic = make_topic(partitions=2)
    producer = make_producer(**{"linger.ms": 100, "batch.num.messages": 10000})
    for i in range(1000):
        producer.produce(topic, key=str(i % 10).encode(), value=b"v")
    producer.flush(30)
    ends = true_end_offsets(settings.kafka.librdkafka(), [(topic, 0), (topic, 1)])
    assert sum(ends.values()) == 1000


def test_embedded_broker_stops_with_its_parent() -> None:
    """A broker started by a process that is SIGKILLed does not outlive it."""
    code = (
        "import sys, time\n"
        "from interlock.broker import EmbeddedBroker\n"
        "b = EmbeddedBroker().start()\n"
        "print(b.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    broker_pid = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process_alive(broker_pid):
        time.sleep(0.1)
    assert not process_alive(broker_pid)


def test_standalone_broker_answers_metadata_and_stops() -> None:
    with EmbeddedBroker() as broker:
        metadata = AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(
            timeout=10
        )
        assert metadata.brokers
        pid = broker.pid
    assert pid is not None
    assert not process_alive(pid)
