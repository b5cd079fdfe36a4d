"""Dedup marks reach their changelog only after the outputs before them are durable."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from confluent_kafka import Producer

from interlock.settings import KafkaSettings, ProcessorSettings, Settings
from processors.output import HeldChangelog
from processors.worker import build_worker_app

pytestmark = pytest.mark.unit


def test_held_records_are_emitted_in_order_at_release_then_flushed() -> None:
    log: list[object] = []

    async def flush() -> None:
        log.append("flush")

    held = HeldChangelog(lambda *record: log.append(record), flush)
    held("seen-changelog", b"e1", b"1", None, 0)
    held("seen-changelog", b"e2", None, None, 2)  # a tombstone too
    assert log == []  # nothing leaves before the outputs' flush has run
    asyncio.run(held.release())
    assert log == [
        ("seen-changelog", b"e1", b"1", None, 0),
        ("seen-changelog", b"e2", None, None, 2),
        "flush",
    ]
    asyncio.run(held.release())  # nothing held: no emit, no flush
    assert log[-1] == "flush"
    assert len(log) == 3


def test_a_worker_releases_its_marks_after_the_outputs_flush_and_before_the_checkpoints(
    tmp_path: Path,
) -> None:
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),  # never reached: nothing runs
        processors=ProcessorSettings(data_dir=str(tmp_path)),
    )
    app = build_worker_app(settings, partitions=3, producer=Producer({"bootstrap.servers": "x:1"}))
    hooks = [hook.__qualname__ for hook in app.flush_hooks]
    assert hooks == ["Output.flush", "HeldChangelog.release", "ChangelogCheckpoints.persist"]
    marks = app.flush_hooks[1].__self__
    assert app.tables["seen"].changelog_emit is marks
