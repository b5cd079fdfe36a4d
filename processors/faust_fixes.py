"""Every fix of faust-streaming's own bugs the worker needs, named, pinned to Faust 0.15.

Broker workarounds are not here (Tansu's are in ``interlock.tansu``). Each fix is idempotent
and installed by :func:`install_faust_fixes`, which ``processors.app.create_app`` calls:

- ``resume_streams_last``: Faust 0.15.3 ends a recovery by resuming the stream partitions
  *before* it seeks them to their committed offsets, then resumes flow control, which clears
  the stream queues. Records fetched before the rebalance and taken in that window are queued,
  marked read, and dropped with the queue: a restarted worker silently skips them, and stops
  committing at the gap (faust-streaming#216). The resume is held until the recovery step has
  sought them and resumed flow control. Behaviour test: tests/processors/test_table_recovery.py
  (exact counts across a restart, a SIGKILL and a rebalance). A step whose generation was
  superseded while it ran (a rebalance came during its seek, which can take a second) does not
  resume them at all: the new generation paused them for its own recovery, and resuming them
  let records in before that recovery's seek, which then skipped them for good (a two-worker
  burst lost 112 account events this way and committed nothing past the gap). Nor does it end
  the rebalance (``app.on_rebalance_end``): that would mark the new generation's rebalance
  over while it recovers, and take its sensor state.
- ``livelock_check_positioned``: Faust's livelock check reads a partition's aiokafka position,
  a property that asserts it is set; a partition sought to its start and not yet reset has
  none, and the AssertionError crashed the worker. Such a partition is skipped (nothing was
  fetched from it yet to verify).
- ``fetch_snapshot``: the fetcher asks for the partitions active when a fetch starts, never
  "all" (a set changed by a rebalance during the fetch fetched revoked partitions).
- ``seek_uncommitted_to_start``: stream partitions without a committed offset start at their
  beginning (``consumer_auto_offset_reset=earliest``), also after a rebalance.
- ``direct_delivery`` (``processors.delivery``): one step of delivery without four tasks per
  record.
- ``bounded_close`` (aiokafka 0.14): closing a TLS connection waits for the peer to end it too,
  up to Python's SSL shutdown timeout (30 s). On a loaded machine a worker's stop waited there,
  in the consumer's client close, past its shutdown timeout, after it had committed and left
  its group. A connection's close is given ``CLOSE_WAIT_S``, then its transport is aborted
  (tests/interlock/test_security.py freezes the broker during a close).
- ``idempotent_producer``: Faust asks for an idempotent producer only inside transactions; on
  Apache Kafka its own producer is made idempotent (acks=all). Not on Tansu, which rejects
  aiokafka's InitProducerId.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiokafka import TopicPartition
from aiokafka.conn import AIOKafkaConnection
from aiokafka.errors import IllegalStateError
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

from processors.delivery import install_direct_delivery

__all__ = [
    "CLOSE_WAIT_S",
    "install_bounded_close",
    "install_faust_fixes",
    "install_fetch_snapshot",
    "install_idempotent_producer",
    "install_livelock_check_positioned",
    "install_resume_streams_last",
    "install_seek_uncommitted_to_start",
]

log = logging.getLogger(__name__)


def install_faust_fixes(*, idempotent_producer: bool) -> None:
    """Install every fix (idempotent); ``idempotent_producer`` only where the broker allows it."""
    install_resume_streams_last()
    install_fetch_snapshot()
    install_seek_uncommitted_to_start()
    install_direct_delivery()
    install_livelock_check_positioned()
    install_bounded_close()
    if idempotent_producer:
        install_idempotent_producer()


def _idempotent_settings(self: Any) -> Mapping[str, Any]:
    return {"acks": "all", "enable_idempotence": True}


def install_idempotent_producer() -> None:
    """Make Faust's aiokafka producer idempotent (acks=all) on Apache Kafka (idempotent).

    Faust 0.15 asks for idempotence only inside transactions; the worker's outputs and
    changelogs go through the idempotent confluent-kafka producer, and this covers what Faust
    still sends itself. Not on Tansu, which rejects aiokafka's InitProducerId.
    """
    from faust.transport.drivers.aiokafka import Producer

    Producer._settings_extra = _idempotent_settings  # type: ignore[method-assign]


def _resume_streams_last(
    original: Callable[..., Awaitable[None]],
) -> Callable[..., Awaitable[None]]:
    """Wrap a Recovery step so that the stream partitions it resumes are resumed when it is over.

    By then the step has sought them to their committed offsets and resumed flow control
    (which clears the stream queues), so a record taken from them can no longer be queued
    before the seek and then cleared away. Only if the step's generation is still the
    consumer's: a newer one paused its partitions and resumes them after its own seek.
    """

    async def step(self: Recovery, generation_id: int = 0) -> None:
        app, consumer = self.app, self.app.consumer
        held: list[set[TP]] = []
        ended: list[bool] = []
        consumer.resume_partitions = lambda tps: held.append(set(tps))  # type: ignore[method-assign]
        app.on_rebalance_end = lambda: ended.append(True)  # type: ignore[method-assign]
        try:
            await original(self, generation_id)
        finally:
            del consumer.resume_partitions
            del app.on_rebalance_end
            if app.consumer_generation_id == generation_id:
                for tps in held:
                    consumer.resume_partitions(tps)
                if ended:
                    app.on_rebalance_end()
            elif held or ended:
                left = [what for what, did in (("resuming its stream partitions", held),
                                               ("ending the rebalance", ended)) if did]  # fmt: skip
                log.info(
                    "recovery of generation %s superseded by %s: %s left to the new generation",
                    generation_id,
                    app.consumer_generation_id,
                    " and ".join(left),
                )

    step.__wrapped__ = original  # type: ignore[attr-defined]
    return step


def install_resume_streams_last() -> None:
    """Make every recovery branch resume stream partitions last (idempotent)."""
    for name in ("on_recovery_completed", "_resume_streams"):
        current = getattr(Recovery, name)
        if not hasattr(current, "__wrapped__"):
            setattr(Recovery, name, _resume_streams_last(current))


_original_thread_getmany = AIOKafkaConsumerThread.getmany


async def _getmany_snapshot(
    self: AIOKafkaConsumerThread, active_partitions: Any, timeout: float
) -> Any:
    if active_partitions is not None:
        active_partitions = frozenset(active_partitions)
        if not active_partitions:
            return {}
    return await _original_thread_getmany(self, active_partitions, timeout)


def install_fetch_snapshot() -> None:
    """Fetch for the partitions active when a fetch starts, never "all" (idempotent)."""
    if AIOKafkaConsumerThread.getmany is not _getmany_snapshot:
        AIOKafkaConsumerThread.getmany = _getmany_snapshot  # type: ignore[method-assign]


_original_thread_seek_to_committed = AIOKafkaConsumerThread.seek_to_committed


async def _seek_to_committed_or_start(self: AIOKafkaConsumerThread) -> Mapping[Any, int]:
    committed: Mapping[Any, int] = await _original_thread_seek_to_committed(self)
    if self.app.conf.consumer_auto_offset_reset != "earliest":
        return committed
    fresh = [
        tp
        for tp, offset in committed.items()
        if offset is None and not self.consumer._is_changelog_tp(tp)
    ]
    if fresh:
        try:
            await self.call_thread(self._ensure_consumer().seek_to_beginning, *fresh)
        except IllegalStateError as exc:  # revoked meanwhile: the next assignment seeks again
            log.info("not seeking uncommitted partitions to their start: %s", exc)
    return committed


def install_seek_uncommitted_to_start() -> None:
    """Seek stream partitions without a committed offset to their start (idempotent)."""
    if AIOKafkaConsumerThread.seek_to_committed is not _seek_to_committed_or_start:
        AIOKafkaConsumerThread.seek_to_committed = _seek_to_committed_or_start  # type: ignore[method-assign]


_original_verify_event_path = AIOKafkaConsumerThread.verify_event_path


def _verify_event_path_positioned(self: AIOKafkaConsumerThread, now: float, tp: TP) -> None:
    consumer = self._consumer
    subscription = consumer._subscription.subscription if consumer is not None else None
    assignment = subscription.assignment if subscription is not None else None
    if assignment is not None:
        state = assignment.state_value(TopicPartition(tp.topic, tp.partition))
        if state is not None and not state.has_valid_position:
            return None  # being reset to its start or committed offset: nothing to verify yet
    return _original_verify_event_path(self, now, tp)


def install_livelock_check_positioned() -> None:
    """Skip the livelock check of a partition that has no position yet (idempotent)."""
    if AIOKafkaConsumerThread.verify_event_path is not _verify_event_path_positioned:
        AIOKafkaConsumerThread.verify_event_path = _verify_event_path_positioned  # type: ignore[method-assign]


CLOSE_WAIT_S = 2.0
"""How long a closing aiokafka connection waits for the broker to end it before aborting it."""

_original_connection_close = AIOKafkaConnection.close


def _close_bounded(self: AIOKafkaConnection, reason: Any = None, exc: Any = None) -> Any:
    writer = self._writer
    closed = _original_connection_close(self, reason=reason, exc=exc)
    if writer is not None and not closed.done():  # connected: its closed future exists
        abort = self._loop.call_later(CLOSE_WAIT_S, writer.transport.abort)
        closed.add_done_callback(lambda _closed: abort.cancel())
    return closed


def install_bounded_close() -> None:
    """Abort a connection that has not closed ``CLOSE_WAIT_S`` after its close (idempotent)."""
    if AIOKafkaConnection.close is not _close_bounded:
        AIOKafkaConnection.close = _close_bounded
