"""The Faust agents: thin shells that hand each record to the :class:`Pipeline`.

- ``canonical``: every canonical topic (account, quote, order, invoice, shipment), one stream,
  so an account's events are handled in partition order by the worker that holds its state.
- ``commands``: our own command topics read back; order state follows only durable commands.
- ``ticks``: a co-partitioned internal topic fed by a timer, so that time-driven work (join
  timeouts, dedup expiry) runs inside a partition's event context and writes that partition's
  changelog.

Records are consumed as raw bytes and decoded with the contracts serde, so an undecodable
record is dead-lettered with its exact bytes while the stream goes on.
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from faust.streams import _current_event

from contracts.models import ProductEvent
from contracts.ownership import OWNERSHIP_PATH, load_ownership
from contracts.policy import POLICY_PATH, load_policy
from interlock.deadletter import DeadLetterWriter
from interlock.instruments import Instruments
from interlock.kafka import key_partition
from interlock.records import RawRecord
from interlock.settings import Settings
from processors.app import InterlockApp
from processors.expiry import ExpiryIndex
from processors.output import Codecs, Output, TableChangelogs
from processors.pipeline import Pipeline, PipelineConfig
from processors.rawschema import RawSchema
from processors.state import (
    ChangelogCheckpoints,
    in_partition,
    make_tables,
    store_options,
    uses_rocksdb,
)
from processors.topic_names import ProcessorTopics

__all__ = ["pipeline_config", "raw_record", "register_agents"]


def raw_record(message: Any) -> RawRecord:
    """A Faust message as the kernel's RawRecord (bytes untouched)."""
    headers = message.headers or ()
    if isinstance(headers, dict):
        headers = headers.items()
    timestamp = message.timestamp
    return RawRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=tuple((str(k), v) for k, v in headers),
        timestamp_ms=int(timestamp * 1000) if timestamp else None,
    )


def pipeline_config(settings: Settings, partitions: int) -> PipelineConfig:
    """What the worker's :class:`Pipeline` is configured with, from ``settings``.

    One place for it: the benchmark's plain loop (``bench.quote_to_order.plain_loop``), the
    baseline the worker is measured against, runs its Pipeline with the same configuration
    (ownership and commercial policies, the review gate, reconciliation's SLAs, the match
    index's partitioner), so the two do the same work per record.
    """
    proc = settings.processors
    return PipelineConfig(
        topics=ProcessorTopics.from_settings(settings),
        policy=load_ownership(proc.ownership_path or OWNERSHIP_PATH),
        join_grace_s=proc.join_grace_s,
        dedup_ttl_s=proc.dedup_ttl_s,
        match_threshold=proc.match_threshold,
        origin=proc.origin,
        reconcile_order_sla_s=proc.reconcile_order_sla_s,
        reconcile_writeback_sla_s=proc.reconcile_writeback_sla_s,
        reconcile_interval_s=proc.reconcile_interval_s,
        commercial=load_policy(Path(proc.policy_path) if proc.policy_path else POLICY_PATH)
        if proc.review_cases
        else None,
        partition_of=functools.partial(key_partition, partitions=partitions),
    )


