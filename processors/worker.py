"""The processors worker: the Faust app with every Interlock agent registered, plus /metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from confluent_kafka import Producer

from contracts.errors import ConfigError, Reason
from interlock.collector import tune_collector
from interlock.deadletter import DeadLetterWriter
from interlock.instruments import Instruments
from interlock.kafka import list_topics, make_admin, make_producer
from interlock.metrics import new_registry, serve_metrics
from interlock.settings import Settings
from processors.agents import register_agents
from processors.app import InterlockApp, create_app, run_worker
from processors.domain.copartition import copartition_problem
from processors.stall import install_stall_watchdog
from processors.state import keep_tables_after_clean_stop
from processors.topic_names import ProcessorTopics

__all__ = ["SERVICE", "build_worker_app", "check_copartitioning", "dead_letter_writer", "main"]

log = logging.getLogger(__name__)
SERVICE = "processors"


def check_copartitioning(settings: Settings, timeout: float = 15.0) -> int:
    """The shared partition count of the canonical and command topics.

    Raises:
        ConfigError: a topic is missing or has a different partition count (named), or
            the broker refused access (``KafkaAccessError``: credentials, TLS trust).
    """
    topics = ProcessorTopics.from_settings(settings).copartitioned()
    metadata = list_topics(make_admin(settings), timeout)
    counts = {
        name: len(meta.partitions) if meta.error is None else None
        for name, meta in metadata.topics.items()
    }
    problem = copartition_problem(counts, topics)
    if problem:
        raise ConfigError(f"the processors refuse to start: {problem}")
    return int(counts[topics[0]] or 0)


def build_worker_app(
    settings: Settings,
    *,
    instruments: Instruments | None = None,
    producer: Producer | None = None,
    dead_letters: DeadLetterWriter | None = None,
    partitions: int | None = None,
) -> InterlockApp:
    """The Faust app with Interlock's agents and tables registered on it."""
    partitions = partitions or check_copartitioning(settings)
    instruments = instruments or Instruments(new_registry(), SERVICE)
    producer = producer or make_producer(settings, **{"linger.ms": settings.processors.linger_ms})
    if dead_letters is None:
        dead_letters = dead_letter_writer(producer, instruments)
    app = create_app(
        settings,
        topic_partitions=partitions,
        stream_buffer_maxsize=16384,
        broker_commit_interval=settings.processors.commit_interval_s,
    )
    register_agents(app, settings, instruments, producer, dead_letters, partitions)
    install_stall_watchdog(app, settings.processors.stall_timeout_s, clock=time.monotonic)
    return app


def dead_letter_writer(producer: Producer, instruments: Instruments) -> DeadLetterWriter:
    """The worker's dead-letter writer: each dead letter counted by topic and reason."""

    def counted(topic: str, reason: Reason) -> None:
        instruments.dead_letters.labels(SERVICE, topic, str(reason)).inc()

    return DeadLetterWriter(producer, SERVICE, on_dead_letter=counted)


def _use_uvloop() -> None:
    """Run the worker's event loop on uvloop when it is installed (before any loop exists).

    Faust's per-message path is a chain of asyncio futures and tasks; uvloop runs it with less
    overhead. Same effect as ``FAUST_LOOP=uvloop``, without reading the environment.
    """
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(settings: Settings) -> None:
    """Run the worker until SIGINT/SIGTERM, serving its metrics on the configured port."""
    try:
        partitions = check_copartitioning(settings)
    except ConfigError as exc:
        log.error("%s", exc)
        raise SystemExit(f"interlock worker: {exc}") from None
    _use_uvloop()
    registry = new_registry()
    instruments = Instruments(registry, SERVICE)
    producer = make_producer(settings, **{"linger.ms": settings.processors.linger_ms})
    app = build_worker_app(
        settings,
        instruments=instruments,
        producer=producer,
        dead_letters=dead_letter_writer(producer, instruments),
        partitions=partitions,
    )
    tabledir = Path(app.conf.tabledir)
    if app.checkpoints is not None:
        keep_tables_after_clean_stop(tabledir)
    endpoint = serve_metrics(registry, settings.metrics.host, settings.metrics.port)
    log.info("worker metrics on %s", endpoint.url)
    tune_collector(settings.processors.gc_young_threshold)
    try:
        run_worker(
            app,
            loglevel=settings.log_level.lower(),
            shutdown_timeout_s=settings.processors.shutdown_timeout_s,
        )
    finally:
        if app.changelogs is not None:
            # the table records the last commit did not take; marks still held stay unsent,
            # as their events' offsets were not committed either
            app.changelogs.emit_pending()
        undelivered = producer.flush(30)
        if app.checkpoints is not None:
            app.checkpoints.mark_clean_stop(tabledir, undelivered)
        endpoint.stop()
