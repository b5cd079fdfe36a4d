"""The corrections the worker makes to Faust and aiokafka behave as intended (pure, no broker).

The worker replaces or leans on a few non-public pieces of faust-streaming and aiokafka (see
``processors.faust_fixes`` and ``processors.state``). Two things guard them on an upgrade:
``test_tested_versions`` fails on any other minor version, and the behaviour tests that run a
real worker on a real broker fail when a correction stops working: table values surviving a
SIGKILL and a rebalance (``test_table_recovery``), one order per quote through crashes and
rebalances (``test_crash_rebalance``), RocksDB tables rebuilt from the offset they hold
(``test_rocksdb_store``). This file tests the corrections themselves, on stand-ins.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiokafka
import pytest
from aiokafka import TopicPartition
from aiokafka.consumer.fetcher import OffsetResetStrategy
from aiokafka.consumer.subscription_state import SubscriptionState
from faust.streams import _current_event
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

from processors import faust_fixes
from processors.faust_fixes import (
    _getmany_snapshot,
    _resume_streams_last,
    _seek_to_committed_or_start,
    _verify_event_path_positioned,
    install_fetch_snapshot,
    install_livelock_check_positioned,
    install_resume_streams_last,
    install_seek_uncommitted_to_start,
)

pytestmark = pytest.mark.unit


def test_tested_versions() -> None:
    faust_version = tuple(int(p) for p in version("faust-streaming").split(".")[:2])
    assert faust_version == (0, 15), "re-check processors/app.py and state.py on a Faust upgrade"
    assert aiokafka.__version__.startswith("0.14."), "re-check interlock.tansu and processors.app"


def test_current_event_is_where_it_was() -> None:
    assert _current_event.get(None) is None


class _RecordingConsumer:
    """Records the order of the calls a recovery step makes (pure ordering, no broker)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def resume_partitions(self, tps: Any) -> None:
        self.calls.append(f"resume {sorted(tps)}")

    async def perform_seek(self) -> None:
        self.calls.append("seek")
        await asyncio.sleep(0)  # the window in which the fetch loop used to take records


class _RecordingApp:
    """The app's side of a step: its generation and the end of its rebalance."""

    def __init__(self, consumer: _RecordingConsumer) -> None:
        self.consumer = consumer
        self.consumer_generation_id = 3

    def on_rebalance_end(self) -> None:
        self.consumer.calls.append("rebalance ended")


async def _faust_like_step(self: Any, generation_id: int = 0) -> None:
    # Faust 0.15.3's order: resume the stream partitions, seek them, resume flow control.
    consumer = self.app.consumer
    consumer.resume_partitions({"quotes-0"})
    await consumer.perform_seek()
    if self.rebalance_during_seek:  # the consumer thread took a new assignment meanwhile
        self.app.consumer_generation_id += 1
        consumer.calls.append("paused by the new generation")
    consumer.calls.append("flow resumed")
    if self.fail:
        raise RuntimeError("rebalanced again")
    self.app.on_rebalance_end()


def _run_step(fail: bool, *, rebalance_during_seek: bool = False) -> _RecordingConsumer:
    consumer = _RecordingConsumer()
    step = _resume_streams_last(_faust_like_step)
    app = _RecordingApp(consumer)
    recovery = SimpleNamespace(
        app=app,
        fail=fail,
        rebalance_during_seek=rebalance_during_seek,
    )
    if fail:
        with pytest.raises(RuntimeError, match="rebalanced again"):
            asyncio.run(step(recovery, 3))
    else:
        asyncio.run(step(recovery, 3))
    return consumer


def test_stream_partitions_are_resumed_after_the_seek_and_the_flow() -> None:
    consumer = _run_step(fail=False)
    assert consumer.calls == ["seek", "flow resumed", "resume ['quotes-0']", "rebalance ended"]
    assert "resume_partitions" not in vars(consumer)  # the consumer's own method is back


def test_a_step_that_fails_still_resumes_its_partitions() -> None:
    consumer = _run_step(fail=True)
    assert consumer.calls == ["seek", "flow resumed", "resume ['quotes-0']"]
    assert "resume_partitions" not in vars(consumer)


