"""The Faust internals the worker relies on are still the ones it was written and measured against.

The worker replaces or leans on a few non-public pieces of faust-streaming and aiokafka (see
``processors.app`` and ``processors.state``). A Faust or aiokafka upgrade that changes them must
fail here, loudly, rather than silently undo a correction (stale recovery, seconds of latency)
or send changelog records to the wrong place.
"""

from __future__ import annotations

import asyncio
import inspect
from importlib.metadata import version
from types import SimpleNamespace
from typing import Any

import aiokafka
import pytest
from faust.streams import _current_event
from faust.tables.base import Collection
from faust.tables.recovery import Recovery
from faust.tables.table import Table
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from processors.faust_fixes import (
    _getmany_snapshot,
    _original_thread_getmany,
    _original_thread_seek_to_committed,
    _resume_streams_last,
    _seek_to_committed_or_start,
    install_fetch_snapshot,
    install_resume_streams_last,
    install_seek_uncommitted_to_start,
)
from processors.state import ProducedTable

pytestmark = pytest.mark.unit


def _source(fn: object) -> str:
    return inspect.getsource(fn)  # type: ignore[arg-type]


def test_tested_versions() -> None:
    faust_version = tuple(int(p) for p in version("faust-streaming").split(".")[:2])
    assert faust_version == (0, 15), "re-check processors/app.py and state.py on a Faust upgrade"
    assert aiokafka.__version__.startswith("0.14."), "re-check interlock.tansu and processors.app"


def test_table_writes_still_go_through_send_changelog() -> None:
    on_set = _source(Table.on_key_set)
    on_del = _source(Table.on_key_del)
    assert "self.send_changelog(self.partition_for_key(key), key, value)" in on_set
    assert "fut.message.partition" in on_set
    assert "self.send_changelog(" in on_del
    assert "fut.message.partition" in on_del
    send = inspect.signature(Collection.send_changelog)
    assert list(send.parameters) == [
        "self",
        "partition",
        "key",
        "value",
        "key_serializer",
        "value_serializer",
    ]
    assert ProducedTable.send_changelog is not Collection.send_changelog


def test_current_event_is_where_it_was() -> None:
    assert _current_event.get(None) is None


def test_recovery_starts_after_the_offset_a_rocksdb_partition_holds() -> None:
    # ChangelogCheckpoints writes that offset; it skips partitions whose database is not open.
    from faust.stores.rocksdb import Store

    assert "persisted_offset = table.persisted_offset(tp)" in _source(Recovery._add)
    assert "self.offset_key" in _source(Store.set_persisted_offset)
    assert "self._dbs[partition]" in _source(Store._db_for_partition)
    assert "self._dbs.pop(tp.partition" in _source(Store.revoke_partitions)


def test_rocksdb_reads_in_an_event_stay_in_its_partition_and_outside_it_search_all() -> None:
    # read_any_partition clears the event context around a lookup for that reason.
    from faust.stores.rocksdb import Store
    from faust.streams import current_event

    get = _source(Store._get)
    assert get.index("event = current_event()") < get.index("partition = event.message.partition")
    assert "self._get_bucket_for_key(key)" in get
    assert "_current_event.get(None)" in _source(current_event)


def test_recovery_still_resumes_stream_partitions_before_seeking_them() -> None:
    # The order install_resume_streams_last corrects; if Faust fixes it, the wrapper can go.
    for step in (Recovery.on_recovery_completed, Recovery._resume_streams):
        body = _source(getattr(step, "__wrapped__", step))
        assert body.index("consumer.resume_partitions(") < body.index("consumer.perform_seek()")
        assert body.index("consumer.perform_seek()") < body.index("flow_control.resume()")


