"""Baseline for the quote → order benchmark: a plain confluent-kafka batch loop, same logic.

Runs the very same :class:`processors.pipeline.Pipeline`, configured as the worker configures
it (:func:`processors.agents.pipeline_config`: the review gate, the reconciliation ledger, the
match index's partitioner), with the same outputs through the same batching producer, over
dict tables instead of Faust tables (every table the worker has); no rebalance handling, no
recovery. Prints ``ready`` once partitions are assigned, then ``read_back COUNT EPOCH_MS`` after
each batch that read back commands (their count so far and when the last was read back).

By default the tables keep no changelog. With ``APP_ID``, they write their changelogs as the
worker's tables on ``memory://`` do, with the worker's own code (:class:`ChangelogDict`): each
write encoded as Faust encodes it, one record per key and commit to the record's partition of
``APP_ID-<table>-changelog`` (:class:`processors.output.TableChangelogs`), the ``seen`` marks
held until the outputs they guard are flushed, and all of it made durable before the offsets
are committed. That loop does what the worker does for a quote except Faust's part (its
consumer, streams, events, acks and table layers), so it splits the worker's cost beside the
plain loop's into what durable state takes and what Faust takes.

    python -m bench.quote_to_order.plain_loop BOOTSTRAP PREFIX PARTITIONS [APP_ID]
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from interlock.deadletter import DeadLetterWriter  # noqa: E402
from interlock.instruments import Instruments  # noqa: E402
from interlock.kafka import make_consumer, make_producer  # noqa: E402
from interlock.metrics import new_registry  # noqa: E402
from interlock.records import RawRecord  # noqa: E402
from interlock.settings import Settings  # noqa: E402
from processors.agents import pipeline_config  # noqa: E402
from processors.output import Codecs, Output, TableChangelogs  # noqa: E402
from processors.pipeline import Pipeline  # noqa: E402
from processors.state import Tables, _json_bytes  # noqa: E402


class ChangelogDict(dict[Any, Any]):
    """A dict table whose writes go out as the worker's ``ProducedTable`` sends them: key and
    value encoded as Faust's ``json`` codec does, to the current record's partition."""

    def __init__(self, topic: str, emit: Any, partition: Callable[[], int]) -> None:
        super().__init__()
        self._topic, self._emit, self._partition = topic, emit, partition

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self._emit(self._topic, _json_bytes(key), _json_bytes(value), None, self._partition())

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self._emit(self._topic, _json_bytes(key), None, None, self._partition())


class CurrentPartition:
    """The partition of the record being handled; :meth:`within` switches it for a block, as
    the worker's ``in_partition`` switches its current event's."""

    def __init__(self) -> None:
        self.partition = 0

    def __call__(self) -> int:
        return self.partition

    @contextmanager
    def within(self, partition: int) -> Iterator[None]:
        before, self.partition = self.partition, partition
        try:
            yield
        finally:
            self.partition = before


def changelog_tables(
    app_id: str, changelogs: TableChangelogs, partition: CurrentPartition
) -> Tables:
    """Every table the worker has, each writing ``APP_ID-<table>-changelog`` as the worker's."""
    return Tables(
        **{
            f.name: ChangelogDict(
                f"{app_id}-{f.name}-changelog",
                changelogs.hold if f.name == "seen" else changelogs.coalesce,
                partition,
            )
            for f in fields(Tables)
        }
    )


def plain_pipeline(
    settings: Settings,
    partitions: int,
    output: Output,
    dead_letters: DeadLetterWriter,
    tables: Tables | None = None,
    in_partition: Any = None,
) -> Pipeline:
    """The worker's Pipeline (its configuration, every one of its tables) over dicts (default:
    plain ones, no changelog)."""
    codecs = Codecs(settings)
    instruments = Instruments(new_registry(), "bench")

    def dead_letter(raw: RawRecord, exc: BaseException, durable: bool = False) -> None:
        dead_letters.send(raw, exc)  # as the worker's
        if durable:
            output.flush_sync()

    return Pipeline(
        pipeline_config(settings, partitions),
        tables or Tables(**{f.name: {} for f in fields(Tables)}),
        decode=codecs.decode,
        encode=codecs.encode,
        emit=output,
        dead_letter=dead_letter,
        instruments=instruments,
        **({"in_partition": in_partition} if in_partition is not None else {}),
    )


def main(bootstrap: str, prefix: str, partitions: int, app_id: str | None = None) -> None:
    settings = Settings(_env_file=None).with_bootstrap(bootstrap)  # type: ignore[call-arg]
    settings.processors.session_timeout_s = 6.0
    settings.processors.topic_prefix = prefix
    producer = make_producer(settings, **{"linger.ms": settings.processors.linger_ms})
    output = Output(producer)
    dead_letters = DeadLetterWriter(producer, "bench")
    changelogs: TableChangelogs | None = None
    current = CurrentPartition()
    commit_loop: asyncio.AbstractEventLoop | None = None  # runs the marks' release, if kept
    if app_id is None:
        pipeline = plain_pipeline(settings, partitions, output, dead_letters)
    else:

        async def flush() -> None:
            output.flush_sync()

        changelogs = TableChangelogs(output, flush, Instruments(new_registry(), "bench"))
        commit_loop = asyncio.new_event_loop()
        tables = changelog_tables(app_id, changelogs, current)
        pipeline = plain_pipeline(
            settings, partitions, output, dead_letters, tables, in_partition=current.within
        )
    topics = pipeline.config.topics
    commands = set(topics.commands())
    ready: list[Any] = []
    consumer = make_consumer(
        settings,
        f"bench-plain-{uuid.uuid4().hex[:8]}",
        **{"fetch.max.bytes": 16 * 1024 * 1024, "enable.auto.commit": False},
    )
    consumer.subscribe(
        [*topics.canonical_inputs(), *topics.commands()],
        on_assign=lambda c, parts: ready.append(parts),
    )
    last_commit = time.monotonic()
    read_back, read_back_ms, shown = 0, 0, 0
    while True:
        batch = consumer.consume(2000, 0.2)
        if ready and ready[0] is not None:
            print("ready", flush=True)
            ready[0] = None
        for msg in batch:
            if msg.error() is not None:
                continue
            raw = RawRecord.from_message(msg)
            current.partition = raw.partition
            if raw.topic in commands:
                pipeline.on_command(raw)
                read_back += 1
                read_back_ms = int(time.time() * 1000)
            else:
                pipeline.handle(raw)
        if read_back != shown:
            # commands read back so far and when the last one was: the work after the last
            # command belongs to the quotes too (the worker's figure includes it)
            print(f"read_back {read_back} {read_back_ms}", flush=True)
            shown = read_back
        producer.poll(0)
        if time.monotonic() - last_commit > settings.processors.commit_interval_s:
            # outputs durable before the offsets that caused them; with changelogs, as the
            # worker's pre-commit hooks: table records, outputs, then the marks that guard them
            if changelogs is not None:
                changelogs.emit_pending()
            output.flush_sync()
            if changelogs is not None and commit_loop is not None:
                commit_loop.run_until_complete(changelogs.release_marks())
            consumer.commit(asynchronous=True)
            last_commit = time.monotonic()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:5])
