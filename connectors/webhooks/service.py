"""Wiring of ``interlock webhooks``: the receiver and (optionally) the mapping stage, from Settings.

The mapping stage is its own consumer group (``interlock-webhook-mapper``) on ``raw.crm.*``;
with ``INTERLOCK_WEBHOOKS__MAPPER=false`` the receiver runs alone and the stage can be run
elsewhere with ``interlock webhooks --mapper-only``. In the receiver's process the stage runs
under :class:`~connectors.webhooks.supervision.MapperSupervisor`, which rebuilds it after a
failure; both report into one :class:`~connectors.webhooks.health.ServiceHealth`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from confluent_kafka import KafkaError, Producer
from starlette.applications import Starlette

from connectors.hubspot.mapping import HubSpotContext
from connectors.webhooks.app import create_app
from connectors.webhooks.declarative import load_mappings
from connectors.webhooks.health import ServiceHealth
from connectors.webhooks.landing import Landing
from connectors.webhooks.mapping_stage import SeenSet, WebhookMapper, canonical_topic
from connectors.webhooks.supervision import MapperSupervisor
from contracts import EventSerializer
from interlock.collector import YOUNG_THRESHOLD, tune_collector
from interlock.instruments import Instruments
from interlock.kafka import make_consumer, make_producer, subscribe
from interlock.retry import FailureRouter
from interlock.serializers import canonical_serializers, registry_client
from interlock.settings import Settings
from interlock.stage import StageLoop, StageStats

__all__ = [
    "LANDING_LINGER_MS",
    "MAPPER_GROUP",
    "RAW_TOPICS",
    "build_mapper_loop",
    "build_mapper_supervisor",
    "build_receiver",
    "make_serializers",
    "receiver_server",
    "run_mapper",
]

MAPPER_GROUP = "interlock-webhook-mapper"
RAW_TOPICS = ("raw.crm.hubspot", "raw.crm.standard")
LANDING_LINGER_MS = 1
"""The landing producer's linger: every sender waits for its record's acknowledgement, so a
linger is added to every answer and, with a given number of sender connections, bounds the
requests answered per second; under load records still share produce requests, gathered while
the earlier ones are in flight. (``kafka.linger_ms`` is tuned for stages that do not wait.)
At 2 ms the event loop sat idle whenever all of a bench's senders were waiting for their
acknowledgements; at 0 a produce request carries a record or two and the broker and
librdkafka's threads take the cores (``bench.webhooks``; docs/performance/notes.md)."""


def make_serializers(settings: Settings) -> dict[str, EventSerializer]:
    """One serializer per canonical entity, in the configured wire format."""
    return canonical_serializers(settings, registry_client(settings))


def build_receiver(
    settings: Settings,
    instruments: Instruments,
    *,
    topics: Mapping[str, str] | None = None,
    bare_endpoint: bool = False,
    health: ServiceHealth | None = None,
) -> tuple[Starlette, Landing]:
    """The receiver app and its landing (close the landing after the server stopped)."""
    config = settings.webhooks
    timeout_ms = int(config.delivery_timeout_s * 1000)

    def new_producer(on_error: Callable[[KafkaError], None]) -> Producer:
        return make_producer(
            settings,
            **{
                "message.timeout.ms": timeout_ms,
                "linger.ms": LANDING_LINGER_MS,
                # every sender waits for its record's acknowledgement: a produce request
                # written while another is unacknowledged must not wait for Nagle's algorithm
                # (and the broker's delayed ACK), which would add tens of ms to the answers
                "socket.nagle.disable": True,
                "socket.connection.setup.timeout.ms": 2000,
                "error_cb": on_error,
            },
        )

    raw = {"hubspot": RAW_TOPICS[0], "standard": RAW_TOPICS[1], **(topics or {})}
    in_use = [raw["hubspot"]] if config.hubspot.client_secret is not None else []
    in_use += [raw["standard"]] if config.standard.secrets else []
    landing = Landing(
        new_producer,
        config.delivery_timeout_s,
        probe_topics=in_use or list(raw.values()),
        probe_interval_s=config.probe_interval_s,
        probe_timeout_s=config.probe_timeout_s,
        recreate_limit=config.producer_recreate_limit,
        health=health,
    )
    app = create_app(config, landing, instruments, topics=raw, bare_endpoint=bare_endpoint)
    return app, landing


def receiver_server(
    app: Starlette, host: str, port: int, young_threshold: int = YOUNG_THRESHOLD
) -> uvicorn.Server:
    """The receiver's HTTP server: uvloop, the httptools parser, no access log, no lifespan.

    Loop and parser are named rather than left to uvicorn's ``auto``, so a missing C extension
    fails at start instead of quietly serving on asyncio and h11; no line is logged per request.
    Everything built until now (settings, clients, the app, imported modules) lives as long as
    the process, so it is frozen out of the garbage collector, and the young generation is
    collected every ``young_threshold`` allocations (``interlock.collector``): the collections
    that requests' garbage triggers no longer walk it every time.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="off",
        server_header=False,
    )
    tune_collector(young_threshold)
    return uvicorn.Server(config)


def build_mapper_loop(
    settings: Settings,
    instruments: Instruments,
    *,
    raw_topics: Sequence[str] = RAW_TOPICS,
    topic_for: Callable[[str], str] = canonical_topic,
    group_id: str = MAPPER_GROUP,
) -> StageLoop:
    """The mapping stage's batch loop, subscribed to ``raw_topics`` (close its consumer)."""
    config = settings.webhooks
    producer = make_producer(settings)
    mapper = WebhookMapper(
        producer,
        make_serializers(settings),
        load_mappings(Path(config.mappings_dir) if config.mappings_dir else None),
        HubSpotContext(
            received_at=datetime.fromtimestamp(0, UTC),  # per record later
            accepted_deal_stages=frozenset(config.accepted_deal_stages),
            app_id=config.hubspot.app_id,
        ),
        instruments,
        SeenSet(config.dedup_size, config.dedup_ttl_s),
        topic_for=topic_for,
    )
    # Mapping failures are permanent: no retry tiers, straight to dlq.raw.crm.<vendor>.
    router = FailureRouter(
        producer, "webhook-mapper", settings.retry.delays, instruments, tiers_for=lambda _t: 0
    )
    consumer = make_consumer(settings, group_id)
    subscribe(consumer, raw_topics, instruments.assigned_partitions.labels(group_id))
    return StageLoop(
        consumer, mapper, router, instruments=instruments, on_batch_end=mapper.end_batch
    )


def build_mapper_supervisor(
    settings: Settings, instruments: Instruments, health: ServiceHealth, **options: Any
) -> MapperSupervisor:
    """The mapping stage under supervision (options: see :func:`build_mapper_loop`)."""
    return MapperSupervisor(
        lambda: build_mapper_loop(settings, instruments, **options),
        health,
        restart_limit=settings.webhooks.mapper_restart_limit,
    )


def run_mapper(loop: StageLoop, stop: threading.Event) -> StageStats:
    """Run the loop until ``stop``; closes its consumer (committing stored offsets)."""
    try:
        return loop.run(stop)
    finally:
        loop.consumer.close()