def test_a_step_superseded_during_its_seek_leaves_the_partitions_to_the_new_generation() -> None:
    # A rebalance during the seek paused the partitions for the new generation's recovery;
    # resuming them here let records in before that recovery's seek, which skipped them.
    # Nor does it end the rebalance: the new generation's is still under way.
    consumer = _run_step(fail=False, rebalance_during_seek=True)
    assert consumer.calls == ["seek", "paused by the new generation", "flow resumed"]
    assert "resume_partitions" not in vars(consumer)
    consumer = _run_step(fail=True, rebalance_during_seek=True)
    assert consumer.calls == ["seek", "paused by the new generation", "flow resumed"]


def test_resume_streams_last_is_installed_once() -> None:
    install_resume_streams_last()
    first = Recovery.on_recovery_completed
    install_resume_streams_last()
    assert Recovery.on_recovery_completed is first
    assert hasattr(Recovery._resume_streams, "__wrapped__")


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


class _Recorder:
    """Stands in for a store class: records the keywords it is built with."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.keywords = set(kwargs)


def test_the_cached_store_is_built_with_every_keyword_faust_builds_its_stores_with(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # ProducedTable._new_store_by_url mirrors Collection._new_store_by_url's call: a keyword
    # Faust adds there on an upgrade must reach the cached store too.
    import faust
    from faust import stores

    from processors import state

    app = faust.App("kw-test", store="rocksdb://", datadir=str(tmp_path), broker="kafka://x:1")
    monkeypatch.setattr(stores, "by_url", lambda url: _Recorder)
    monkeypatch.setattr(state, "CachedRocksDBStore", _Recorder)
    table = state.ProducedTable(app, name="t", partitions=2, beacon=app.tables.beacon)
    faust_keywords = faust.Table._new_store_by_url(table, "rocksdb://").keywords
    ours = table._new_store_by_url("rocksdb://").keywords - {"cache_entries", "marked_at"}
    assert ours == faust_keywords
    assert "options" in ours


def _thread_with(state: Any) -> Any:
    async def assigned() -> SubscriptionState:  # aiokafka's state wants a running loop
        subscriptions = SubscriptionState()
        subscriptions.assign_from_user({tp})
        return subscriptions

    tp = TopicPartition("quotes", 0)
    subscriptions = asyncio.run(assigned())
    state(subscriptions.subscription.assignment.state_value(tp))
    return SimpleNamespace(_consumer=SimpleNamespace(_subscription=subscriptions))


def test_the_livelock_check_skips_a_partition_without_a_position(monkeypatch: Any) -> None:
    # aiokafka's position property asserts it is set; Faust's check read it for a partition
    # sought to its start and not yet reset, and the AssertionError crashed the worker.
    checked: list[Any] = []
    monkeypatch.setattr(
        faust_fixes, "_original_verify_event_path", lambda s, now, tp: checked.append(tp)
    )
    tp = TP("quotes", 0)
    unset = _thread_with(lambda state: state.await_reset(OffsetResetStrategy.EARLIEST))
    with pytest.raises(AssertionError):
        _ = unset._consumer._subscription.subscription.assignment.state_value(
            TopicPartition("quotes", 0)
        ).position  # what Faust's check read
    assert _verify_event_path_positioned(unset, 0.0, tp) is None
    assert checked == []
    positioned = _thread_with(lambda state: state.seek(5))
    _verify_event_path_positioned(positioned, 0.0, tp)
    assert checked == [tp]


def test_the_livelock_fix_is_installed_once() -> None:
    install_livelock_check_positioned()
    install_livelock_check_positioned()
    assert AIOKafkaConsumerThread.verify_event_path is _verify_event_path_positioned


@pytest.mark.parametrize(("kind", "wait"), [("kafka", 25), ("tansu", 100)])
def test_the_workers_consumer_fetches_as_configured(tmp_path: Path, kind: str, wait: int) -> None:
    """Faust hard-codes a 1,500 ms fetch wait and aiokafka fetches from 1 byte: the worker's
    consumer gets ``kafka.fetch_wait_ms`` and ``kafka.fetch_min_bytes`` instead."""
    from interlock.settings import Settings
    from processors.app import create_app

    settings = Settings().with_bootstrap("127.0.0.1:9")
    settings.kafka.broker_kind = kind  # type: ignore[assignment]
    settings.processors.data_dir = str(tmp_path)

    async def made() -> tuple[int, int]:
        app = create_app(settings, app_id=f"fetch-{kind}")
        consumer = app.consumer._thread._create_worker_consumer(app.transport)  # type: ignore[attr-defined]
        try:
            return consumer._fetch_max_wait_ms, consumer._fetch_min_bytes
        finally:
            await consumer.stop()

    assert asyncio.run(made()) == (wait, settings.kafka.fetch_min_bytes)
    assert settings.kafka.fetch_min_bytes > 1


def test_the_workers_monitor_keeps_only_what_fausts_consumer_reads(tmp_path: Path) -> None:
    """Faust's statistics per message, event and table write are for its web views (off);
    its consumer reads when each partition's stream last took an event, to warn of a stall
    (``verify_event_path``: re-check which monitor state it reads on a Faust upgrade)."""
    from interlock.settings import Settings
    from processors.app import create_app
    from processors.monitor import LeanMonitor

    settings = Settings().with_bootstrap("127.0.0.1:9")
    settings.processors.data_dir = str(tmp_path)

    async def check() -> None:
        app = create_app(settings, app_id="lean-monitor")
        monitor = app.monitor
        assert isinstance(monitor, LeanMonitor)
        app.sensors.add(monitor)  # as Faust does when the worker starts
        tp = TP("quotes", 0)
        table = SimpleNamespace(name="orders")
        app.sensors.on_message_in(tp, 5, SimpleNamespace())
        state = app.sensors.on_stream_event_in(tp, 5, SimpleNamespace(), SimpleNamespace())
        app.sensors.on_table_get(table, "k")
        app.sensors.on_table_set(table, "k", 1)
        app.sensors.on_stream_event_out(tp, 5, SimpleNamespace(), SimpleNamespace(), state)
        app.sensors.on_message_out(tp, 5, SimpleNamespace())
        assert tp in monitor.stream_inbound_time
        assert monitor.events_total == monitor.messages_received_total == 0
        assert monitor.tables == {}

    asyncio.run(check())


def test_fausts_stall_warning_still_sees_the_streams_events_with_the_lean_monitor() -> None:
    """Faust's consumer warns of a stream that stopped taking a partition's fetched records;
    it reads when the stream last took one from the monitor, which the lean one still keeps."""
    from time import monotonic

    from processors.monitor import LeanMonitor

    tp = TP("quotes", 0)
    monitor = LeanMonitor()
    slow: list[str] = []
    state = SimpleNamespace(highwater=10, position=5)  # fetched up to 10, committed 5
    assignment = SimpleNamespace(state_value=lambda _tp: state)
    consumer = SimpleNamespace(
        _fetcher=SimpleNamespace(
            _subscriptions=SimpleNamespace(subscription=SimpleNamespace(assignment=assignment))
        )
    )
    thread = SimpleNamespace(
        consumer=SimpleNamespace(
            app=SimpleNamespace(
                monitor=monitor, topics=SimpleNamespace(acks_enabled_for=lambda _t: True)
            )
        ),
        time_started=monotonic() - 1000.0,  # Faust's clock: the monotonic one
        tp_stream_timeout_secs=300.0,
        tp_commit_timeout_secs=300.0,
        tp_last_committed_at={},
        _verify_aiokafka_event_path=lambda _now, _tp: False,
        _ensure_consumer=lambda: consumer,
        _log_slow_processing_stream=lambda what, *_: slow.append(what),
        _log_slow_processing_commit=lambda what, *_: slow.append(what),
    )
    faust_fixes._original_verify_event_path(thread, monotonic(), tp)
    assert len(slow) == 1  # no event taken since the start: warned
    monitor.on_stream_event_in(tp, 5, SimpleNamespace(), SimpleNamespace())
    thread.tp_last_committed_at[tp] = monotonic()
    slow.clear()
    faust_fixes._original_verify_event_path(thread, monotonic(), tp)
    assert slow == []  # the stream takes events and commits: no warning
