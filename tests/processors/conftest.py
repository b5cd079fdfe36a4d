"""Fixtures of the processors' integration tests: isolated topics and worker subprocesses.

Each test gets its own topic prefix (every processors topic, created with the same partition
count), its own Faust app id, and workers run as ``python -m interlock.cli worker``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from contracts import Envelope, decode, encode
from interlock.broker import free_port
from interlock.records import RawRecord
from interlock.settings import Settings
from processors.topic_names import ProcessorTopics
from tests.conftest import end_offsets, wait_for_leaders

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 3


@dataclass
class Worker:
    """A worker subprocess."""

    process: subprocess.Popen[bytes]
    metrics_port: int
    log: Path

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
        from prometheus_client.parser import text_string_to_metric_families

        total = 0.0
        for family in text_string_to_metric_families(self.metrics()):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total

    def wait_metric(self, name: str, at_least: float, timeout: float = 60, **labels: str) -> float:
        deadline = time.monotonic() + timeout
        value = 0.0
        while time.monotonic() < deadline:
            try:
                value = self.metric(name, **labels)
            except OSError:
                value = 0.0
            if value >= at_least:
                break
            time.sleep(0.3)
        return value

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@dataclass
class ProcessorsEnv:
    """Topics, producer and workers of one test."""

    settings: Settings
    topics: ProcessorTopics
    app_id: str
    tmp: Path
    producer: Producer
    workers: list[Worker] = field(default_factory=list)

    def send(self, topic: str, *events: Envelope, key: str | None = None) -> None:
        for event in events:
            account = key or event.payload.account_id
            self.producer.produce(topic, encode(event), account.encode())
        self.producer.flush(30)

    def send_raw(self, topic: str, key: bytes, value: bytes) -> None:
        self.producer.produce(topic, value, key)
        self.producer.flush(30)

    def start_worker(self, **env: str) -> Worker:
        port = free_port()
        log = self.tmp / f"worker-{len(self.workers)}.log"
        full_env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": self.settings.kafka.bootstrap_servers or "",
            "INTERLOCK_PROCESSORS__APP_ID": self.app_id,
            "INTERLOCK_PROCESSORS__TOPIC_PREFIX": self.topics.prefix,
            "INTERLOCK_PROCESSORS__SESSION_TIMEOUT_S": "6",
            "INTERLOCK_PROCESSORS__TICK_INTERVAL_S": "0.5",
            "INTERLOCK_PROCESSORS__STALL_TIMEOUT_S": "60",
            "INTERLOCK_PROCESSORS__DATA_DIR": str(self.tmp / f"data-{len(self.workers)}"),
            "INTERLOCK_METRICS__PORT": str(port),
            "INTERLOCK_LOG_LEVEL": "INFO",  # in the test's log file; a failure shows its end
            **env,
        }
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "interlock.cli", "worker"],
                env=full_env,
                cwd=self.tmp,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(process, port, log)
        self.workers.append(worker)
        return worker

    def wait_for_raw(
        self, topic: str, predicate: Callable[[list[RawRecord]], bool], timeout: float = 60
    ) -> list[RawRecord]:
        """Re-read ``topic`` (raw records with headers) until ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.read_records(topic)
            if predicate(records) or time.monotonic() > deadline:
                return records
            time.sleep(0.5)

    def read_all(self, topic: str) -> list[tuple[bytes | None, bytes | None, int]]:
        return [(r.key, r.value, r.partition) for r in self.read_records(topic)]

    def read_records(self, topic: str) -> list[RawRecord]:
        """Every record of ``topic`` (key, value, partition), read to its true end."""
        conf = self.settings.kafka.librdkafka()
        ends = end_offsets(conf, [(topic, p) for p in range(PARTITIONS)])
        todo = {p: end for (_, p), end in ends.items() if end > 0}
        out: list[RawRecord] = []
        if not todo:
            return out
        consumer = Consumer(
            {**conf, "group.id": f"read-{uuid.uuid4().hex}", "enable.auto.commit": False}
        )
        try:
            consumer.assign([TopicPartition(topic, p, 0) for p in todo])
            deadline = time.monotonic() + 30
            positions = dict.fromkeys(todo, 0)
            while any(positions[p] < todo[p] for p in todo) and time.monotonic() < deadline:
                for msg in consumer.consume(1000, 0.5):
                    if msg.error() is None:
                        out.append(RawRecord.from_message(msg))
                        positions[msg.partition()] = msg.offset() + 1
        finally:
            consumer.close()
        return out

    def audit(self) -> list[dict[str, Any]]:
        return [json.loads(v) for _, v, _ in self.read_all(self.topics.audit) if v is not None]

    def events(self, topic: str) -> list[Envelope]:
        return [decode(v) for _, v, _ in self.read_all(topic) if v is not None]

    def wait_for(
        self, topic: str, predicate: Callable[[list[Envelope]], bool], timeout: float = 60
    ) -> list[Envelope]:
        """Re-read ``topic`` until ``predicate(events)`` holds; returns the last read."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events(topic)
            if predicate(events) or time.monotonic() > deadline:
                return events
            for worker in self.workers:
                if worker.process.poll() is not None and worker.process.returncode not in (0, -9):
                    raise AssertionError(f"worker died: {worker.output()}")
            time.sleep(0.5)


def create_topics(admin: AdminClient, names: list[str], partitions: int = PARTITIONS) -> None:
    futures = admin.create_topics(
        [NewTopic(n, partitions, 1, config={"cleanup.policy": "delete"}) for n in names]
    )
    for future in futures.values():
        future.result(timeout=30)
    wait_for_leaders(admin, names)


def all_topics(topics: ProcessorTopics) -> list[str]:
    names = [*topics.copartitioned(), topics.product, topics.review, topics.audit, topics.cases]
    names.append(topics.reconciliation)
    inputs = [*topics.canonical_inputs(), *topics.commands(), topics.decisions]
    return names + [f"dlq.{n}" for n in inputs]


@pytest.fixture
def proc_env(settings: Settings, admin: AdminClient, tmp_path: Path) -> Iterator[ProcessorsEnv]:
    """Fresh topics under a unique prefix, a producer, and a way to start workers."""
    tag = uuid.uuid4().hex[:10]
    topics = ProcessorTopics(f"p{tag}.")
    create_topics(admin, all_topics(topics))
    producer = Producer({**settings.kafka.librdkafka(), "linger.ms": 5, "acks": "all"})
    env = ProcessorsEnv(settings, topics, f"app-{tag}", tmp_path, producer)
    yield env
    for worker in env.workers:
        worker.stop(signal.SIGKILL if worker.process.poll() is None else signal.SIGTERM, 5)
