"""Dedup marks reach their changelog only after the outputs before them are durable; the
other tables' records of a commit interval are coalesced per key and leave before that flush."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from confluent_kafka import Producer

from interlock.settings import KafkaSettings, ProcessorSettings, Settings
from processors.output import CoalescedChangelog, HeldChangelog
from processors.worker import build_worker_app

pytestmark = pytest.mark.unit


def test_held_records_are_emitted_in_order_at_release_then_flushed() -> None:
    log: list[object] = []

    async def flush() -> None:
        log.append("flush")

    held = HeldChangelog(
        lambda *record: log.append(record), flush, before=lambda: log.append("effects")
    )
    held("seen-changelog", b"e1", b"1", None, 0)
    held("seen-changelog", b"e2", None, None, 2)  # a tombstone too
    assert log == []  # nothing leaves before the outputs' flush has run
    asyncio.run(held.release())
    assert log == [
        "effects",  # the coalesced table records written meanwhile go first
        ("seen-changelog", b"e1", b"1", None, 0),
        ("seen-changelog", b"e2", None, None, 2),
        "flush",
    ]
    asyncio.run(held.release())  # nothing held: no emit, no flush
    assert log[-1] == "flush"
    assert len(log) == 4


def test_a_worker_releases_its_marks_after_the_outputs_flush_and_before_the_checkpoints(
    tmp_path: Path,
) -> None:
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),  # never reached: nothing runs
        processors=ProcessorSettings(data_dir=str(tmp_path)),
    )
    app = build_worker_app(settings, partitions=3, producer=Producer({"bootstrap.servers": "x:1"}))
    hooks = [hook.__qualname__ for hook in app.flush_hooks]
    assert hooks == [
        "CoalescedChangelog.release",
        "Output.flush",
        "HeldChangelog.release",
        "ChangelogCheckpoints.persist",
    ]
    changelogs, marks = app.flush_hooks[0].__self__, app.flush_hooks[2].__self__
    assert app.tables["seen"].changelog_emit is marks  # marks are held, never coalesced away
    assert marks._before == changelogs.emit_pending  # their effects are queued before them
    assert app.changelogs is changelogs
    others = [name for name in app.tables if name != "seen"]
    assert others
    assert all(app.tables[name].changelog_emit is changelogs for name in others)


def test_coalesced_records_keep_the_last_value_per_key_and_leave_at_release() -> None:
    emitted: list[tuple[object, ...]] = []
    changelogs = CoalescedChangelog(lambda *record: emitted.append(record))
    changelogs("ledger-changelog", b"q1", b"promised", None, 0)
    changelogs("ledger-changelog", b"q2", b"promised", None, 1)
    changelogs("ledger-changelog", b"q1", b"ordered", None, 0)  # replaces q1's first
    changelogs("ledger-changelog", b"q1", b"told", [("h", b"v")], 3)  # another partition
    changelogs("orders-changelog", b"q1", b"requested", None, 0)  # another table
    changelogs("ledger-changelog", b"q2", None, None, 1)  # a tombstone replaces a value
    assert emitted == []
    assert len(changelogs) == 4
    asyncio.run(changelogs.release())
    assert emitted == [
        ("ledger-changelog", b"q1", b"ordered", None, 0),
        ("ledger-changelog", b"q2", None, None, 1),
        ("ledger-changelog", b"q1", b"told", [("h", b"v")], 3),
        ("orders-changelog", b"q1", b"requested", None, 0),
    ]
    assert (changelogs.written, changelogs.emitted, len(changelogs)) == (6, 4, 0)
    changelogs("ledger-changelog", b"q2", b"again", None, 1)  # after a release: a new record
    changelogs.emit_pending()
    assert emitted[-1] == ("ledger-changelog", b"q2", b"again", None, 1)
    asyncio.run(changelogs.release())  # nothing kept: nothing emitted
    assert len(emitted) == 5


def test_coalesced_records_leave_early_once_as_many_as_the_cap_are_kept() -> None:
    emitted: list[tuple[object, ...]] = []
    changelogs = CoalescedChangelog(lambda *record: emitted.append(record), max_pending=3)
    changelogs("t", b"a", b"1", None, 0)
    changelogs("t", b"a", b"2", None, 0)  # the same key: still one kept
    changelogs("t", b"b", b"1", None, 0)
    assert emitted == []
    changelogs("t", b"c", b"1", None, 0)  # the third kept: all three leave, latest values
    assert emitted == [("t", b"a", b"2", None, 0), ("t", b"b", b"1", None, 0),
                       ("t", b"c", b"1", None, 0)]  # fmt: skip
    assert len(changelogs) == 0
    changelogs("t", b"a", b"3", None, 0)
    asyncio.run(changelogs.release())
    assert emitted[-1] == ("t", b"a", b"3", None, 0)
    assert (changelogs.written, changelogs.emitted) == (5, 4)
