"""Metrics text → snapshot → live view and run summary (pure; exposition from Instruments)."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from rich.console import Console

from interlock.instruments import Instruments
from ops.simulator.live import (
    build_view,
    histogram_quantile,
    lag_grew,
    parse_samples,
    render_summary,
    render_view,
    summarize,
    take_snapshot,
)

pytestmark = pytest.mark.unit


def _service() -> tuple[CollectorRegistry, Instruments, Gauge]:
    registry = CollectorRegistry()
    inst = Instruments(registry, "processors")
    lag = Gauge(
        "interlock_consumer_lag_messages", "lag", ["group", "topic", "partition"], registry=registry
    )
    return registry, inst, lag


def test_snapshot_and_view_from_a_service_exposition() -> None:
    registry, inst, lag = _service()
    inst.events_consumed.labels("processors", "canonical.quote.v1", "ok").inc(100)
    inst.events_produced.labels("processors", "commands.erp.create-order").inc(40)
    inst.dead_letters.labels("processors", "dlq.canonical.quote.v1", "VALIDATION_FAILED").inc(3)
    inst.sink_calls.labels("erp", "ok").inc(7)
    lag.labels("g", "t", "0").set(5)
    lag.labels("g", "t", "1").set(6)
    first = take_snapshot(parse_samples(generate_latest(registry).decode()), at=10.0)
    inst.events_consumed.labels("processors", "canonical.quote.v1", "ok").inc(200)
    inst.events_produced.labels("processors", "commands.erp.create-order").inc(100)
    for _ in range(99):
        inst.handoff_latency_seconds.labels("quote_to_order").observe(0.2)
    inst.handoff_latency_seconds.labels("quote_to_order").observe(20.0)
    second = take_snapshot(parse_samples(generate_latest(registry).decode()), at=12.0)
    view = build_view(first, second)
    assert view.events_in_per_s == pytest.approx(100.0)
    assert view.events_out_per_s == pytest.approx(50.0)
    assert view.lag_messages == 11
    assert view.dead_letters == {"VALIDATION_FAILED": 3}
    assert view.orders_created == 7
    p50, p99 = view.latency["quote_to_order"]
    assert p50 is not None
    assert 0.1 < p50 <= 0.25
    assert p99 is not None
    assert 0.1 < p99 <= 0.25
    assert build_view(first, second, orders_created=9).orders_created == 9
    console = Console(record=True, width=120)
    console.print(render_view(view))
    assert "orders created" in console.export_text()


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.1, 10.0), (0.5, 60.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1 + 0.4 * 40 / 50)
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.5 + 0.5 * 39 / 40)
    assert histogram_quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]) is None
    assert histogram_quantile(0.99, [(1.0, 0.0), (float("inf"), 10.0)]) == 1.0


def test_lag_trend_over_the_last_200_seconds() -> None:
    growing = [(t, 10.0 + t) for t in range(0, 300, 10)]
    shrinking_at_end = [(t, 500.0 if t < 100 else 400.0 - t) for t in range(0, 300, 10)]
    flat = [(t, 50.0) for t in range(0, 300, 10)]
    # a stack that keeps up: lag jumps between 0 and a few hundred messages as batches come
    noisy = [(t, float((t * 37) % 300)) for t in range(0, 300, 5)]
    noisy[-1] = (noisy[-1][0], 299.0)
    high_but_steady = [(t, 5_000.0 + (t % 20) * 10) for t in range(0, 300, 10)]
    assert lag_grew(growing) is True
    assert lag_grew(shrinking_at_end) is False
    assert lag_grew(flat) is False
    assert lag_grew(noisy) is False
    assert lag_grew(high_but_steady) is False
    assert lag_grew([(0, 1.0), (10, 2.0), (20, 3.0)]) is None


def test_summary_counts_latency_and_trend() -> None:
    registry, inst, lag = _service()
    snaps = []
    for step in range(25):
        inst.events_consumed.labels("p", "t", "ok").inc(10)
        inst.handoff_latency_seconds.labels("status_to_crm").observe(0.04)
        lag.labels("g", "t", "0").set(step * 30)
        snaps.append(
            take_snapshot(parse_samples(generate_latest(registry).decode()), at=step * 10.0)
        )
    summary = summarize(snaps)
    assert summary.consumed == 250
    assert summary.lag_growing is True
    assert summary.final_lag == 720
    p50, _ = summary.latency["status_to_crm"]
    assert p50 is not None
    assert 0.025 < p50 <= 0.05
    console = Console(record=True, width=120)
    console.print(render_summary(summary))
    text = console.export_text()
    assert "growing" in text
    assert re.search(r"handoff p99 under 1.00 s\s+│ yes", text)

    inst.handoff_latency_seconds.labels("quote_to_order").observe(2.0)
    slow = summarize([take_snapshot(parse_samples(generate_latest(registry).decode()), at=300)])
    console = Console(record=True, width=120)
    console.print(render_summary(slow))
    assert "no: quote_to_order 2." in console.export_text()


def test_the_lag_trend_is_judged_over_the_load_not_the_drain() -> None:
    registry, _, lag = _service()
    snaps = []
    for step in range(40):
        # 250 s of load with lag climbing, then 140 s of drain with lag falling to 0
        value = step * 100 if step <= 25 else max(0, 2500 - (step - 25) * 200)
        lag.labels("g", "t", "0").set(value)
        snaps.append(
            take_snapshot(parse_samples(generate_latest(registry).decode()), at=step * 10.0)
        )
    assert summarize(snaps).lag_growing is False  # over the drain it looks fine
    during_load = summarize(snaps, load_ended_at=250.0)
    assert during_load.lag_growing is True
    assert during_load.final_lag == 0
    console = Console(record=True, width=120)
    console.print(render_summary(during_load))
    assert during_load.lag_window == (500, 1500, 2500)
    shown = r"lag \(last 200 s of the load\)\s+│ growing \(500 → 2,500 msgs, median 1,500\); 0 msgs"
    assert re.search(shown, console.export_text())


def test_parked_quotes_show_what_they_wait_for_and_the_time_left() -> None:
    registry = CollectorRegistry()
    inst = Instruments(registry, "processors")
    inst.join_grace.set(300)
    inst.parked_quotes.labels("account").set(3)
    inst.parked_oldest_age.labels("account").set(40)
    inst.parked_quotes.labels("link").set(0)
    inst.parked_oldest_age.labels("link").set(0)
    snap = take_snapshot(parse_samples(generate_latest(registry).decode()), 10.0)
    assert snap.parked == {"account": (3.0, 40.0), "link": (0.0, 0.0)}
    console = Console(width=160, record=True)
    console.print(render_view(build_view(None, snap)))
    text = console.export_text()
    assert re.search(r"parked, waiting for account\s+│ 3 \(longest 40 s, 260 s left", text), text
    assert re.search(r"parked, waiting for link\s+│ 0 ", text), text


def test_the_view_shows_which_child_of_up_was_restarted_and_how_often() -> None:
    registry = CollectorRegistry()
    restarts = Counter("interlock_service_restarts", "restarts", ["service"], registry=registry)
    restarts.labels("worker").inc(2)
    restarts.labels("sinks").inc(0)  # never restarted: no row
    snapshot = take_snapshot(parse_samples(generate_latest(registry).decode()), at=1.0)
    view = build_view(None, snapshot)
    assert view.restarts == {"worker": 2.0, "sinks": 0.0}
    console = Console(record=True, width=120)
    console.print(render_view(view))
    text = console.export_text()
    assert "restarts of worker" in text
    assert "restarts of sinks" not in text
