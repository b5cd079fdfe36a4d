"""The lag exporter against the real broker: offsets lag, time lag and group status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer

from interlock.broker import free_port
from interlock.metrics import new_registry
from interlock.settings import Settings
from ops.lag.exporter import GroupReport, LagExporter
from ops.lag.probe import LagProbe
from ops.lag.status import GroupStatus
from tests.conftest import consume_n

pytestmark = pytest.mark.integration


class Clock:
    """Wall time plus a shift the test controls."""

    def __init__(self) -> None:
        self.shift = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift


def produce_batched(producer: Producer, topic: str, n: int) -> None:
    for i in range(n):
        producer.produce(topic, key=b"k%d" % i, value=b"v%d" % i)
    producer.flush(30)


def consume_and_commit(consumer: Consumer, n: int) -> None:
    got = consume_n(consumer, n, timeout=30)
    assert len(got) == n
    consumer.commit(asynchronous=False)


def report_of(reports: list[GroupReport], group: str) -> GroupReport:
    return next(r for r in reports if r.group == group)


@pytest.fixture
def exporter_for(settings: Settings) -> Callable[[str, Clock], LagExporter]:
    def factory(group: str, clock: Clock) -> LagExporter:
        probe = LagProbe(settings.kafka.librdkafka(), groups=group)
        return LagExporter(
            probe, new_registry(process=False), window=10, min_samples=3, clock=clock
        )

    return factory


@pytest.fixture
def make_lagging_group(
    make_topic: Callable[..., str],
    make_consumer: Callable[..., Consumer],
    make_producer: Callable[..., Producer],
    make_group: Callable[[], str],
) -> Callable[..., tuple[str, str]]:
    """A group that committed ``committed`` records and left, ``behind`` more after them.

    ``make_lagging_group(committed, behind, partitions=1, **producer_conf) -> (topic, group)``.
    """

    def factory(
        committed: int, behind: int, partitions: int = 1, **producer_conf: object
    ) -> tuple[str, str]:
        topic, group = make_topic(partitions=partitions), make_group()
        producer = make_producer(**producer_conf)
        produce_batched(producer, topic, committed)
        consumer = make_consumer(topic, group=group, **{"enable.auto.commit": False})
        consume_and_commit(consumer, committed)
        consumer.close()
        produce_batched(producer, topic, behind)
        return topic, group

    return factory


def test_lag_equals_batched_messages_produced_while_consumer_stopped(
    make_lagging_group: Callable[..., tuple[str, str]],
    exporter_for: Callable[[str, Clock], LagExporter],
) -> None:
    # batched: a wrong high watermark would show lag ~2
    _, group = make_lagging_group(40, 500, partitions=2, **{"linger.ms": 50})

    clock = Clock()
    exporter = exporter_for(group, clock)
    assert exporter.sample_once()
    report = report_of(exporter.reports, group)
    assert sum(p.lag_messages for p in report.partitions) == 500
    assert {p.partition for p in report.partitions} == {0, 1}

    # Time lag is the age of the first unconsumed record: it grows with the clock.
    first = max(p.lag_seconds or 0.0 for p in report.partitions)
    clock.shift = 120.0
    assert exporter.sample_once()
    later = max(p.lag_seconds or 0.0 for p in report_of(exporter.reports, group).partitions)
    assert later >= first + 119.0


class CountingProbe(LagProbe):
    """The real probe; its consumer's ``poll`` answers are counted on their way through."""

    records_polled = 0

    def _consumer(self) -> Consumer:
        consumer = super()._consumer()
        probe = self

        class Counted:
            def __getattr__(self, name: str) -> object:
                return getattr(consumer, name)

            def poll(self, timeout: float) -> object:
                msg = consumer.poll(timeout)
                if msg is not None and msg.error() is None:
                    probe.records_polled += 1
                return msg

        return Counted()  # type: ignore[return-value]