def register_agents(
    app: InterlockApp,
    settings: Settings,
    instruments: Instruments,
    producer: Producer,
    dead_letters: DeadLetterWriter,
    partitions: int,
    *,
    clock: Callable[[], float] = time.time,
) -> Pipeline:
    """Declare the tables, topics, agents and timer of the processors on ``app``."""
    proc = settings.processors
    topics = ProcessorTopics.from_settings(settings)
    output = Output(producer)
    app.flush_hooks.append(output.flush)
    codecs = Codecs(settings)

    def dead_letter(raw: RawRecord, error: BaseException, durable: bool = False) -> None:
        dead_letters.send(raw, error, on_delivery=output.on_delivery)  # lost: the commit fails
        if durable:  # before the state that forgets the record; else before its offset commits
            output.flush_sync()

    known_product: Callable[[str], bool] | None = None
    if proc.check_products:
        # Products are keyed by product id, not account: every worker needs all of them. One
        # partition and a recovery buffer of 1, as Faust advises against GlobalTable recovery
        # loops with several workers.
        products = app.GlobalTable(
            "products",
            key_type=str,
            partitions=1,
            recovery_buffer_size=1,
            use_partitioner=True,
            help="Product ids and SKUs of the canonical product catalog.",
        )

        def known_product(product: str) -> bool:
            return products.get(product) is not None

    config = pipeline_config(settings, partitions)
    rocksdb = uses_rocksdb(proc)
    emit_changelog = output.changelog if rocksdb else output
    # table records: the latest per key of each commit interval, emitted just before the
    # outputs' flush; dedup marks: held until after it, behind the effects they guard
    changelogs = app.changelogs = TableChangelogs(emit_changelog, output.flush, instruments)
    app.flush_hooks.insert(app.flush_hooks.index(output.flush), changelogs.release)
    app.flush_hooks.append(changelogs.release_marks)
    tables = make_tables(
        app,
        partitions,
        changelog_emit=changelogs.coalesce,
        options=store_options(proc),
        expiry_index=rocksdb,
        cache_entries=proc.rocksdb_cache_entries,
    )
    tables.seen.changelog_emit = changelogs.hold
    if rocksdb:  # after output.flush: only delivered offsets are written
        app.checkpoints = ChangelogCheckpoints(tables, output)
        app.flush_hooks.append(app.checkpoints.persist)
    pipeline = Pipeline(
        config,
        tables,
        decode=codecs.decode,
        encode=codecs.encode,
        emit=output,
        dead_letter=dead_letter,
        instruments=instruments,
        clock=clock,
        known_product=known_product,
        expiry=ExpiryIndex() if rocksdb else None,
        in_partition=in_partition,
    )
    raw_topic: dict[str, Any] = {"schema": RawSchema()}
    # one co-partitioned stream: a decision is handled in its case's partition, an answer of the
    # match index in its account's, a forwarded ERP change in its CRM account's
    canonical = app.topic(*topics.canonical_stream(), **raw_topic)
    commands = app.topic(*topics.commands(), **raw_topic)
    ticks = app.topic(
        topics.clock(proc.app_id),
        partitions=partitions,
        internal=True,
        retention=timedelta(hours=1),
        **raw_topic,
    )

    @app.agent(canonical, name="canonical")
    async def canonical_agent(stream: Any) -> None:
        # Batches drained from the stream's buffer (acked only after the batch), each event
        # handled inside its own event context so that table writes go to its partition's
        # changelog. ``_current_event`` is Faust-internal: re-check on a Faust upgrade
        # (faust-streaming is pinned below 0.16).
        async for batch in stream.take_events(proc.batch_size, within=proc.batch_wait_s):
            for event in batch:
                _current_event.set(weakref.ref(event))
                pipeline.handle(raw_record(event.message))

    if proc.check_products:

        @app.agent(app.topic(topics.product, **raw_topic), name="products")
        async def products_agent(stream: Any) -> None:
            async for event in stream.events():
                raw = raw_record(event.message)
                try:
                    decoded = codecs.decode(raw.value or b"")
                except Exception as exc:
                    dead_letter(raw, exc)
                    continue
                if not isinstance(decoded, ProductEvent):
                    continue
                product = decoded.payload
                for key in (product.product_id, product.sku):
                    if not key:
                        continue
                    if product.active is not False:
                        products[key] = True
                    elif products.get(key) is not None:
                        del products[key]
                pipeline.count(raw.topic, "ok")

    @app.agent(commands, name="commands")
    async def commands_agent(stream: Any) -> None:
        # Batched like the canonical agent: a read-back is cheap, Faust's per-event turn is not.
        async for batch in stream.take_events(proc.batch_size, within=proc.batch_wait_s):
            for event in batch:
                _current_event.set(weakref.ref(event))
                raw = raw_record(event.message)
                try:
                    pipeline.on_command(raw)
                except Exception as exc:  # a command we cannot read back is ours: never block
                    dead_letter(raw, exc)

    last_sweep: dict[int, float] = {}

    @app.agent(ticks, name="ticks")
    async def ticks_agent(stream: Any) -> None:
        async for event in stream.events():
            partition = event.message.partition
            now = clock()
            sweep = now - last_sweep.get(partition, 0.0) >= proc.dedup_sweep_interval_s
            if sweep:
                last_sweep[partition] = now
            pipeline.on_tick(partition, sweep)
            pipeline.count(event.message.topic, "ok")

    @app.timer(proc.tick_interval_s, name="tick")
    async def tick() -> None:
        for partition in range(partitions):
            await ticks.send(value=b"", partition=partition)

    held = instruments.assigned_partitions.labels(proc.app_id)

    async def on_assigned(sender: Any, assigned: Any, *args: Any, **kwargs: Any) -> None:
        held.set(len(assigned))  # Faust's rebalance is eager: the whole new assignment

    async def on_revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        held.set(0)
        pipeline.inflight.clear()
        pipeline.reconcile.forget_partitions()
        pipeline.review.forget_partitions()

    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]
    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]

    return pipeline
