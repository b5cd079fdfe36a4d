"""``interlock cdc`` (the Debezium mapping stage) and ``interlock cdc postgres`` (the source).

Thin shells: build the collaborators from Settings, run until SIGINT/SIGTERM, exit 0; a
broker that refuses our login or certificate ends the stage with one line and exit 2.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from connectors.cdc.audit import AUDIT_TOPIC, TruncateReporter
from connectors.cdc.consumer import CdcStage, dead_letter_metrics
from connectors.cdc.envelope import EnvelopeDecoder
from connectors.cdc.mapper import CdcMapper
from connectors.cdc.postgres import PostgresSource, PostgresSourceConfig
from connectors.cdc.spec import annotate_lines, load_mapping_dir
from contracts.errors import ConfigError, InterlockError
from interlock.collector import tune_collector
from interlock.commandline import exit_refused, require_kafka, stop_on_signals
from interlock.deadletter import DeadLetterWriter
from interlock.instruments import Instruments
from interlock.kafka import make_consumer, make_producer, subscribe
from interlock.metrics import new_registry, serve_metrics
from interlock.serializers import canonical_serializers, registry_client
from interlock.settings import Settings, load_settings

__all__ = ["METADATA_REFRESH_MS", "build_stage", "cdc_app"]

log = logging.getLogger(__name__)
cdc_app = typer.Typer(
    help="Change data capture: map Debezium change topics to canonical events; Postgres source.",
    invoke_without_command=True,
    pretty_exceptions_enable=False,
)
METADATA_REFRESH_MS = 5000
"""How often a regex subscription looks for new matching topics (librdkafka's default: 5 min)."""


def build_stage(
    settings: Settings,
    instruments: Instruments,
    *,
    mappings: Path | None = None,
    topics: list[str] | None = None,
    registry: Any = None,
    group_id: str | None = None,
    topic_for: Callable[[str], str] | None = None,
    audit_topic: str = AUDIT_TOPIC,
) -> tuple[CdcStage, Any, Any]:
    """The mapping stage wired from ``settings``; returns (stage, consumer, producer).

    Topics starting with ``^`` are regex subscriptions; the consumer then refreshes metadata
    every ``METADATA_REFRESH_MS`` so that topics created later (a new table) are picked up.
    ``topic_for`` renames the canonical topics, ``audit_topic`` is where truncates are reported.

    Raises:
        ConfigError: an invalid mapping; the message names file:line, mapping and field.
    """
    cdc = settings.cdc
    directory = mappings or (Path(cdc.mappings_dir) if cdc.mappings_dir else None)
    try:
        mapper = CdcMapper(load_mapping_dir(directory), vendor=cdc.vendor, topic_for=topic_for)
    except ConfigError as exc:
        raise ConfigError(annotate_lines(exc.message)) from None
    registry = registry if registry is not None else registry_client(settings)
    serializers = canonical_serializers(settings, registry)
    subscription = topics or cdc.topics
    overrides: dict[str, Any] = {"fetch.max.bytes": 52428800}
    if any(t.startswith("^") for t in subscription):
        overrides["topic.metadata.refresh.interval.ms"] = METADATA_REFRESH_MS
    group = group_id or cdc.group_id
    consumer = make_consumer(settings, group, **overrides)
    subscribe(consumer, subscription, instruments.assigned_partitions.labels(group))
    producer = make_producer(
        settings,
        **{"linger.ms": 20, "batch.size": 1_000_000, "queue.buffering.max.messages": 500_000},
    )
    decoder = EnvelopeDecoder(registry)
    dead = DeadLetterWriter(producer, "cdc", on_dead_letter=dead_letter_metrics(instruments))
    stage = CdcStage(
        consumer,
        producer,
        mapper,
        decoder,
        serializers,
        dead,
        instruments,
        strict=cdc.strict,
        batch_size=cdc.batch_size,
        on_truncate=TruncateReporter(producer, audit_topic=audit_topic),
    )
    return stage, consumer, producer


@cdc_app.callback()
def cdc(
    ctx: typer.Context,
    mappings: Annotated[
        Path | None, typer.Option(help="Mappings directory (default connectors/mappings/erp).")
    ] = None,
    topic: Annotated[
        list[str] | None, typer.Option(help="Change topic or ^regex (repeatable).")
    ] = None,
    strict: Annotated[bool, typer.Option(help="Dead-letter changes of unmapped tables.")] = False,
) -> None:
    """Map Debezium change topics to canonical events until SIGINT/SIGTERM."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings()
    require_kafka(settings)
    if strict:
        settings.cdc.strict = True
    registry = new_registry()
    instruments = Instruments(registry, "cdc")
    try:
        stage, consumer, producer = build_stage(
            settings, instruments, mappings=mappings, topics=topic
        )
    except InterlockError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    endpoint = serve_metrics(registry, settings.metrics.host, settings.metrics.port)
    stop = stop_on_signals()
    tune_collector(settings.gc_young_threshold)
    try:
        stage.run(stop)
    except ConfigError as exc:  # the broker refused our access (KafkaAccessError): not retried
        exit_refused(f"interlock cdc: {exc}")
    finally:
        producer.flush(30)
        consumer.close()
        endpoint.stop()


@cdc_app.command("postgres")
def postgres(
    dsn: Annotated[str | None, typer.Option(help="libpq DSN of the ERP database.")] = None,
    tables: Annotated[
        str | None, typer.Option(help="Comma-separated tables ([schema.]table).")
    ] = None,
    slot: Annotated[str | None, typer.Option(help="Logical replication slot name.")] = None,
    snapshot: Annotated[str, typer.Option(help="initial | never")] = "initial",
) -> None:
    """Snapshot then stream Postgres tables to raw.erp.<table> as Debezium envelopes."""
    settings = load_settings()
    require_kafka(settings)
    cdc = settings.cdc
    the_dsn = dsn or (cdc.postgres_dsn.get_secret_value() if cdc.postgres_dsn else None)
    table_list = [t.strip() for t in tables.split(",")] if tables else cdc.postgres_tables
    if not the_dsn or not table_list:
        typer.echo("--dsn and --tables are required (or INTERLOCK_CDC__POSTGRES_*)", err=True)
        raise typer.Exit(2)
    if snapshot not in ("initial", "never"):
        raise typer.BadParameter("--snapshot must be initial or never")
    registry = new_registry()
    instruments = Instruments(registry, "cdc-postgres")
    producer = make_producer(
        settings,
        **{"linger.ms": 20, "batch.size": 1_000_000, "queue.buffering.max.messages": 500_000},
    )
    config = PostgresSourceConfig(
        dsn=the_dsn,
        tables=table_list,
        slot=slot or cdc.postgres_slot,
        topic_prefix=cdc.raw_topic_prefix,
        snapshot="initial" if snapshot == "initial" else "never",
    )

    def published(topic: str, n: int) -> None:
        instruments.events_produced.labels("cdc-postgres", topic).inc(n)

    try:
        source = PostgresSource(config, producer, on_published=published)
    except (ConfigError, psycopg.OperationalError) as exc:
        typer.echo(f"cannot use the source database: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        needs_snapshot = source.prepare()
    except ConfigError as exc:
        source.close()
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    endpoint = serve_metrics(registry, settings.metrics.host, settings.metrics.port)
    stop = stop_on_signals()
    tune_collector(settings.gc_young_threshold)
    try:
        if needs_snapshot:
            with Progress(
                TextColumn("snapshot {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            ) as bar:
                tasks: dict[str, Any] = {}

                def progress(table: str, done: int, total: int) -> None:
                    if table not in tasks:
                        tasks[table] = bar.add_task(table, total=total)
                    bar.update(tasks[table], completed=done)

                source.snapshot(progress)
        while not stop.is_set():
            if source.stream_once() == 0:
                stop.wait(config.poll_interval_s)
    finally:
        producer.flush(30)
        source.close()
        endpoint.stop()
