"""The Faust internals the worker relies on are still the ones it was written and measured against.

The worker replaces or leans on a few non-public pieces of faust-streaming and aiokafka (see
``processors.app`` and ``processors.state``). A Faust or aiokafka upgrade that changes them must
fail here, loudly, rather than silently undo a correction (stale recovery, seconds of latency)
or send changelog records to the wrong place.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import aiokafka
import pytest
from faust.streams import _current_event
from faust.tables.base import Collection
from faust.tables.recovery import Recovery
from faust.tables.table import Table
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from processors.app import (
    _original_build_highwaters,
    _original_create_worker_consumer,
    install_fetch_max_wait,
    install_true_highwaters,
)
from processors.state import ProducedTable

pytestmark = pytest.mark.unit


def _source(fn: object) -> str:
    return inspect.getsource(fn)  # type: ignore[arg-type]


def test_tested_versions() -> None:
    faust_version = tuple(int(p) for p in version("faust-streaming").split(".")[:2])
    assert faust_version == (0, 15), "re-check processors/app.py and state.py on a Faust upgrade"
    assert aiokafka.__version__.startswith("0.14."), "re-check install_fetch_max_wait"


def test_worker_consumer_fetch_wait_is_still_hard_coded_and_read_at_start() -> None:
    install_fetch_max_wait()
    assert "fetch_max_wait_ms=1500" in _source(_original_create_worker_consumer)
    assert AIOKafkaConsumerThread._create_worker_consumer is not _original_create_worker_consumer
    start = _source(aiokafka.AIOKafkaConsumer.start)
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in start


def test_table_writes_still_go_through_send_changelog() -> None:
    on_set = _source(Table.on_key_set)
    on_del = _source(Table.on_key_del)
    assert "self.send_changelog(self.partition_for_key(key), key, value)" in on_set
    assert "fut.message.partition" in on_set
    assert "self.send_changelog(" in on_del
    assert "fut.message.partition" in on_del
    send = inspect.signature(Collection.send_changelog)
    assert list(send.parameters) == [
        "self",
        "partition",
        "key",
        "value",
        "key_serializer",
        "value_serializer",
    ]
    assert ProducedTable.send_changelog is not Collection.send_changelog


def test_recovery_highwaters_and_current_event_are_where_they_were() -> None:
    install_true_highwaters()
    assert Recovery._build_highwaters is not _original_build_highwaters
    assert list(inspect.signature(_original_build_highwaters).parameters) == [
        "self",
        "consumer",
        "tps",
        "destination",
        "title",
    ]
    assert _current_event.get(None) is None
