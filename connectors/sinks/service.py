"""Wiring of ``interlock sinks`` from Settings: targets, breakers, router, the batch loop."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping

from connectors.sinks.breaker import CircuitBreaker
from connectors.sinks.contract import COMMAND_TOPICS, CommandKind
from connectors.sinks.loop import BatchStageLoop
from connectors.sinks.sink import CommandSink, SinkTarget
from contracts import make_deserializer
from interlock.httpclient import HttpClient
from interlock.instruments import Instruments
from interlock.kafka import make_consumer, make_producer, subscribe
from interlock.retry import FailureRouter
from interlock.serializers import canonical_serializers, registry_client
from interlock.settings import Settings
from interlock.stage import StageLoop, StageStats, with_retry_topics

__all__ = ["build_sink_loop", "run_sinks"]


def _targets(settings: Settings) -> dict[str, SinkTarget]:
    config = settings.sinks
    out: dict[str, SinkTarget] = {}
    for name, target in (("erp", config.erp), ("crm", config.crm)):
        if target.base_url:
            token = target.token.get_secret_value() if target.token else None
            breaker = CircuitBreaker(config.breaker_failures, config.breaker_reset_s)
            out[name] = SinkTarget(name, target.base_url, token, breaker, config.concurrency)
    return out


def build_sink_loop(
    settings: Settings,
    instruments: Instruments,
    *,
    routes: Mapping[str, CommandKind] = COMMAND_TOPICS,
    outcome_topic: str = "canonical.order.v1",
    group_id: str | None = None,
) -> tuple[BatchStageLoop, HttpClient]:
    """The sink loop on ``routes``' topics and their retry tiers (close consumer and client)."""
    config = settings.sinks
    timeout = max(config.erp.timeout_s, config.crm.timeout_s)
    # each target's calls in flight are bounded by its concurrency: a kept-alive connection each
    client = HttpClient(timeout)
    producer = make_producer(settings)
    registry = registry_client(settings)
    jitter = config.retry_jitter_s
    # Jitter: each retry's not_before is pushed back by up to `jitter` seconds, so commands
    # that failed together do not all hit the recovering target at the same instant.
    router = FailureRouter(
        producer,
        "sinks",
        settings.retry.delays,
        instruments,
        clock=lambda: time.time() + random.uniform(0, jitter),
        max_age_s=config.max_age_s,
    )
    sink = CommandSink(
        client,
        _targets(settings),
        routes,
        producer,
        make_deserializer(registry=registry),
        canonical_serializers(settings, registry)["order"],
        instruments,
        outcome_topic=outcome_topic,
        inline_retries=config.inline_retries,
        inline_backoff_s=config.inline_backoff_s,
        inline_max_wait_s=config.inline_max_wait_s,
        first_hold_s=settings.retry.delays[0] if settings.retry.delays else 1.0,
    )
    group = group_id or config.group_id
    consumer = make_consumer(settings, group)
    subscribe(
        consumer,
        with_retry_topics(list(routes), router),
        instruments.assigned_partitions.labels(group),
    )
    loop = BatchStageLoop(
        consumer,
        sink.handle_batch,
        router,
        instruments=instruments,
        batch_size=100,
        on_batch_end=sink.end_batch,
    )
    return loop, client


def run_sinks(loop: StageLoop, client: HttpClient, stop: threading.Event) -> StageStats:
    """Run until ``stop``; closes the consumer and the HTTP client."""
    try:
        return loop.run(stop)
    finally:
        loop.consumer.close()
        client.close()
