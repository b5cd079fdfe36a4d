"""The lag exporter: samples consumer groups every interval and exposes lag and status metrics.

It runs as its own process because a stuck worker cannot report its own lag. Every interval it
takes a snapshot (``LagProbe``), appends it to a sliding window per partition, and computes the
status of each group (``ops.lag.status``). A custom collector serves the latest results, so a
Prometheus scrape never waits for Kafka.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ops.lag.probe import GroupSnapshot
from ops.lag.status import (
    GroupStatus,
    PartitionSample,
    group_status,
    interpolate_time_lag,
    time_lag_seconds,
)

__all__ = ["GroupReport", "LagExporter", "PartitionReport", "SnapshotSource"]

log = logging.getLogger(__name__)

_SCRAPE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class SnapshotSource(Protocol):
    """Something that returns the current consumer groups (``LagProbe`` in production)."""

    def snapshot(self) -> list[GroupSnapshot]: ...


@dataclass(frozen=True)
class PartitionReport:
    topic: str
    partition: int
    lag_messages: int
    lag_seconds: float | None


@dataclass(frozen=True)
class GroupReport:
    group: str
    status: GroupStatus
    members: int
    partitions: list[PartitionReport]


class LagExporter(Collector):
    """Keeps a window of samples per partition and reports lag and group status as metrics."""

    def __init__(
        self,
        source: SnapshotSource,
        registry: CollectorRegistry,
        *,
        window: int = 10,
        min_samples: int = 3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._window = window
        self._min_samples = min_samples
        self._clock = clock
        self._lock = threading.Lock()
        self._samples: dict[tuple[str, str, int], deque[PartitionSample]] = {}
        self._reports: list[GroupReport] = []
        self.scrape_seconds = Histogram(
            "interlock_lag_exporter_scrape_duration_seconds",
            "Time to sample every selected consumer group from Kafka.",
            buckets=_SCRAPE_BUCKETS,
            registry=registry,
        )
        self.scrape_errors = Counter(
            "interlock_lag_exporter_scrape_errors_total",
            "Samplings of the consumer groups that failed (broker unreachable, timeout...).",
            registry=registry,
        )
        self.last_success = Gauge(
            "interlock_lag_exporter_last_success_timestamp_seconds",
            "Unix time of the last successful sampling.",
            registry=registry,
        )
        registry.register(self)

    @property
    def reports(self) -> list[GroupReport]:
        with self._lock:
            return list(self._reports)

    def sample_once(self) -> bool:
        """Take one snapshot and update the reports; False (and an error counted) on failure."""
        started = time.perf_counter()
        try:
            snapshots = self._source.snapshot()
        except Exception:
            log.exception("sampling the consumer groups failed")
            self.scrape_errors.inc()
            return False
        finally:
            self.scrape_seconds.observe(time.perf_counter() - started)
        self.update(snapshots)
        self.last_success.set(self._clock())
        return True

    def update(self, snapshots: Sequence[GroupSnapshot]) -> list[GroupReport]:
        """Fold one snapshot into the windows and recompute every group's report."""
        now = self._clock()
        reports = []
        seen: set[tuple[str, str, int]] = set()
        with self._lock:
            for snap in snapshots:
                windows = []
                partitions = []
                for pos in snap.positions:
                    key = (snap.group, pos.topic, pos.partition)
                    seen.add(key)
                    window = self._samples.setdefault(key, deque(maxlen=self._window))
                    window.append(PartitionSample(now, pos.committed, pos.end))
                    windows.append(list(window))
                    seconds = time_lag_seconds(pos.lag, now, pos.first_unconsumed_timestamp)
                    if seconds is None:
                        seconds = interpolate_time_lag(list(window), now)
                    partitions.append(PartitionReport(pos.topic, pos.partition, pos.lag, seconds))
                status = group_status(
                    windows, group_active=snap.active, min_samples=self._min_samples
                )
                reports.append(GroupReport(snap.group, status, snap.members, partitions))
            for gone in set(self._samples) - seen:
                del self._samples[gone]
            self._reports = reports
        return reports

    def run(self, interval: float, stop: threading.Event) -> None:
        """Sample every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            self.sample_once()
            stop.wait(interval)

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "interlock_consumer_lag_messages",
            "Records between a group's committed offset and the true end of the partition.",
            labels=["group", "topic", "partition"],
        )
        seconds = GaugeMetricFamily(
            "interlock_consumer_lag_seconds",
            "Age of the first record a group has not consumed yet (0 without lag).",
            labels=["group", "topic", "partition"],
        )
        status = GaugeMetricFamily(
            "interlock_consumer_group_status",
            "1 for the current status of a group (OK, WARN, STALL, STOP), 0 for the others.",
            labels=["group", "status"],
        )
        members = GaugeMetricFamily(
            "interlock_consumer_group_members",
            "Members of a consumer group, as the broker describes it.",
            labels=["group"],
        )
        for report in self.reports:
            for part in report.partitions:
                labels = [report.group, part.topic, str(part.partition)]
                lag.add_metric(labels, part.lag_messages)
                if part.lag_seconds is not None:
                    seconds.add_metric(labels, part.lag_seconds)
            for value in GroupStatus:
                status.add_metric(
                    [report.group, value.value], 1.0 if value is report.status else 0.0
                )
            members.add_metric([report.group], report.members)
        yield from (lag, seconds, status, members)

    def describe(self) -> Iterator[Metric]:
        # Without describe(), registering would call collect() before the first sample.
        return iter(())
