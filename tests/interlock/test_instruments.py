"""Instruments: a labelled child is made once and counts into the same series."""

from __future__ import annotations

import pytest

from interlock.instruments import Instruments
from interlock.metrics import new_registry

pytestmark = pytest.mark.unit


def test_a_child_is_kept_per_metric_and_labels() -> None:
    registry = new_registry()
    metrics = Instruments(registry, "test")
    child = metrics.child(metrics.events_produced, "test", "topic-a")
    assert metrics.child(metrics.events_produced, "test", "topic-a") is child
    assert metrics.child(metrics.events_produced, "test", "topic-b") is not child
    assert metrics.child(metrics.events_produce_failed, "test", "topic-a") is not child
    child.inc()
    metrics.events_produced.labels("test", "topic-a").inc()
    value = registry.get_sample_value(
        "interlock_events_produced_total", {"service": "test", "topic": "topic-a"}
    )
    assert value == 2.0
