"""Baseline for the quote → order benchmark: a plain confluent-kafka batch loop, same logic.

Runs the very same :class:`processors.pipeline.Pipeline` (same pure domain functions, same
outputs through the same batching producer) over dict tables instead of Faust tables; no
changelogs, no rebalance handling, no recovery. Prints ``ready`` once partitions are assigned,
then ``read_back COUNT EPOCH_MS`` after each batch that read back commands (their count so far
and when the last was read back).

    python -m bench.quote_to_order.plain_loop BOOTSTRAP PREFIX
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from contracts.ownership import load_ownership  # noqa: E402
from interlock.deadletter import DeadLetterWriter  # noqa: E402
from interlock.instruments import Instruments  # noqa: E402
from interlock.kafka import make_consumer, make_producer  # noqa: E402
from interlock.metrics import new_registry  # noqa: E402
from interlock.records import RawRecord  # noqa: E402
from interlock.settings import Settings  # noqa: E402
from processors.output import Codecs, Output  # noqa: E402
from processors.pipeline import Pipeline, PipelineConfig  # noqa: E402
from processors.state import Tables  # noqa: E402
from processors.topic_names import ProcessorTopics  # noqa: E402


def main(bootstrap: str, prefix: str) -> None:
    settings = Settings(_env_file=None).with_bootstrap(bootstrap)  # type: ignore[call-arg]
    settings.processors.session_timeout_s = 6.0
    topics = ProcessorTopics(prefix)
    producer = make_producer(settings, **{"linger.ms": settings.processors.linger_ms})
    output = Output(producer)
    dead_letters = DeadLetterWriter(producer, "bench")
    codecs = Codecs(settings)
    tables = Tables(*({} for _ in range(8)))

    def dead_letter(raw: RawRecord, exc: BaseException, durable: bool = False) -> None:
        dead_letters.send(raw, exc)  # as the worker's
        if durable:
            output.flush_sync()

    pipeline = Pipeline(
        PipelineConfig(topics, load_ownership(), 300.0, 3600.0, 0.85),
        tables,
        decode=codecs.decode,
        encode=codecs.encode,
        emit=output,
        dead_letter=dead_letter,
        instruments=Instruments(new_registry(), "bench"),
    )
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
        if time.monotonic() - last_commit > 1.0:
            output.flush_sync()  # outputs durable before the offsets that caused them
            consumer.commit(asynchronous=True)
            last_commit = time.monotonic()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
