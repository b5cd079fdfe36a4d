"""Shared fixtures: one broker per session (per pytest-xdist worker), and factories for unique
topics and groups.

The broker is, in order of preference: the one named by ``KAFKA_BOOTSTRAP_SERVERS``;
testcontainers' Kafka when ``INTERLOCK_TEST_BROKER=testcontainers`` and a Docker engine
answers (skipped cleanly where none does); the embedded Tansu broker when
``INTERLOCK_TEST_BROKER=tansu``; the embedded Apache Kafka broker otherwise.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from contracts.topics import spec_for_name
from interlock.apache_kafka import KafkaBroker
from interlock.broker import BrokerKind, BrokerProcess
from interlock.kafka import true_end_offsets
from interlock.settings import Settings
from interlock.tansu import TansuBroker

# rich wraps a command's output at 80 columns where no terminal tells it the width (a
# pytest-xdist worker has none): the tests read the output unwrapped
os.environ.setdefault("COLUMNS", "200")


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env().ping()
    except Exception:
        return False
    return True


def suite_broker_kind() -> BrokerKind:
    """The kind of broker the suite runs on (a given bootstrap is taken to be Apache Kafka)."""
    return "tansu" if os.environ.get("INTERLOCK_TEST_BROKER") == "tansu" else "kafka"


def end_offsets(
    conf: Mapping[str, Any], partitions: Iterable[tuple[str, int]], timeout: float = 10.0
) -> dict[tuple[str, int], int]:
    """``true_end_offsets`` on the suite's broker (Tansu needs its workaround)."""
    return true_end_offsets(conf, partitions, timeout, tansu=suite_broker_kind() == "tansu")


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[None]:
    """The process ``pid`` stopped (SIGSTOP) inside the block: it holds its sockets open and
    answers nothing. It runs on (SIGCONT) when the block ends, however it ends."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def private_broker() -> BrokerProcess:
    """A broker of the suite's kind for a test that must stop or kill it (not started yet)."""
    return TansuBroker() if suite_broker_kind() == "tansu" else KafkaBroker()


STACK_TESTS = "tests/e2e/"
"""The whole-stack tests: each starts every service of a stack (``interlock up``)."""


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist (``make pytest``: ``-n 2``), the whole-stack tests form one unit of
    work, sent first (the largest unit goes first) to one worker, which runs them one at a time:
    two stacks at once on two cores would starve each other. The other worker takes the rest
    of the suite meanwhile, a test at a time. (The scopes are told apart by node id: pytest 9.2
    no longer lets the ``xdist_group`` mark rename a node.)"""
    from xdist.scheduler import LoadScopeScheduling

    class StackOnOneWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "stack" if nodeid.startswith(STACK_TESTS) else nodeid

    return StackOnOneWorker(config, log)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of the broker every integration test uses."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    chosen = os.environ.get("INTERLOCK_TEST_BROKER", "kafka")
    if chosen == "testcontainers":
        if not _docker_available():
            pytest.skip("INTERLOCK_TEST_BROKER=testcontainers, but no Docker engine answers")
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    if chosen == "tansu":
        os.environ["INTERLOCK_KAFKA__BROKER_KIND"] = "tansu"  # for every service a test starts
        with TansuBroker() as tansu:
            yield tansu.bootstrap_servers
        return
    with KafkaBroker() as broker:
        yield broker.bootstrap_servers


@pytest.fixture(scope="session")
def settings(kafka_bootstrap: str) -> Settings:
    """Settings pointing at the test broker, with short group timings."""
    base = Settings(_env_file=None)
    configured = base.with_bootstrap(kafka_bootstrap)
    configured.kafka.broker_kind = suite_broker_kind()
    configured.processors.session_timeout_s = 6.0
    return configured


@pytest.fixture(scope="session")
def admin(settings: Settings) -> AdminClient:
    return AdminClient(settings.kafka.librdkafka())


@pytest.fixture
def make_topic(admin: AdminClient, settings: Settings) -> Callable[..., str]:
    """Create a topic with a unique name: ``make_topic(partitions=1, prefix="t", config=None)``.

    Its configuration is what the catalog gives a topic of its name (``spec_for_name``), as
    provisioning sets it, and ``config`` on top: a ``dlq.*`` topic keeps its records forever
    like every dead-letter topic. (Under time retention the broker's check, 30 s after start
    and then every 5 minutes, deleted the tests' dead letters, whose originals are stamped
    1970, in the middle of a test: the empty dead-letter reads CI once saw.)
    """

    retention_ms = settings.topics.retention_ms

    def factory(
        partitions: int = 1,
        prefix: str = "test",
        config: dict[str, str] | None = None,
        name: str | None = None,
    ) -> str:
        topic = name or f"{prefix}.{uuid.uuid4().hex[:12]}"
        conf = {**spec_for_name(topic).config(retention_ms), **(config or {})}
        futures = admin.create_topics([NewTopic(topic, partitions, 1, config=conf)])
        for future in futures.values():
            future.result(timeout=30)
        wait_for_leaders(admin, [topic])
        return topic

    return factory


def wait_for_leaders(admin: AdminClient, topics: list[str], timeout: float = 30.0) -> None:
    """Wait until every partition of ``topics`` has a leader: Apache Kafka answers a request
    for a partition created a moment ago with NOT_LEADER_FOR_PARTITION until then."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        metadata = admin.list_topics(timeout=10)
        ready = all(
            name in metadata.topics
            and metadata.topics[name].error is None
            and metadata.topics[name].partitions
            and all(p.leader >= 0 for p in metadata.topics[name].partitions.values())
            for name in topics
        )
        if ready:
            return
        assert time.monotonic() < deadline, f"no leader for every partition of {topics}"
        time.sleep(0.05)


@pytest.fixture
def make_group() -> Callable[[], str]:
    """A unique consumer group id."""
    return lambda: f"group-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_producer(settings: Settings) -> Iterator[Callable[..., Producer]]:
    producers: list[Producer] = []

    def factory(**overrides: object) -> Producer:
        conf = {**settings.kafka.librdkafka(), "linger.ms": 5, "acks": "all", **overrides}
        producer = Producer(conf)
        producers.append(producer)
        return producer

    yield factory
    for producer in producers:
        producer.flush(10)


@pytest.fixture
def make_consumer(
    settings: Settings, make_group: Callable[[], str]
) -> Iterator[Callable[..., Consumer]]:
    consumers: list[Consumer] = []

    def factory(*topics: str, group: str | None = None, **overrides: object) -> Consumer:
        conf = {
            **settings.kafka.librdkafka(),
            "group.id": group or make_group(),
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            **overrides,
        }
        consumer = Consumer(conf)
        if topics:
            consumer.subscribe(list(topics))
        consumers.append(consumer)
        return consumer

    yield factory
    for consumer in consumers:
        with contextlib.suppress(RuntimeError):
            consumer.close()


def consume_n(consumer: Consumer, n: int, timeout: float = 30.0) -> list[object]:
    """Poll until ``n`` messages arrived or ``timeout`` passed; returns what arrived."""
    import time

    out: list[object] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        for msg in consumer.consume(min(1000, n - len(out)), 0.5):
            if msg.error() is None:
                out.append(msg)
    return out