class _RecordingConsumer:
    """Records the order of the calls a recovery step makes (pure ordering, no broker)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def resume_partitions(self, tps: Any) -> None:
        self.calls.append(f"resume {sorted(tps)}")

    async def perform_seek(self) -> None:
        self.calls.append("seek")
        await asyncio.sleep(0)  # the window in which the fetch loop used to take records


async def _faust_like_step(self: Any, generation_id: int = 0) -> None:
    # Faust 0.15.3's order: resume the stream partitions, seek them, resume flow control.
    consumer = self.app.consumer
    consumer.resume_partitions({"quotes-0"})
    await consumer.perform_seek()
    consumer.calls.append("flow resumed")
    if self.fail:
        raise RuntimeError("rebalanced again")


def _run_step(fail: bool) -> _RecordingConsumer:
    consumer = _RecordingConsumer()
    step = _resume_streams_last(_faust_like_step)
    recovery = SimpleNamespace(app=SimpleNamespace(consumer=consumer), fail=fail)
    if fail:
        with pytest.raises(RuntimeError, match="rebalanced again"):
            asyncio.run(step(recovery))
    else:
        asyncio.run(step(recovery))
    return consumer


def test_stream_partitions_are_resumed_after_the_seek_and_the_flow() -> None:
    consumer = _run_step(fail=False)
    assert consumer.calls == ["seek", "flow resumed", "resume ['quotes-0']"]
    assert "resume_partitions" not in vars(consumer)  # the consumer's own method is back


def test_a_step_that_fails_still_resumes_its_partitions() -> None:
    consumer = _run_step(fail=True)
    assert consumer.calls == ["seek", "flow resumed", "resume ['quotes-0']"]
    assert "resume_partitions" not in vars(consumer)


def test_resume_streams_last_is_installed_once() -> None:
    install_resume_streams_last()
    first = Recovery.on_recovery_completed
    install_resume_streams_last()
    assert Recovery.on_recovery_completed is first
    assert hasattr(Recovery._resume_streams, "__wrapped__")


def test_aiokafka_still_reads_an_empty_partition_set_as_all_and_faust_passes_its_live_set() -> None:
    # What install_fetch_snapshot guards against; if either changes, re-check it.
    from aiokafka.consumer.fetcher import Fetcher
    from faust.transport.consumer import Consumer

    assert "if partitions and tp not in partitions" in _source(Fetcher.fetched_records)
    assert "active_partitions = self._get_active_partitions()" in _source(
        Consumer._wait_next_records
    )
    assert "self._fetch_records,\n" in _source(_original_thread_getmany).replace(" ", "")


class _RecordingThread:
    """Stands in for the consumer thread: records what the fetch would be asked for."""

    def __init__(self) -> None:
        self.asked: list[Any] = []

    def _ensure_consumer(self) -> Any:
        return SimpleNamespace(_max_poll_records=None)

    async def _fetch_records(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("not called through call_thread")

    async def call_thread(self, fn: Any, consumer: Any, active: Any, **kwargs: Any) -> Any:
        self.asked.append(active)
        return {"fetched": True}


def test_a_fetch_is_for_a_copy_of_the_active_partitions_and_none_for_an_empty_set() -> None:
    thread = _RecordingThread()
    live = {"quotes-0", "accounts-1"}
    assert asyncio.run(_getmany_snapshot(thread, live, 1.0)) == {"fetched": True}  # type: ignore[arg-type]
    asked = thread.asked.pop()
    live.clear()  # a pause during the fetch no longer changes what it returns
    assert asked == {"quotes-0", "accounts-1"}
    assert asyncio.run(_getmany_snapshot(thread, set(), 1.0)) == {}  # type: ignore[arg-type]
    assert thread.asked == []  # empty: not fetched at all (aiokafka would return everything)
    assert asyncio.run(_getmany_snapshot(thread, None, 1.0)) == {"fetched": True}  # type: ignore[arg-type]
    assert thread.asked == [None]  # a client-only app still asks for all
    install_fetch_snapshot()
    install_fetch_snapshot()
    assert AIOKafkaConsumerThread.getmany is _getmany_snapshot


def test_aiokafka_still_leaves_a_partition_without_a_committed_offset_where_it_is() -> None:
    # What install_seek_uncommitted_to_start corrects, and the discard that needs it.
    from faust.transport.consumer import Consumer

    assert "if offset and offset > 0:" in _source(aiokafka.AIOKafkaConsumer.seek_to_committed)
    assert "await self.perform_seek()" in _source(Consumer.getmany)
    assert "seek_to_committed" in _source(_original_thread_seek_to_committed)


class _SeekingThread:
    """Stands in for the consumer thread: committed offsets given, seeks to the start recorded."""

    def __init__(self, committed: dict[str, int | None], reset: str = "earliest") -> None:
        self.started: list[str] = []
        self.app = SimpleNamespace(conf=SimpleNamespace(consumer_auto_offset_reset=reset))
        self.consumer = SimpleNamespace(_is_changelog_tp=lambda tp: tp.endswith("-changelog"))

        async def seek_to_committed() -> dict[str, int | None]:
            return committed

        async def seek_to_beginning(*tps: str) -> None:
            self.started.extend(tps)

        self._aiokafka = SimpleNamespace(
            seek_to_committed=seek_to_committed, seek_to_beginning=seek_to_beginning
        )

    def _ensure_consumer(self) -> Any:
        return self._aiokafka

    async def call_thread(self, fn: Any, *args: Any) -> Any:
        return await fn(*args)


def test_stream_partitions_without_a_committed_offset_are_sought_to_their_start() -> None:
    committed = {"quotes-0": 42, "accounts-1": None, "app-orders-changelog": None}
    thread = _SeekingThread(committed)
    assert asyncio.run(_seek_to_committed_or_start(thread)) == committed  # type: ignore[arg-type]
    assert thread.started == ["accounts-1"]  # not the committed one, not a changelog
    latest = _SeekingThread(committed, reset="latest")
    asyncio.run(_seek_to_committed_or_start(latest))  # type: ignore[arg-type]
    assert latest.started == []  # "latest" has no start to go back to
    install_seek_uncommitted_to_start()
    install_seek_uncommitted_to_start()
    assert AIOKafkaConsumerThread.seek_to_committed is _seek_to_committed_or_start


def test_fausts_own_producer_is_idempotent_on_kafka_only() -> None:
    from faust.transport.drivers.aiokafka import Producer

    from processors.faust_fixes import install_idempotent_producer

    install_idempotent_producer()
    extra = Producer._settings_extra(SimpleNamespace())  # type: ignore[arg-type]
    assert extra == {"acks": "all", "enable_idempotence": True}
