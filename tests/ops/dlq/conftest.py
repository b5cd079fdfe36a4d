"""Fixtures of the dead-letter tooling tests: settings with unique audit topics, a CLI runner."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from typer.testing import CliRunner, Result

from contracts.errors import InterlockError, Reason
from interlock.deadletter import DeadLetterWriter
from interlock.kafka import make_producer
from interlock.records import RawRecord
from interlock.settings import DlqSettings, Settings
from ops.dlq.cli import make_dlq_app

DlqRun = Callable[..., Result]


@pytest.fixture
def dlq_settings(settings: Settings, make_topic: Callable[..., str]) -> Settings:
    """The session settings with this test's own audit.replays and audit.dlq-purges topics."""
    audit = make_topic(1, prefix="audit.replays")
    purges = make_topic(1, prefix="audit.dlq-purges", config={"cleanup.policy": "compact"})
    return settings.model_copy(update={"dlq": DlqSettings(audit_topic=audit, purge_topic=purges)})


@pytest.fixture
def dlq(dlq_settings: Settings) -> DlqRun:
    """Run ``interlock dlq ...`` in-process: ``dlq("list", "--json", input="y\\n")``."""
    app = make_dlq_app(lambda: dlq_settings)
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=input, env={"COLUMNS": "200"})

    return run


def write_dead_letters(
    settings: Settings,
    topic: str,
    letters: Sequence[tuple[bytes | None, bytes | None, Reason]],
    partitions: int = 1,
) -> None:
    """Dead-letter each (key, value, reason) as a stage would, records of ``topic`` in order."""
    producer = make_producer(settings)
    writer = DeadLetterWriter(producer, "test-stage")
    for offset, (key, value, reason) in enumerate(letters):
        record = RawRecord(topic, offset % partitions, offset, key, value, (("h", b"1"),), 1_000)
        writer.send(record, InterlockError(f"failed {offset}", reason=reason))
    assert producer.flush(30) == 0
