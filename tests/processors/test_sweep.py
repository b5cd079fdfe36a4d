"""The dedup sweep: on memory://, one walk of the tables per interval, whatever the number of
partitions; on rocksdb://, a read of the time-ordered index up to what is due, no walk at all."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.ownership import load_ownership
from interlock.instruments import Instruments
from interlock.metrics import new_registry
from processors.expiry import ExpiryIndex, index_key
from processors.pipeline import Pipeline, PipelineConfig
from processors.state import Tables
from processors.topic_names import ProcessorTopics

pytestmark = pytest.mark.unit

TTL = 3600.0


class _Walked(dict[str, Any]):
    """A table that counts how often it is walked."""

    walks = 0

    def items(self) -> Any:
        self.walks += 1
        return super().items()


def _pipeline(
    now: list[float], expiry: ExpiryIndex | None = None
) -> tuple[Pipeline, _Walked, _Walked]:
    seen, writebacks = _Walked(), _Walked()
    tables = Tables({}, {}, seen, {}, {}, {}, writebacks, {}, expiry.table if expiry else None)
    pipeline = Pipeline(
        PipelineConfig(ProcessorTopics("t."), load_ownership(), 300.0, TTL, 0.85),
        tables,
        decode=lambda data: None,
        encode=lambda event: b"",
        emit=lambda *args: None,
        dead_letter=lambda raw, exc: None,
        instruments=Instruments(new_registry(), "test"),
        clock=lambda: now[0],
        expiry=expiry,
    )
    return pipeline, seen, writebacks


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


class _Index(dict[str, Any]):
    """The expiry table of a RocksDB store, per partition in key order (what it reads)."""

    def __init__(self, partition: list[int]) -> None:
        super().__init__()
        self.partition = partition  # the current event's partition, as Faust's context gives
        self.where: dict[str, int] = {}
        self.reads = 0

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.where[key] = self.partition[0]

    def keys_of(self, partition: int) -> Any:
        for key in sorted(k for k in self if self.where[k] == partition):
            self.reads += 1
            yield key


def _indexed(now: list[float], batch: int = 1000) -> tuple[Pipeline, _Walked, _Walked, _Index]:
    current = [0]
    index = _Index(current)
    pipeline, seen, writebacks = _pipeline(now, ExpiryIndex(index, index.keys_of, batch))
    pipeline.current_partition = current  # type: ignore[attr-defined]
    return pipeline, seen, writebacks, index


def _mark(pipeline: Pipeline, key: str, partition: int) -> None:
    pipeline.current_partition[0] = partition  # type: ignore[attr-defined]
    pipeline.mark_seen(key, partition)


def test_indexed_sweep_reads_only_what_is_due_and_never_walks() -> None:
    now = [1000.0]
    pipeline, seen, writebacks, index = _indexed(now)
    for i in range(3):
        _mark(pipeline, f"old-{i}", 0)
    _mark(pipeline, "old-elsewhere", 1)
    now[0] += 10
    for i in range(50):
        _mark(pipeline, f"new-{i}", 0)
    assert index_key(1000.0, "s", "old-0") in index
    now[0] = 1000.0 + TTL + 5  # the old marks are due, the new ones are not
    pipeline.on_tick(0, sweep=True)
    assert sorted(k for k in seen if k.startswith("old")) == ["old-elsewhere"]
    assert len([k for k in seen if k.startswith("new")]) == 50
    assert index.reads == 4  # three due entries and the first one not yet due
    assert (seen.walks, writebacks.walks) == (0, 0)
    assert len(index) == 51  # the due entries of partition 0 are gone, the others stay


def test_indexed_sweep_keeps_a_mark_made_again_and_goes_on_past_a_batch() -> None:
    now = [1000.0]
    pipeline, seen, _, index = _indexed(now, batch=2)
    for i in range(5):
        _mark(pipeline, f"id-{i}", 0)
    now[0] = 1000.0 + TTL - 1
    _mark(pipeline, "id-0", 0)  # seen again: its first entry falls due, the mark does not
    now[0] = 1000.0 + TTL + 1
    pipeline.on_tick(0, sweep=True)  # a batch of 2: id-0's old entry and id-1
    assert sorted(seen) == ["id-0", "id-2", "id-3", "id-4"]
    pipeline.on_tick(0, sweep=False)  # more was due: the next tick goes on without waiting
    pipeline.on_tick(0, sweep=False)
    assert sorted(seen) == ["id-0"]
    assert list(index) == [index_key(1000.0 + TTL - 1, "s", "id-0")]
    pipeline.on_tick(0, sweep=False)  # nothing left over: no read until the next interval
    reads = index.reads
    pipeline.on_tick(0, sweep=False)
    assert index.reads == reads


def test_indexed_sweep_forgets_a_deals_written_state_after_the_ttl() -> None:
    now = [1000.0]
    pipeline, _, writebacks, index = _indexed(now)
    writebacks["deal-1"] = {"status": "SHIPPED", "_written_at": 1000.0, "_partition": 0}
    index[index_key(1000.0, "w", "deal-1")] = 1
    pipeline.on_tick(0, sweep=True)
    assert "deal-1" in writebacks
    now[0] += TTL
    pipeline.on_tick(0, sweep=True)
    assert writebacks == {}
    assert len(index) == 0


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
def test_both_stores_forget_the_same_marks(store: str) -> None:
    """One expiry path: the walk (memory://) and the index (rocksdb://) find the due marks
    differently, and forget the same ones."""
    now = [1000.0]
    if store == "rocksdb":
        pipeline, seen, writebacks, _ = _indexed(now, batch=1)  # a batch of one: several ticks
    else:
        pipeline, seen, writebacks = _pipeline(now)
        pipeline.current_partition = [0]  # type: ignore[attr-defined]

    def write(partition: int, seen_id: str | None = None, deal: str | None = None) -> None:
        pipeline.current_partition[0] = partition  # type: ignore[attr-defined]
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
    pipeline.on_tick(0, sweep=True)
    pipeline.on_tick(1, sweep=True)
    for _ in range(3):
        pipeline.on_tick(0, sweep=False)
        pipeline.on_tick(1, sweep=False)
    assert sorted(seen) == ["new-0", "old-1"]
    assert sorted(writebacks) == ["deal-0"]
