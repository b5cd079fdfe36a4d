"""Changelog offsets reach the open partitions' stores; tables are kept after clean stops only."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from processors.state import (
    CLEAN_STOP_MARKER,
    ChangelogCheckpoints,
    Tables,
    keep_tables_after_clean_stop,
)

pytestmark = pytest.mark.unit


class _Store:
    def __init__(self, open_partitions: set[int]) -> None:
        self._dbs = dict.fromkeys(open_partitions)
        self.persisted: dict[tuple[str, int], int] = {}

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        self.persisted[(tp.topic, tp.partition)] = offset


def _table(name: str, open_partitions: set[int]) -> Any:
    topic = SimpleNamespace(get_topic_name=lambda: f"app-{name}-changelog")
    return SimpleNamespace(changelog_topic=topic, data=_Store(open_partitions))


def test_offsets_go_to_their_tables_open_partitions_once() -> None:
    names = ["accounts", "identity", "seen", "orders", "parked", "correlation"]
    tables = Tables(**{n: _table(n, {0, 1}) for n in [*names, "writebacks", "lines"]})
    tables.seen = _table("seen", {0})  # partition 1 was revoked: its database is closed
    pending = [
        {
            ("app-orders-changelog", 0): 41,
            ("app-orders-changelog", 1): 7,
            ("app-seen-changelog", 0): 3,
            ("app-seen-changelog", 1): 9,
            ("commands.erp.create-order", 0): 5,  # not a changelog: ignored
        },
        {},
    ]
    output = SimpleNamespace(take_delivered=lambda: pending.pop(0), changelog_failed=False)
    checkpoints = ChangelogCheckpoints(tables, output)
    asyncio.run(checkpoints.persist())
    assert tables.orders.data.persisted == {
        ("app-orders-changelog", 0): 41,
        ("app-orders-changelog", 1): 7,
    }
    assert tables.seen.data.persisted == {("app-seen-changelog", 0): 3}
    assert tables.accounts.data.persisted == {}
    tables.orders.data.persisted.clear()
    asyncio.run(checkpoints.persist())  # nothing delivered since: nothing written
    assert tables.orders.data.persisted == {}


def _tables() -> Tables:
    names = ["accounts", "identity", "seen", "orders", "parked", "correlation", "writebacks"]
    return Tables(**{n: _table(n, {0}) for n in [*names, "lines"]})


def _databases(tabledir: Path) -> list[Path]:
    for name in ("orders-0.db", "seen-1.db"):
        (tabledir / name).mkdir(parents=True)
        (tabledir / name / "CURRENT").write_text("MANIFEST-000001\n")
    return sorted(tabledir.glob("*.db"))


def test_tables_are_kept_after_a_clean_stop_and_rebuilt_after_any_other(tmp_path: Path) -> None:
    tabledir = tmp_path / "tables"
    dbs = _databases(tabledir)
    output = SimpleNamespace(take_delivered=dict, changelog_failed=False)
    checkpoints = ChangelogCheckpoints(_tables(), output)
    assert checkpoints.mark_clean_stop(tabledir, undelivered=0)
    assert keep_tables_after_clean_stop(tabledir)
    assert sorted(tabledir.glob("*.db")) == dbs
    assert not (tabledir / CLEAN_STOP_MARKER).exists()  # running: a crash now is not clean

    # the run that follows crashes (no marker): its tables go, recovery rebuilds them
    assert not keep_tables_after_clean_stop(tabledir)
    assert list(tabledir.glob("*.db")) == []
    assert not keep_tables_after_clean_stop(tmp_path / "never-started")


def test_a_stop_with_changelog_records_left_or_lost_is_not_clean(tmp_path: Path) -> None:
    tabledir = tmp_path / "tables"
    _databases(tabledir)
    output = SimpleNamespace(take_delivered=dict, changelog_failed=False)
    checkpoints = ChangelogCheckpoints(_tables(), output)
    assert not checkpoints.mark_clean_stop(tabledir, undelivered=3)
    output.changelog_failed = True
    assert not checkpoints.mark_clean_stop(tabledir, undelivered=0)
    assert not keep_tables_after_clean_stop(tabledir)
    assert list(tabledir.glob("*.db")) == []
