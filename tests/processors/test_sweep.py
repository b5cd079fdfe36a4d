"""The dedup sweep: one walk of the tables per interval, whatever the number of partitions."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.ownership import load_ownership
from interlock.instruments import Instruments
from interlock.metrics import new_registry
from processors.pipeline import Pipeline, PipelineConfig
from processors.state import Tables
from processors.topics import ProcessorTopics

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
    tables = Tables({}, {}, seen, {}, {}, {}, writebacks, {})
    pipeline = Pipeline(
        PipelineConfig(ProcessorTopics("t."), load_ownership(), 300.0, TTL, 0.85),
        tables,
        decode=lambda data: None,
        encode=lambda event: b"",
        emit=lambda *args: None,
        dead_letter=lambda raw, exc: None,
        instruments=Instruments(new_registry(), "test"),
        clock=lambda: now[0],
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
