"""Reads in an event without the read cache: each key is read from the partition's database
and decoded once per event, and never answered past a write the event did not make."""

from __future__ import annotations

import weakref
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.streams import _current_event
from faust.types import TP

from processors.state import make_tables
from tests.processors.test_rocksstore import _Event, event_of

pytestmark = pytest.mark.unit

pytest.importorskip("rocksdict")


def _orders(tmp_path: Path) -> Any:
    app = faust.App("memo-test", store="rocksdb://", datadir=str(tmp_path), broker="kafka://x:1")
    return make_tables(app, 2, changelog_emit=lambda *record: None, cache_entries=0).orders


class _CountingDB:
    """A partition's database that counts its reads."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.reads = 0

    def get(self, key: bytes) -> Any:
        self.reads += 1
        return self.db.get(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


def test_without_a_cache_an_event_reads_each_key_from_the_database_once(tmp_path: Path) -> None:
    """Within one event a key is read and decoded once; a write in it answers the next read
    (the same object, as on memory://), and the next event reads the database again."""
    orders = _orders(tmp_path)
    with event_of(0):
        orders["q1"] = {"n": 1}
    counting = orders.data._dbs[0] = _CountingDB(orders.data._dbs[0])
    with event_of(0):
        first = orders["q1"]
        assert orders.get("q1") is first
        assert "q1" in orders
        assert orders.get("q2") is None
        assert "q2" not in orders
        assert counting.reads == 2  # q1 and q2, once each
        written = {"n": 2}
        orders["q2"] = written
        assert orders["q2"] is written
        del orders["q1"]
        assert orders.get("q1") is None
        assert counting.reads == 3  # after a delete, the database again
    with event_of(0):
        assert orders["q2"] == {"n": 2}
        assert orders["q2"] is not written
        assert counting.reads == 4


def test_without_a_cache_a_write_of_another_event_is_read_back(tmp_path: Path) -> None:
    """An event's reads are not kept past a write made in another event's context (another
    task's), nor past a changelog batch applied by recovery."""
    orders = _orders(tmp_path)
    outer = _Event(0)
    token = _current_event.set(weakref.ref(outer))  # type: ignore[arg-type]
    try:
        assert orders.get("q1") is None
        with event_of(0):  # another task's event of the same partition
            orders["q1"] = {"n": 1}
        assert orders.get("q1") == {"n": 1}
        message = SimpleNamespace(key=b'"q1"', value=b'{"n": 3}', partition=0, offset=7,
                                  tp=TP(orders.changelog_topic.get_topic_name(), 0))  # fmt: skip
        orders.data.apply_changelog_batch([SimpleNamespace(message=message)], None, None)
        assert orders.get("q1") == {"n": 3}
    finally:
        _current_event.reset(token)
