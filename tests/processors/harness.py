"""A ``Pipeline`` in process for scenario tests: dict tables, a fake clock, what it writes.

The worker's agents are thin: they hand each record to the pipeline and its own commands back
to ``on_command`` once they are durable. This harness does the same without Kafka or Faust,
so a scenario runs in milliseconds and a test decides when time passes and when a command is
read back. Dead letters go through the worker's own writer (to a list, not a producer): their
headers and their count are what a worker's would be.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import fields
from typing import Any, cast

from confluent_kafka import Producer

from contracts import decode, encode
from contracts.models import Envelope, OrderEvent
from contracts.ownership import load_ownership
from contracts.policy import load_policy
from contracts.topics import dlq_topic
from interlock.instruments import Instruments
from interlock.metrics import new_registry
from interlock.records import RawRecord
from interlock.settings import Settings
from processors.output import Codecs
from processors.pipeline import Pipeline, PipelineConfig
from processors.state import Tables
from processors.topic_names import ProcessorTopics
from processors.worker import dead_letter_writer

__all__ = ["PipelineHarness", "fed_back", "worker_config"]

TABLES = [f.name for f in fields(Tables)]

Written = tuple[str, bytes | None, bytes, Any]
"""A record the pipeline wrote: topic, key, value, headers."""


def fed_back(topics: ProcessorTopics) -> list[str]:
    """Topics the worker writes and reads itself: links on the account topic, the match index's
    exchange and forwarded ERP changes."""
    return [topics.account, topics.account_match, topics.erp_forwarded]


def worker_config(join_grace_s: float = 300.0, **overrides: Any) -> PipelineConfig:
    """What a worker runs with by default: shipped ownership and policy, exception desk on,
    one partition (``overrides``: other fields of the config)."""
    return PipelineConfig(
        ProcessorTopics("t."), load_ownership(), join_grace_s, 3600.0, 0.85,
        commercial=load_policy(), **overrides,
    )  # fmt: skip


class DeadLetterTopics:
    """Stands in for the producer of the worker's dead-letter writer: keeps what it writes."""

    def __init__(self) -> None:
        self.records: list[RawRecord] = []

    def produce(self, topic: str, **record: Any) -> None:
        headers = tuple(record["headers"])
        offset = len(self.records)
        self.records.append(RawRecord(topic, 0, offset, record["key"], record["value"], headers))

    def poll(self, timeout: float = 0.0) -> int:
        return 0


class PipelineHarness:
    """A pipeline on dict tables (or the ``tables`` given) whose commands are read back like
    the worker's."""

    def __init__(
        self,
        config: PipelineConfig,
        now: float = 1_000.0,
        known_product: Callable[[str], bool] | None = None,
        partition: int = 0,
        tables: Tables | None = None,
    ) -> None:
        self.now = now
        self.partition = partition
        """The partition of every record this harness hands the pipeline."""
        self.records: list[Written] = []
        self.dead: list[tuple[RawRecord, BaseException]] = []
        self.waited_for: list[bool] = []
        """Per dead letter: whether the pipeline waited until it was durable."""
        self.registry = new_registry()
        codecs = Codecs(Settings(_env_file=None))
        instruments = Instruments(self.registry, "test")
        self.dlq = DeadLetterTopics()
        writer = dead_letter_writer(cast(Producer, self.dlq), instruments)  # the worker's

        def dead_letter(raw: RawRecord, exc: BaseException, durable: bool) -> None:
            self.dead.append((raw, exc))
            self.waited_for.append(durable)
            writer.send(raw, exc)

        self.pipeline = Pipeline(
            config,
            tables if tables is not None else Tables(**{name: {} for name in TABLES}),
            decode=codecs.decode,
            encode=codecs.encode,
            emit=lambda topic, key, value, headers=None: self.records.append(
                (topic, key, value, headers)
            ),
            dead_letter=dead_letter,
            instruments=instruments,
            clock=lambda: self.now,
            known_product=known_product,
        )
        self.tables = self.pipeline.tables
        self.t = self.topics = self.pipeline.topics
        self._read = 0
        self._offset = 0

    def send(self, topic: str, event: Envelope, read_back: bool = True) -> None:
        """Handle a canonical event (encoded as the stages encode it), keyed by its account as
        the connectors key it."""
        key = getattr(event.payload, "account_id", None) or "a"
        self.send_raw(topic, key.encode(), encode(event), read_back)

    def send_raw(self, topic: str, key: bytes, value: bytes, read_back: bool = True) -> None:
        """Handle one record; then read back its commands, unless they are still in flight."""
        self._offset += 1
        self.pipeline.handle(RawRecord(topic, self.partition, self._offset, key, value, ()))
        if read_back:
            self.read_back()

    def read_back(self) -> None:
        """Read back every command written so far, as the commands agent does; what the
        pipeline publishes for itself (links, the match index's records, forwarded ERP changes)
        comes back through the canonical agent."""
        while self._read < len(self.records):
            topic, key, value, headers = self.records[self._read]
            self._read += 1
            if topic in self.topics.commands():
                self._offset += 1
                raw = RawRecord(
                    topic, self.partition, self._offset, key, value, tuple(headers or ())
                )
                self.pipeline.on_command(raw)
            elif topic in fed_back(self.topics):
                self.send_raw(topic, key or b"", value)

    def lose_in_flight(self) -> None:
        """Never read back what was written so far (as if those records were lost)."""
        self._read = len(self.records)

    def tick(self, after: float) -> None:
        """Let ``after`` seconds pass and run the timers, as a tick of partition 0 does."""
        self.now += after
        self.pipeline.on_tick(0, sweep=False)
        self.read_back()

    def commands(self, topic: str) -> list[OrderEvent]:
        return [decode(v) for t, _, v, _ in self.records if t == topic]  # type: ignore[misc]

    def headers(self, topic: str) -> list[dict[str, bytes]]:
        return [dict(h or ()) for t, _, _, h in self.records if t == topic]

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def decisions(self, decision: str | None = None) -> list[dict[str, Any]]:
        """The pipeline's decision records on ``audit.decisions`` (of one kind, if given)."""
        return [
            record
            for t, _, v, _ in self.records
            if t == self.topics.audit
            and "decision" in (record := json.loads(v))
            and decision in (None, record["decision"])
        ]

    def dead_letters(self, topic: str) -> list[RawRecord]:
        """What the worker's dead-letter writer wrote for records of ``topic``."""
        return [r for r in self.dlq.records if r.topic == dlq_topic(topic)]