def test_a_sample_reads_one_record_per_lagging_partition_however_far_behind(
    make_lagging_group: Callable[..., tuple[str, str]], settings: Settings
) -> None:
    # A backlog of thousands per partition, all fetched ahead by librdkafka: a partition left
    # assigned once its record is read had every fetched record polled (and skipped) before
    # the next partition's first one.
    _, group = make_lagging_group(10, 9_000, partitions=3, **{"linger.ms": 50})
    probe = CountingProbe(settings.kafka.librdkafka(), groups=group)

    (snapshot,) = probe.snapshot()

    stamped = [p for p in snapshot.positions if p.first_unconsumed_timestamp is not None]
    assert len(stamped) == 3
    assert sum(p.lag for p in snapshot.positions) == 9_000
    assert probe.records_polled <= 3 * 2


def test_group_that_stops_committing_with_lag_is_stalled_then_stopped_when_it_leaves(
    make_topic: Callable[..., str],
    make_consumer: Callable[..., Consumer],
    make_producer: Callable[..., Producer],
    make_group: Callable[[], str],
    exporter_for: Callable[[str, Clock], LagExporter],
) -> None:
    topic, group = make_topic(), make_group()
    producer = make_producer(**{"linger.ms": 20})
    produce_batched(producer, topic, 10)
    consumer = make_consumer(topic, group=group, **{"enable.auto.commit": False})
    consume_and_commit(consumer, 10)
    clock = Clock()
    exporter = exporter_for(group, clock)
    assert exporter.sample_once()
    assert report_of(exporter.reports, group).status is GroupStatus.OK

    produce_batched(producer, topic, 25)  # the member stays in the group but commits nothing
    statuses = []
    for _ in range(3):
        clock.shift += 5.0
        assert exporter.sample_once()
        statuses.append(report_of(exporter.reports, group).status)
    assert statuses[-1] is GroupStatus.STALL
    assert sum(p.lag_messages for p in report_of(exporter.reports, group).partitions) == 25

    consumer.close()  # the group is now empty: nobody will ever commit
    deadline = time.monotonic() + 20
    status = GroupStatus.STALL
    while status is not GroupStatus.STOP and time.monotonic() < deadline:
        clock.shift += 5.0
        assert exporter.sample_once()
        status = report_of(exporter.reports, group).status
        time.sleep(0.2)
    assert status is GroupStatus.STOP


def test_metrics_carry_lag_and_one_status_per_group(
    make_lagging_group: Callable[..., tuple[str, str]], settings: Settings
) -> None:
    topic, group = make_lagging_group(5, 7)
    registry = new_registry(process=False)
    exporter = LagExporter(LagProbe(settings.kafka.librdkafka(), groups=group), registry)
    assert exporter.sample_once()
    labels = {"group": group, "topic": topic, "partition": "0"}
    assert registry.get_sample_value("interlock_consumer_lag_messages", labels) == 7
    assert (registry.get_sample_value("interlock_consumer_lag_seconds", labels) or 0) >= 0
    statuses = {
        s: registry.get_sample_value(
            "interlock_consumer_group_status", {"group": group, "status": s}
        )
        for s in ("OK", "WARN", "STALL", "STOP")
    }
    assert sorted(statuses.values()) == [0.0, 0.0, 0.0, 1.0]
    assert registry.get_sample_value("interlock_lag_exporter_scrape_duration_seconds_count") == 1


def test_sampling_failure_is_counted_not_raised() -> None:
    registry = new_registry(process=False)
    # Nothing listens there: the admin request times out.
    probe = LagProbe({"bootstrap.servers": f"127.0.0.1:{free_port()}", "log_level": 0}, timeout=1.0)
    exporter = LagExporter(probe, registry)
    assert exporter.sample_once() is False
    assert registry.get_sample_value("interlock_lag_exporter_scrape_errors_total") == 1


def test_command_serves_metrics_and_exits_0_on_sigterm(
    make_lagging_group: Callable[..., tuple[str, str]], settings: Settings
) -> None:
    topic, group = make_lagging_group(3, 4)
    port = free_port()
    env = {
        **os.environ,
        "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers or "",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "interlock.cli", "lag-exporter", "--groups", group,
         "--port", str(port), "--interval", "0.5"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        want = (
            f'interlock_consumer_lag_messages{{group="{group}",partition="0",topic="{topic}"}} 4.0'
        )
        body = ""
        deadline = time.monotonic() + 30
        while want not in body and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    body = r.read().decode()
            except OSError:
                pass
            time.sleep(0.3)
        assert want in body
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out.decode()
