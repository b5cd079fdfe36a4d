"""One object sends the tables' changelog records: the other tables' records of a commit
interval coalesced per key and leaving before the outputs' flush; the dedup marks held until
after it, behind the table records written meanwhile; both counted per changelog topic."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from interlock.instruments import Instruments
from interlock.settings import KafkaSettings, ProcessorSettings, Settings
from processors.output import TableChangelogs
from processors.worker import build_worker_app

pytestmark = pytest.mark.unit


class Sent:
    """What the changelogs emit and flush, in order, and the counters they export."""

    def __init__(self, max_pending: int = 4096) -> None:
        self.log: list[object] = []
        self.registry = CollectorRegistry()
        self.changelogs = TableChangelogs(
            lambda *record: self.log.append(record),
            self.flush,
            Instruments(self.registry, "test"),
            max_pending=max_pending,
        )

    async def flush(self) -> None:
        self.log.append("flush")

    def counted(self, topic: str) -> tuple[float, float]:
        """The exported (written, emitted) records of changelog ``topic``."""
        labels = {"topic": topic}
        written = self.registry.get_sample_value("interlock_changelog_writes_total", labels)
        emitted = self.registry.get_sample_value(
            "interlock_changelog_records_emitted_total", labels
        )
        return written or 0.0, emitted or 0.0


def test_marks_leave_at_their_release_behind_the_table_records_kept_since_then_flushed() -> None:
    sent = Sent()
    changelogs, log = sent.changelogs, sent.log
    changelogs.hold("seen-changelog", b"e1", b"1", None, 0)
    changelogs.coalesce("accounts-changelog", b"a1", b"v1", None, 0)
    asyncio.run(changelogs.release())  # the first hook: table records only
    assert log == [("accounts-changelog", b"a1", b"v1", None, 0)]
    # written while the outputs' flush ran
    changelogs.coalesce("accounts-changelog", b"a1", b"v2", None, 0)
    changelogs.hold("seen-changelog", b"e2", None, None, 2)  # a tombstone too
    assert len(log) == 1  # nothing more leaves before the outputs' flush has run
    asyncio.run(changelogs.release_marks())
    assert log[1:] == [
        ("accounts-changelog", b"a1", b"v2", None, 0),  # the effects before the marks
        ("seen-changelog", b"e1", b"1", None, 0),
        ("seen-changelog", b"e2", None, None, 2),
        "flush",
    ]
    changelogs.coalesce("accounts-changelog", b"a1", b"v3", None, 0)
    asyncio.run(changelogs.release_marks())  # no marks held: nothing emitted, no flush
    assert len(log) == 5
    assert len(changelogs) == 1  # left to the next commit's first hook
    assert sent.counted("seen-changelog") == (2, 2)
    assert sent.counted("accounts-changelog") == (2, 2)  # v3's write: counted at the next release


def test_a_worker_sends_table_records_before_the_outputs_flush_and_marks_after_it(
    tmp_path: Path,
) -> None:
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),  # never reached: nothing runs
        processors=ProcessorSettings(data_dir=str(tmp_path)),
    )
    app = build_worker_app(settings, partitions=3, producer=Producer({"bootstrap.servers": "x:1"}))
    hooks = [hook.__qualname__ for hook in app.flush_hooks]
    assert hooks == [
        "TableChangelogs.release",
        "Output.flush",
        "TableChangelogs.release_marks",
        "ChangelogCheckpoints.persist",
    ]
    changelogs = app.changelogs
    assert changelogs is not None
    assert app.flush_hooks[0] == changelogs.release
    assert app.flush_hooks[2] == changelogs.release_marks
    assert app.tables["seen"].changelog_emit == changelogs.hold  # marks are never coalesced
    others = [name for name in app.tables if name != "seen"]
    assert others
    assert all(app.tables[name].changelog_emit == changelogs.coalesce for name in others)


def test_table_records_keep_the_last_value_per_key_and_leave_at_release() -> None:
    sent = Sent()
    changelogs, emitted = sent.changelogs, sent.log
    changelogs.coalesce("ledger-changelog", b"q1", b"promised", None, 0)
    changelogs.coalesce("ledger-changelog", b"q2", b"promised", None, 1)
    changelogs.coalesce("ledger-changelog", b"q1", b"ordered", None, 0)  # replaces q1's first
    changelogs.coalesce("ledger-changelog", b"q1", b"told", [("h", b"v")], 3)  # other partition
    changelogs.coalesce("orders-changelog", b"q1", b"requested", None, 0)  # another table
    changelogs.coalesce("ledger-changelog", b"q2", None, None, 1)  # a tombstone replaces a value
    assert emitted == []
    assert len(changelogs) == 4
    asyncio.run(changelogs.release())
    assert emitted == [
        ("ledger-changelog", b"q1", b"ordered", None, 0),
        ("ledger-changelog", b"q2", None, None, 1),
        ("ledger-changelog", b"q1", b"told", [("h", b"v")], 3),
        ("orders-changelog", b"q1", b"requested", None, 0),
    ]
    assert len(changelogs) == 0
    assert sent.counted("ledger-changelog") == (5, 3)  # what coalescing saved: 2 records
    assert sent.counted("orders-changelog") == (1, 1)
    changelogs.coalesce("ledger-changelog", b"q2", b"again", None, 1)  # after a release: anew
    changelogs.emit_pending()  # as a clean stop does
    assert emitted[-1] == ("ledger-changelog", b"q2", b"again", None, 1)
    asyncio.run(changelogs.release())  # nothing kept: nothing emitted
    assert len(emitted) == 5
    assert sent.counted("ledger-changelog") == (6, 4)


def test_table_records_leave_early_once_as_many_as_the_cap_are_kept() -> None:
    sent = Sent(max_pending=3)
    changelogs, emitted = sent.changelogs, sent.log
    changelogs.coalesce("t", b"a", b"1", None, 0)
    changelogs.coalesce("t", b"a", b"2", None, 0)  # the same key: still one kept
    changelogs.coalesce("t", b"b", b"1", None, 0)
    assert emitted == []
    changelogs.coalesce("t", b"c", b"1", None, 0)  # the third kept: all three leave, latest values
    assert emitted == [("t", b"a", b"2", None, 0), ("t", b"b", b"1", None, 0),
                       ("t", b"c", b"1", None, 0)]  # fmt: skip
    assert len(changelogs) == 0
    changelogs.coalesce("t", b"a", b"3", None, 0)
    asyncio.run(changelogs.release())
    assert emitted[-1] == ("t", b"a", b"3", None, 0)
    assert sent.counted("t") == (5, 4)
