"""The Faust application, configured from the one Settings, and how a worker runs it.

``create_app`` installs the fixes of faust-streaming's own bugs (``processors.faust_fixes``,
on every broker), gives the worker's consumer the configured fetch (``kafka.fetch_wait_ms`` and
``kafka.fetch_min_bytes`` instead of Faust's hard-coded 1,500 ms and aiokafka's 1 byte) and, on
Tansu (``kafka.broker_kind``), that broker's workarounds
(``interlock.tansu.install_worker_workarounds``); on Apache Kafka none of the latter runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import faust

from interlock.settings import Settings
from processors.faust_fixes import install_faust_fixes
from processors.monitor import LeanMonitor
from processors.output import TableChangelogs
from processors.state import ChangelogCheckpoints

__all__ = [
    "STOP_GAVE_UP",
    "InterlockApp",
    "create_app",
    "install_configured_fetch",
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
    checkpoints: ChangelogCheckpoints | None = None
    """The RocksDB tables' changelog offsets (``rocksdb://`` only)."""
    changelogs: TableChangelogs | None = None
    """The tables' changelog records on their way to the broker (the dedup marks' too)."""

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
        "Monitor": LeanMonitor,  # Faust's statistics are for its web views, which are off
        "topic_allow_declare": True,
        "autodiscover": False,
    }
    conf.update(overrides)
    Path(str(conf["datadir"])).mkdir(parents=True, exist_ok=True)
    app = InterlockApp(app_id or proc.app_id, **conf)
    app.interlock_settings = settings
    app.flush_hooks = []
    install_configured_fetch()
    install_faust_fixes(idempotent_producer=not settings.kafka.tansu)
    if settings.kafka.tansu:
        from interlock.tansu import install_worker_workarounds

        install_worker_workarounds()
    return app


def _configured_fetch(original: Any) -> Any:
    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        settings = getattr(self.app, "interlock_settings", None)  # None: not an Interlock app
        if settings is not None:
            # read by AIOKafkaConsumer.start() when it makes its fetcher (aiokafka 0.14)
            consumer._fetch_max_wait_ms = settings.kafka.fetch_wait_ms
            consumer._fetch_min_bytes = settings.kafka.fetch_min_bytes
        return consumer

    create.__configured_fetch__ = True  # type: ignore[attr-defined]
    return create


def install_configured_fetch() -> None:
    """Give the worker's consumer its settings' fetch wait and minimum (idempotent).

    Faust 0.15 hard-codes ``fetch_max_wait_ms=1500`` and leaves aiokafka's ``fetch_min_bytes``
    at 1 byte: on Tansu, which answers a fetch only when its wait ends, every hop waited 1.5 s;
    on Apache Kafka each fetch brought the first record or two of a busy partition.
    """
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    create = AIOKafkaConsumerThread._create_worker_consumer
    if not hasattr(create, "__configured_fetch__"):
        AIOKafkaConsumerThread._create_worker_consumer = _configured_fetch(create)  # type: ignore[method-assign]


STOP_GAVE_UP = 3
"""Exit status of a worker that did not stop within its shutdown timeout."""


def _first(obj: Any, names: tuple[str, ...]) -> Any:
    return next((getattr(obj, n) for n in names if hasattr(obj, n)), None)


def _await_chain(awaitable: Any) -> list[Any]:
    """The frames of a suspended coroutine and of what it awaits, outermost first."""
    frames: list[Any] = []
    while len(frames) < 100:
        frame = _first(awaitable, ("cr_frame", "gi_frame", "ag_frame"))
        if frame is None:  # a future, or a finished coroutine: the chain ends here
            break
        frames.append(frame)
        awaitable = _first(awaitable, ("cr_await", "gi_yieldfrom", "ag_await"))
    return frames


def _waiting_tasks(loop: asyncio.AbstractEventLoop | None) -> list[str]:
    """Where each task of ``loop`` waits, one line each: the innermost four frames of its await
    chain, then its outermost.

    Read from the watchdog's thread while the loop is stuck; the loop's set of tasks can change
    under the read, which is then tried again.
    """
    if loop is None:
        return []
    for _ in range(3):
        try:
            tasks = list(asyncio.all_tasks(loop))
            break
        except RuntimeError:  # the set changed during the read
            continue
    else:
        return []
    waiting = []
    for task in tasks:
        shown = [
            f"{f.f_code.co_name} ({Path(f.f_code.co_filename).name}:{f.f_lineno})"
            for f in reversed(_await_chain(task.get_coro()))  # innermost first
        ]
        if len(shown) > 5:
            shown = [*shown[:4], "...", shown[-1]]  # where it waits, and what it runs for
        waiting.append(f"{task.get_name()}: {' <- '.join(shown) or 'not started'}")
    return sorted(waiting)


def _give_up(timeout: float, loops: dict[str, asyncio.AbstractEventLoop]) -> None:
    log.error(
        "the worker did not stop within %.0f s (is the broker reachable?): exiting now; "
        "records since the last committed offsets will be read again on restart",
        timeout,
    )
    waiting = [f"{name} loop, {w}" for name, loop in loops.items() for w in _waiting_tasks(loop)]
    if waiting:
        log.error("where its stop waited:\n  %s", "\n  ".join(waiting))
    logging.shutdown()
    os._exit(STOP_GAVE_UP)


def _event_loops(app: Any) -> dict[str, asyncio.AbstractEventLoop]:
    """The worker's event loop, and its consumer thread's (aiokafka's consumer runs there)."""
    loops = {"worker": asyncio.get_running_loop()}
    thread = getattr(app._consumer, "_thread", None)  # None before the consumer was made
    thread_loop = getattr(thread, "thread_loop", None)
    if isinstance(thread_loop, asyncio.AbstractEventLoop):
        loops["consumer thread"] = thread_loop
    return loops


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
                    shutdown_timeout_s, _give_up, (shutdown_timeout_s, _event_loops(self.app))
                )
                self._watchdog.daemon = True
                self._watchdog.start()
            await super().stop()

    worker = BoundedWorker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
