"""A ``Pipeline`` in process for scenario tests: dict tables, a fake clock, what it writes.

The worker's agents are thin: they hand each record to the pipeline and its own commands back
to ``on_command`` once they are durable. This harness does the same without Kafka or Faust,
so a scenario runs in milliseconds and a test decides when time passes and when a command is
read back.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from contracts import decode, encode
from contracts.models import OrderEvent
from interlock.deadletter import RawRecord
from interlock.instruments import Instruments
from interlock.metrics import new_registry
from interlock.settings import Settings
from processors.output import Codecs
from processors.pipeline import Pipeline, PipelineConfig
from processors.state import Tables

__all__ = ["PipelineHarness"]

TABLES = [f.name for f in fields(Tables) if f.name != "expiry"]

Written = tuple[str, bytes | None, bytes, Any]
"""A record the pipeline wrote: topic, key, value, headers."""


class PipelineHarness:
    """A pipeline on dict tables whose commands are read back like the worker's."""

    def __init__(self, config: PipelineConfig, now: float = 1_000.0) -> None:
        self.now = now
        self.records: list[Written] = []
        self.dead: list[tuple[RawRecord, BaseException]] = []
        self.registry = new_registry()
        codecs = Codecs(Settings(_env_file=None))
        self.pipeline = Pipeline(
            config,
            Tables(**{name: {} for name in TABLES}),
            decode=codecs.decode,
            encode=codecs.encode,
            emit=lambda topic, key, value, headers=None: self.records.append(
                (topic, key, value, headers)
            ),
            dead_letter=lambda raw, exc: self.dead.append((raw, exc)),
            instruments=Instruments(self.registry, "test"),
            clock=lambda: self.now,
        )
        self.t = self.topics = self.pipeline.topics
        self._read = 0
        self._offset = 0

    def send(self, topic: str, event: Any, read_back: bool = True) -> None:
        """Handle a canonical event (encoded as the stages encode it)."""
        self.send_raw(topic, b"a", encode(event), read_back)

    def send_raw(self, topic: str, key: bytes, value: bytes, read_back: bool = True) -> None:
        """Handle one record; then read back its commands, unless they are still in flight."""
        self._offset += 1
        self.pipeline.handle(RawRecord(topic, 0, self._offset, key, value, ()))
        if read_back:
            self.read_back()

    def read_back(self) -> None:
        """Read back every command written so far, as the commands agent does; account events
        the pipeline published (links) come back through the canonical agent."""
        while self._read < len(self.records):
            topic, key, value, headers = self.records[self._read]
            self._read += 1
            if topic in self.topics.commands():
                self._offset += 1
                raw = RawRecord(topic, 0, self._offset, key, value, tuple(headers or ()))
                self.pipeline.on_command(raw)
            elif topic == self.topics.account:
                self.send_raw(topic, key or b"", value)

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
