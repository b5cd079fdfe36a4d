"""A Faust table survives a worker restart: values recovered from the changelog, not just keys."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

pytestmark = pytest.mark.integration

APP = Path(__file__).with_name("counting_app.py")
KEYS = [f"k{i:03d}" for i in range(100)]


def _start_worker(bootstrap: str, source: str, sink: str, app_id: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(APP.parents[2])}
    return subprocess.Popen(
        [sys.executable, str(APP), bootstrap, source, sink, app_id],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _latest_counts(consumer: Consumer, expect: dict[str, int], timeout: float) -> dict[str, int]:
    latest: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for msg in consumer.consume(1000, 0.5):
            if msg.error() is None:
                key = (msg.key() or b"").decode().strip('"')
                latest[key] = max(latest.get(key, 0), int(msg.value() or b"0"))
        if all(latest.get(k, 0) >= v for k, v in expect.items()):
            break
    return latest


def _produce_round(producer: Producer, topic: str, rounds: int) -> None:
    for _ in range(rounds):
        for key in KEYS:
            producer.produce(topic, key=key.encode(), value=b"x")
    producer.flush(30)


def test_table_values_survive_worker_restart(
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Producer],
    make_consumer: Callable[..., Consumer],
) -> None:
    source = make_topic(partitions=2, prefix="counts-in")
    sink = make_topic(partitions=2, prefix="counts-out")
    app_id = f"restart-{uuid.uuid4().hex[:8]}"
    producer = make_producer(**{"linger.ms": 50, "batch.num.messages": 10000})
    output = make_consumer(sink)

    _produce_round(producer, source, rounds=10)
    worker = _start_worker(kafka_bootstrap, source, sink, app_id)
    try:
        first = _latest_counts(output, dict.fromkeys(KEYS, 10), timeout=90)
        assert first == dict.fromkeys(KEYS, 10)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)

    _produce_round(producer, source, rounds=1)
    worker = _start_worker(kafka_bootstrap, source, sink, app_id)
    try:
        second = _latest_counts(output, dict.fromkeys(KEYS, 11), timeout=90)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    # Every key continues from its recovered value: 10 before, 11 after (a stale or lost value
    # would give 1, or a key restarting at 1..10), and none is skipped: records fetched before
    # the recovery must not be dropped when it ends (see processors.app).
    assert second == dict.fromkeys(KEYS, 11), stderr.decode(errors="replace")[-3000:]


def test_table_values_survive_sigkill_mid_load_and_a_rebalance_to_two_workers(
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Producer],
    make_consumer: Callable[..., Consumer],
) -> None:
    """SIGKILL while counting, a restart, then a second worker joins and partitions move.

    Each count is the table's restored value plus what follows, so the final counts are exact
    only if every restore (after the crash, and on each rebalance) brought back the latest
    values; on Apache Kafka no highwater correction runs (that is Tansu's, interlock.tansu).
    """
    source = make_topic(partitions=2, prefix="counts-in")
    sink = make_topic(partitions=2, prefix="counts-out")
    app_id = f"crash-{uuid.uuid4().hex[:8]}"
    producer = make_producer(**{"linger.ms": 50, "batch.num.messages": 10000})
    output = make_consumer(sink)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        _produce_round(producer, source, rounds=40)
        workers.append(_start_worker(kafka_bootstrap, source, sink, app_id))
        midway = _latest_counts(output, dict.fromkeys(KEYS, 5), timeout=90)
        assert all(midway.get(k, 0) >= 5 for k in KEYS), midway
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(30)
        assert min(midway.values()) < 40, "the load was over before the kill; send more"

        workers.append(_start_worker(kafka_bootstrap, source, sink, app_id))
        _latest_counts(output, dict.fromkeys(KEYS, 20), timeout=90)
        workers.append(_start_worker(kafka_bootstrap, source, sink, app_id))  # a rebalance
        _produce_round(producer, source, rounds=5)
        final = _latest_counts(output, dict.fromkeys(KEYS, 45), timeout=120)
        # anything counted twice would show up as a count above 45 within a few more seconds
        late = _latest_counts(output, dict.fromkeys(KEYS, 46), timeout=5)
        final = {k: max(final.get(k, 0), late.get(k, 0)) for k in KEYS}
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        errors = [w.communicate(timeout=60)[1].decode(errors="replace")[-2000:] for w in workers]
    assert final == dict.fromkeys(KEYS, 45), errors
