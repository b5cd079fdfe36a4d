"""Readiness: a consumer's assigned-partitions gauge; waiting for every service to hold some;
the lag that the drain wait reads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prometheus_client import Gauge

from interlock.instruments import Instruments
from interlock.kafka import make_consumer, subscribe
from interlock.metrics import new_registry, serve_metrics
from interlock.probes import assigned_partitions, consumer_lag, wait_until_ready
from interlock.settings import Settings


def test_the_gauge_follows_the_members_assignment_and_drops_to_zero_on_close(
    settings: Settings, make_topic: Callable[..., str], make_group: Callable[[], str]
) -> None:
    topics = [make_topic(partitions=3), make_topic(partitions=2)]
    group = make_group()
    instruments = Instruments(new_registry(process=False), "test")
    gauge = instruments.assigned_partitions.labels(group)
    consumer = make_consumer(settings, group)
    subscribe(consumer, topics, gauge)
    try:
        assert gauge._value.get() == 0  # not joined yet
        deadline = time.monotonic() + 60
        while gauge._value.get() == 0 and time.monotonic() < deadline:
            consumer.poll(0.2)
        assert gauge._value.get() == 5
    finally:
        consumer.close()  # leaves the group: the revocation reaches the gauge
    assert gauge._value.get() == 0


def test_wait_until_ready_waits_for_every_service_to_hold_partitions() -> None:
    registries = {name: Instruments(new_registry(process=False), name) for name in ("a", "b")}
    endpoints = {n: serve_metrics(i.registry, "127.0.0.1", 0) for n, i in registries.items()}
    try:
        urls = {n: e.url for n, e in endpoints.items()}
        registries["a"].assigned_partitions.labels("g").set(3)
        registries["b"].assigned_partitions.labels("g").set(0)
        assert assigned_partitions(urls["a"]) == 3
        assert assigned_partitions(urls["b"]) == 0
        stop = threading.Event()
        assert wait_until_ready(urls, 0.5, stop, interval=0.05) == ["b"]

        later = threading.Timer(0.3, registries["b"].assigned_partitions.labels("g").set, (2,))
        later.start()
        started = time.monotonic()
        assert wait_until_ready(urls, 30, stop, interval=0.05) == []
        assert time.monotonic() - started < 10
    finally:
        for endpoint in endpoints.values():
            endpoint.stop()


def test_wait_until_ready_reports_a_silent_service_and_gives_up_when_told() -> None:
    stop = threading.Event()
    silent = {"gone": "http://127.0.0.1:9/metrics"}  # nothing listens on the discard port
    assert assigned_partitions(silent["gone"]) is None
    started = time.monotonic()
    assert wait_until_ready(silent, 30, stop, give_up=lambda: True, interval=0.05) == ["gone"]
    assert time.monotonic() - started < 5
    stop.set()
    assert wait_until_ready(silent, 30, stop, interval=0.05) == ["gone"]


def test_consumer_lag_counts_work_topics_of_interlock_groups_not_the_worker_clock() -> None:
    registry = new_registry(process=False)
    lag = Gauge(
        "interlock_consumer_lag_messages",
        "lag",
        ["group", "topic", "partition"],
        registry=registry,
    )
    endpoint = serve_metrics(registry, "127.0.0.1", 0)
    try:
        lag.labels("interlock-processors", "interlock-processors-ticks", "0").set(1)
        lag.labels("interlock-processors", "canonical.quote.v1", "0").set(0)
        lag.labels("someone-else", "canonical.quote.v1", "0").set(7)
        assert consumer_lag(endpoint.url) == 0  # caught up: a tick in flight is no work
        lag.labels("interlock-sinks", "commands.erp.create-order", "1").set(3)
        assert consumer_lag(endpoint.url) == 3
    finally:
        endpoint.stop()


def test_the_drain_wait_says_the_lag_is_unknown_when_the_exporter_does_not_answer() -> None:
    """Never "still None messages behind": a lag nobody reported is said to be unknown."""
    from rich.console import Console

    from interlock.broker import free_port
    from interlock.probes import wait_for_drain

    console = Console(record=True, width=200)
    url = f"http://127.0.0.1:{free_port()}/metrics"  # nobody listens
    wait_for_drain(url, 0.1, console, threading.Event())
    said = console.export_text()
    assert "None" not in said, said
    assert f"consumer lag unknown after 0 s: the lag exporter at {url} did not answer" in said
