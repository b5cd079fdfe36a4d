"""A service's collector tuning: frozen start-up heap, rarer young collections, or nothing."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from interlock.collector import OLDER_THRESHOLDS, tune_collector

pytestmark = pytest.mark.unit


@pytest.fixture
def restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored")
def test_tuning_freezes_the_heap_and_spaces_young_collections() -> None:
    gc.unfreeze()
    assert tune_collector(50_000)
    assert gc.get_threshold() == (50_000, *OLDER_THRESHOLDS)
    assert gc.get_freeze_count() > 1000  # at least the imported modules' objects


@pytest.mark.usefixtures("restored")
def test_cycles_made_after_tuning_are_still_collected() -> None:
    tune_collector(50_000)

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # type: ignore[attr-defined]
    del a, b
    assert gc.collect() >= 2


@pytest.mark.usefixtures("restored")
def test_zero_keeps_pythons_collector() -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    assert not tune_collector(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("restored")
def test_the_webhook_receivers_server_tunes_the_collector_as_configured() -> None:
    from starlette.applications import Starlette

    from connectors.webhooks.service import receiver_server

    gc.unfreeze()
    receiver_server(Starlette(), "127.0.0.1", 0, 12_345)
    assert gc.get_threshold() == (12_345, *OLDER_THRESHOLDS)
    assert gc.get_freeze_count() > 1000


@pytest.mark.usefixtures("restored")
def test_a_services_metrics_show_the_collector_it_runs_with() -> None:
    from prometheus_client import generate_latest

    from interlock.metrics import new_registry

    registry = new_registry()
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)  # Python's
    assert 'interlock_gc_threshold{generation="0"} 700.0' in generate_latest(registry).decode()
    tune_collector(50_000)
    after = generate_latest(registry).decode()
    assert 'interlock_gc_threshold{generation="0"} 50000.0' in after
    assert f'interlock_gc_threshold{{generation="1"}} {float(OLDER_THRESHOLDS[0])}' in after
    frozen = gc.get_freeze_count()
    assert frozen > 1000
    assert f"interlock_gc_frozen_objects {float(frozen)}" in after
