"""The dedup sweep: on memory://, one walk of the tables per interval, whatever the number of
partitions; on rocksdb://, a read of the time index the stores keep, up to what is due."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import faust
import pytest

from contracts.ownership import load_ownership
from interlock.instruments import Instruments
from interlock.metrics import new_registry
from processors.expiry import ExpiryIndex
from processors.pipeline import Pipeline, PipelineConfig
from processors.rocksstore import by_time_key, due_entries
from processors.state import Tables, make_tables
from processors.topic_names import ProcessorTopics
from tests.processors.test_rocksstore import event_of

pytestmark = pytest.mark.unit

TTL = 3600.0


class _Walked(dict[str, Any]):
    """A table that counts how often it is walked."""

    walks = 0

    def items(self) -> Any:
        self.walks += 1
        return super().items()


def _pipeline(now: list[float]) -> tuple[Pipeline, _Walked, _Walked]:
    seen, writebacks = _Walked(), _Walked()
    return _over(Tables({}, {}, seen, {}, {}, {}, writebacks, {}), now, None), seen, writebacks


def _over(tables: Tables, now: list[float], expiry: ExpiryIndex | None) -> Pipeline:
    return Pipeline(
        PipelineConfig(ProcessorTopics("t."), load_ownership(), 300.0, TTL, 0.85),
        tables,
        decode=lambda data: None,
        encode=lambda event: b"",
        emit=lambda *args: None,
        dead_letter=lambda raw, exc, durable: None,
        instruments=Instruments(new_registry(), "test"),
        clock=lambda: now[0],
        expiry=expiry,
    )


def test_each_partition_forgets_its_own_expired_keys_after_one_walk() -> None:
    now = [0.0]
    pipeline, seen, writebacks = _pipeline(now)
    for p in range(3):
        seen[f"old-{p}"] = [0.0, p]
        seen[f"new-{p}"] = [TTL, p]
        writebacks[f"deal-{p}"] = {"status": "SHIPPED", "_written_at": 0.0, "_partition": p}
    now[0] = TTL + 1

    pipeline.on_tick(0, sweep=True)
    assert "old-0" not in seen
    assert "deal-0" not in writebacks
    assert {"old-1", "old-2"} <= seen.keys()  # another partition's tick leaves them
    seen["old-1"] = [TTL + 1, 1]  # marked again after the walk: no longer expired
    pipeline.on_tick(1, sweep=True)
    pipeline.on_tick(2, sweep=True)
    assert sorted(seen) == ["new-0", "new-1", "new-2", "old-1"]
    assert writebacks == {}
    assert (seen.walks, writebacks.walks) == (1, 1)  # three partitions, one walk each

    now[0] = 2 * TTL + 2
    pipeline.on_tick(0, sweep=True)  # partition 0 took its share: the next interval walks again
    assert (seen.walks, writebacks.walks) == (2, 2)
    assert sorted(seen) == ["new-1", "new-2", "old-1"]


def test_a_tick_without_sweep_forgets_nothing() -> None:
    now = [TTL + 1]
    pipeline, seen, _ = _pipeline(now)
    seen["old"] = [0.0, 0]
    pipeline.on_tick(0, sweep=False)
    assert "old" in seen
    assert seen.walks == 0


class _Rocks:
    """``seen`` and ``writebacks`` on real ``rocksdb://`` stores with their time index, and a
    pipeline whose ticks run in their partition's event, as the worker's do."""

    def __init__(self, tmp_path: Path, now: list[float], batch: int = 1000) -> None:
        app = faust.App("sweep", store="rocksdb://", datadir=str(tmp_path), broker="kafka://x:1")
        made = make_tables(app, 2, changelog_emit=lambda *record: None, expiry_index=True,
                           cache_entries=16)  # fmt: skip
        self.seen, self.writebacks = made.seen, made.writebacks
        tables = Tables({}, {}, self.seen, {}, {}, {}, self.writebacks, {})
        self.pipeline = _over(tables, now, ExpiryIndex(batch))

    def mark(self, key: str, partition: int) -> None:
        with event_of(partition):
            self.pipeline.mark_seen(key, partition)

    def tick(self, partition: int, sweep: bool = True) -> None:
        with event_of(partition):
            self.pipeline.on_tick(partition, sweep=sweep)

    def keys(self, table: Any, partition: int) -> list[bytes]:
        """The keys ``partition``'s database holds (Faust's offset key left out)."""
        store = table.data
        db = store._dbs[partition]
        return sorted(k for k in db.keys() if k != store.offset_key)  # noqa: SIM118 (an Rdict)

    def index(self, table: Any, partition: int) -> list[bytes]:
        store = table.data
        return list(store._time_index(partition, store._dbs[partition]).keys())


def _seen_ids(rocks: _Rocks, partition: int) -> list[str]:
    return [json.loads(k) for k in rocks.keys(rocks.seen, partition)]


class _Counted:
    """A time index whose reads are counted."""

    def __init__(self, entries: list[bytes]) -> None:
        self.entries = sorted(entries)
        self.reads = 0

    def keys(self) -> Any:
        for entry in self.entries:
            self.reads += 1
            yield entry


def test_the_index_is_read_only_up_to_the_first_entry_not_due() -> None:
    index = _Counted([by_time_key(t, f'"id-{t}"'.encode()) for t in (1.0, 2.0, 3.0, 50.0, 60.0)])
    assert due_entries(index, 3.0, 100) == [b'0000000001000|"id-1.0"',
                                            b'0000000002000|"id-2.0"',
                                            b'0000000003000|"id-3.0"']  # fmt: skip
    assert index.reads == 4  # three due and the first one not yet due
    assert len(due_entries(_Counted(index.entries), 100.0, 2)) == 2  # at most a batch


def test_indexed_sweep_forgets_only_what_is_due_in_its_partition(tmp_path: Path) -> None:
    now = [1000.0]
    rocks = _Rocks(tmp_path, now)
    for i in range(3):
        rocks.mark(f"old-{i}", 0)
    rocks.mark("old-elsewhere", 1)
    now[0] += 10
    for i in range(50):
        rocks.mark(f"new-{i}", 0)
    assert by_time_key(1000.0, b'"old-0"') in rocks.index(rocks.seen, 0)
    now[0] = 1000.0 + TTL + 5  # the old marks are due, the new ones are not
    rocks.tick(0)
    assert [k for k in _seen_ids(rocks, 0) if k.startswith("old")] == []
    assert len(_seen_ids(rocks, 0)) == 50
    assert _seen_ids(rocks, 1) == ["old-elsewhere"]  # another partition's tick leaves it
    assert len(rocks.index(rocks.seen, 0)) == 50  # the due entries of partition 0 are gone
    assert len(rocks.index(rocks.seen, 1)) == 1


def test_indexed_sweep_keeps_a_mark_made_again_and_goes_on_past_a_batch(tmp_path: Path) -> None:
    now = [1000.0]
    rocks = _Rocks(tmp_path, now, batch=2)
    for i in range(5):
        rocks.mark(f"id-{i}", 0)
    now[0] = 1000.0 + TTL - 1
    rocks.mark("id-0", 0)  # seen again: its first entry falls due, the mark does not
    now[0] = 1000.0 + TTL + 1
    rocks.tick(0)  # a batch of 2: id-0's old entry and id-1
    assert _seen_ids(rocks, 0) == ["id-0", "id-2", "id-3", "id-4"]
    rocks.tick(0, sweep=False)  # more was due: the next tick goes on without waiting
    rocks.tick(0, sweep=False)
    assert _seen_ids(rocks, 0) == ["id-0"]
    assert rocks.index(rocks.seen, 0) == [by_time_key(1000.0 + TTL - 1, b'"id-0"')]


def test_indexed_sweep_forgets_a_deals_written_state_after_the_ttl(tmp_path: Path) -> None:
    now = [1000.0]
    rocks = _Rocks(tmp_path, now)
    with event_of(0):
        rocks.pipeline.written.put("deal-1", {"status": "SHIPPED"}, at=1000.0, partition=0)
    rocks.tick(0)
    assert rocks.keys(rocks.writebacks, 0) == [b'"deal-1"']
    now[0] += TTL
    rocks.tick(0)
    assert rocks.keys(rocks.writebacks, 0) == []
    assert rocks.index(rocks.writebacks, 0) == []


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
def test_both_stores_forget_the_same_marks(store: str, tmp_path: Path) -> None:
    """One expiry path: the walk (memory://) and the index (rocksdb://) find the due marks
    differently, and forget the same ones."""
    now = [1000.0]
    if store == "rocksdb":
        rocks = _Rocks(tmp_path, now, batch=1)  # a batch of one: several ticks
        pipeline, seen, writebacks = rocks.pipeline, rocks.seen, rocks.writebacks
    else:
        pipeline, seen, writebacks = _pipeline(now)

    def write(partition: int, seen_id: str | None = None, deal: str | None = None) -> None:
        with event_of(partition):
            if seen_id:
                pipeline.mark_seen(seen_id, partition)
            if deal:
                pipeline.written.put(deal, {"status": "SHIPPED"}, at=now[0], partition=partition)

    write(0, "old-0", "deal-0")
    write(1, "old-1", "deal-1")
    now[0] += 10
    write(0, "new-0")
    now[0] = 1000.0 + TTL - 1
    write(1, "old-1")  # seen again before it expired
    write(0, deal="deal-0")  # written again
    now[0] = 1000.0 + TTL + 5
    for sweep in (True, False, False, False):
        for partition in (0, 1):
            with event_of(partition):
                pipeline.on_tick(partition, sweep=sweep)

    def held(table: Any) -> list[str]:
        if store == "memory":
            return sorted(table)
        return sorted(json.loads(k) for p in (0, 1) for k in rocks.keys(table, p))

    assert held(seen) == ["new-0", "old-1"]
    assert held(writebacks) == ["deal-0"]
