"""ChangelogCheckpoints: the delivered changelog offsets reach the stores of open partitions."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from processors.state import ChangelogCheckpoints, Tables

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
    checkpoints = ChangelogCheckpoints(tables, lambda: pending.pop(0))
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
