"""The Faust application, configured from the one Settings, and how a worker runs it.

On Tansu (``kafka.broker_kind``), ``create_app`` also installs that broker's workarounds
(``interlock.tansu.install_worker_workarounds``: true changelog highwaters, the configured
fetch wait); on Apache Kafka none of them runs.

Faust 0.15.3 also ends a recovery by resuming the stream partitions *before* it seeks them to
their committed offsets, then resumes flow control, which clears the stream queues. Records that
were fetched before the rebalance and taken in that window are queued, marked read, and then
dropped with the queue: a restarted worker silently skips them, and stops committing at the gap
(or, on a partition without a committed offset, never sees them again); faust-streaming#216
reports the same race. ``install_resume_streams_last`` holds the resume of the stream
partitions until the recovery step has sought them and resumed flow control.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import faust
from aiokafka.errors import IllegalStateError
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

from interlock.settings import Settings
from processors.delivery import install_direct_delivery
from processors.state import ChangelogCheckpoints

__all__ = [
    "STOP_GAVE_UP",
    "InterlockApp",
    "create_app",
    "install_fetch_snapshot",
    "install_idempotent_producer",
    "install_resume_streams_last",
    "install_seek_uncommitted_to_start",
    "run_worker",
]

log = logging.getLogger(__name__)


FlushHook = Callable[[], Awaitable[None]]


class InterlockApp(faust.App):
    """A Faust app that also knows the librdkafka settings of its cluster.

    ``flush_hooks`` run whenever Faust flushes its producer, which it does right before it
    commits consumed offsets: outputs produced by other producers (confluent-kafka) are made
    durable there, so an offset is never committed ahead of what its events produced.
    """

    interlock_settings: Settings
    flush_hooks: list[FlushHook]
    fetch_max_wait_ms: int | None = None
    """Longest wait of the worker consumer's fetch on Tansu (None: Faust's 1,500 ms); the worker
    passes ``kafka.fetch_wait_max_ms``. Apache Kafka answers a fetch as soon as data arrives."""
    checkpoints: ChangelogCheckpoints | None = None
    """The RocksDB tables' changelog offsets (``rocksdb://`` only)."""

    def _new_producer(self) -> Any:
        producer = super()._new_producer()
        faust_flush = producer.flush

        async def flush() -> None:
            await faust_flush()
            for hook in getattr(self, "flush_hooks", ()):
                await hook()

        producer.flush = flush  # type: ignore[method-assign]
        return producer


def _broker_url(bootstrap: str) -> str:
    servers = [s.strip() for s in bootstrap.split(",") if s.strip()]
    return ";".join(f"kafka://{s}" for s in servers)


def _ssl_context(settings: Settings) -> Any:
    """The TLS context librdkafka's ssl.* settings describe: CA, and a client certificate."""
    import ssl

    kafka = settings.kafka
    context = ssl.create_default_context(cafile=kafka.ssl_ca_location)
    if kafka.ssl_certificate_location:
        password = kafka.ssl_key_password.get_secret_value() if kafka.ssl_key_password else None
        context.load_cert_chain(kafka.ssl_certificate_location, kafka.ssl_key_location, password)
    return context


def _credentials(settings: Settings) -> Any:
    kafka = settings.kafka
    if kafka.sasl_mechanism and kafka.sasl_username:
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=password,
            mechanism=kafka.sasl_mechanism,
            ssl_context=_ssl_context(settings) if kafka.security_protocol == "SASL_SSL" else None,
        )
    if kafka.security_protocol == "SSL":
        return faust.SSLCredentials(_ssl_context(settings))
    return None


def create_app(
    settings: Settings,
    *,
    app_id: str | None = None,
    fetch_max_wait_ms: int | None = None,
    **overrides: Any,
) -> InterlockApp:
    """Build the Faust app from ``settings``; agents are registered on it by the caller."""
    if not settings.kafka.bootstrap_servers:
        raise ValueError("the processors need Kafka bootstrap servers")
    proc = settings.processors
    conf: dict[str, Any] = {
        "broker": _broker_url(settings.kafka.bootstrap_servers),
        "broker_credentials": _credentials(settings),
        "broker_client_id": settings.kafka.client_id,
        "store": proc.store,
        "datadir": proc.data_dir,
        "topic_partitions": settings.topics.partitions,
        "topic_replication_factor": settings.topics.replication_factor,
        "broker_session_timeout": proc.session_timeout_s,
        "broker_heartbeat_interval": proc.heartbeat_interval_s,
        "consumer_auto_offset_reset": "earliest",
        "producer_linger_ms": 5,
        "producer_max_batch_size": 256 * 1024,
        "web_enabled": False,
        "topic_allow_declare": True,
        "autodiscover": False,
    }
    conf.update(overrides)
    Path(str(conf["datadir"])).mkdir(parents=True, exist_ok=True)
    app = InterlockApp(app_id or proc.app_id, **conf)
    app.interlock_settings = settings
    app.flush_hooks = []
    app.fetch_max_wait_ms = fetch_max_wait_ms
    if settings.kafka.tansu:
        from interlock.tansu import install_worker_workarounds

        install_worker_workarounds()
    else:
        install_idempotent_producer()
    install_resume_streams_last()
    install_fetch_snapshot()
    install_seek_uncommitted_to_start()
    install_direct_delivery()
    return app


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
    before the seek and then cleared away.
    """

    async def step(self: Recovery, generation_id: int = 0) -> None:
        consumer = self.app.consumer
        held: list[set[TP]] = []
        consumer.resume_partitions = lambda tps: held.append(set(tps))  # type: ignore[method-assign]
        try:
            await original(self, generation_id)
        finally:
            del consumer.resume_partitions
            for tps in held:
                consumer.resume_partitions(tps)

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


STOP_GAVE_UP = 3
"""Exit status of a worker that did not stop within its shutdown timeout."""


def _give_up(timeout: float) -> None:
    log.error(
        "the worker did not stop within %.0f s (is the broker reachable?): exiting now; "
        "records since the last committed offsets will be read again on restart",
        timeout,
    )
    logging.shutdown()
    os._exit(STOP_GAVE_UP)


def run_worker(
    app: faust.App, loglevel: str = "info", *, shutdown_timeout_s: float | None = None
) -> None:
    """Run a Faust worker for ``app`` until SIGINT/SIGTERM; returns when it has stopped.

    Faust's stop waits for its streams and consumer without a limit: with the broker gone it
    never ends, and a SIGTERM leaves the process running. With ``shutdown_timeout_s`` the
    process exits (status ``STOP_GAVE_UP``) when a stop has not finished in that time. Outputs
    are made durable before offsets are committed, so what it did not commit is read again.
    """
    from faust.worker import Worker

    class BoundedWorker(Worker):
        _watchdog: threading.Timer | None = None

        async def stop(self) -> None:
            if shutdown_timeout_s is not None and self._watchdog is None:
                self._watchdog = threading.Timer(
                    shutdown_timeout_s, _give_up, (shutdown_timeout_s,)
                )
                self._watchdog.daemon = True
                self._watchdog.start()
            await super().stop()

    worker = BoundedWorker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
