"""Table reads and writes without Faust's per-key layers: the same values, records and bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import faust
import pytest
from faust.sensors import Sensor

from processors.monitor import LeanMonitor
from processors.state import _JSON, _json_bytes, make_tables
from tests.processors.test_rocksstore import event_of

pytestmark = pytest.mark.unit


class _Counting(Sensor):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def on_table_get(self, table: Any, key: Any) -> None:
        self.calls.append(f"get {key}")

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        self.calls.append(f"set {key}")

    def on_table_del(self, table: Any, key: Any) -> None:
        self.calls.append(f"del {key}")


def _tables(tmp_path: Path, **app_options: Any) -> tuple[Any, list[tuple[Any, ...]]]:
    app = faust.App("ops-test", store="memory://", datadir=str(tmp_path), broker="kafka://x:1",
                    **app_options)  # fmt: skip
    emitted: list[tuple[Any, ...]] = []
    return make_tables(app, 2, changelog_emit=lambda *r: emitted.append(r)), emitted


def test_the_changelog_bytes_are_those_of_fausts_json_codec() -> None:
    values = [
        "acc-1", "Zürich ☃", 7, 2.5, True, None, [1, "a", None],
        {"name": "Ærø", "lines": [{"qty": 2, "price": 9.5}], "ok": False, "n": None},
        {"at": datetime(2026, 12, 6, 4, 0, 1, 123456, tzinfo=UTC), "amount": Decimal("12.30"),
         "id": UUID(int=7), 3: "int key"},
    ]  # fmt: skip
    for value in values:
        assert _json_bytes(value) == _JSON.dumps(value)


def test_with_the_lean_monitor_reads_and_writes_skip_the_sensors_and_keep_their_records(
    tmp_path: Path,
) -> None:
    tables, emitted = _tables(tmp_path, Monitor=LeanMonitor)
    accounts = tables.accounts
    assert accounts.table_sensors is False
    counting = _Counting()
    accounts.app.sensors.add(counting)  # added after the tables: not told, as documented
    with event_of(1):
        assert accounts.get("a") is None
        assert accounts.get("a", {}) == {}
        accounts["a"] = {"terms": "NET30"}
        assert accounts.get("a") == {"terms": "NET30"}
        assert accounts["a"] == {"terms": "NET30"}
        assert "a" in accounts
        del accounts["a"]
        assert accounts.get("a") is None
    assert counting.calls == []
    topic = "ops-test-accounts-changelog"
    assert emitted == [
        (topic, b'"a"', b'{"terms":"NET30"}', None, 1),
        (topic, b'"a"', None, None, 1),  # the tombstone, in the key's partition
    ]


def test_another_monitor_is_told_of_every_read_and_write(tmp_path: Path) -> None:
    tables, emitted = _tables(tmp_path)  # Faust's own monitor: table statistics kept
    accounts = tables.accounts
    assert accounts.table_sensors is True
    counting = _Counting()
    accounts.app.sensors.add(counting)
    with event_of(0):
        assert accounts.get("b") is None
        accounts["b"] = 1
        del accounts["b"]
    assert counting.calls == ["get b", "set b", "del b"]
    assert [record[2] for record in emitted] == [b"1", None]
