"""``interlock dlq`` list/show/stats/purge and dry runs, against the broker fixture."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from contracts import encode
from contracts.errors import Reason
from interlock.settings import Settings
from tests.conftest import end_offsets, suite_broker_kind
from tests.contracts.samples import sample_events
from tests.ops.dlq.conftest import DlqRun, write_dead_letters

pytestmark = pytest.mark.integration


@pytest.fixture
def mixed(dlq_settings: Settings, make_topic: Callable[..., str]) -> str:
    """A dead-letter topic (3 partitions, batched writes) of 200 JOIN_TIMEOUT quotes and 50
    undecodable records; returns the original topic."""
    topic = make_topic(3, prefix="canonical.dlqtest")
    make_topic(3, name=f"dlq.{topic}")
    quote = encode(sample_events()["quote"])
    letters = [(f"acct-{i % 7}".encode(), quote, Reason.JOIN_TIMEOUT) for i in range(200)]
    letters += [(b"bad", b"\xff\xfe not text", Reason.DECODE_FAILED) for _ in range(25)]
    letters += [(b"bad", b"plain text", Reason.DECODE_FAILED) for _ in range(25)]
    write_dead_letters(dlq_settings, topic, letters, partitions=3)
    return topic


def every_end_offset(admin: AdminClient, settings: Settings) -> dict[tuple[str, int], int]:
    topics = admin.list_topics(timeout=10).topics
    parts = [(name, p) for name, meta in topics.items() for p in meta.partitions]
    return end_offsets(settings.kafka.librdkafka(), parts, timeout=60)


def test_list_show_and_stats_count_exactly_and_decode_through_contracts(
    dlq: DlqRun, mixed: str
) -> None:
    listed = dlq("list", "--json")
    assert listed.exit_code == 0, listed.output
    (entry,) = [e for e in json.loads(listed.stdout) if e["topic"] == f"dlq.{mixed}"]
    assert entry["count"] == 250
    assert entry["by_reason"] == {"JOIN_TIMEOUT": 200, "DECODE_FAILED": 50}

    shown = dlq("show", mixed, "--reason", "DECODE_FAILED", "--limit", "60", "--json")
    assert shown.exit_code == 0, shown.output
    docs = [json.loads(line) for line in shown.stdout.splitlines()]
    assert len(docs) == 50, shown.output
    assert {d["value_format"] for d in docs} == {"hex", "utf-8"}
    assert {d["dlq"]["reason"] for d in docs} == {"DECODE_FAILED"}
    assert all(d["original_topic"] == mixed and d["headers"] == {"h": 1} for d in docs)
    joins = dlq("show", f"dlq.{mixed}", "--key", "acct-3", "--json", "--limit", "500")
    docs = [json.loads(line) for line in joins.stdout.splitlines()]
    assert len(docs) == len([i for i in range(200) if i % 7 == 3])
    assert docs[0]["value_format"] == "contract:quote"
    assert docs[0]["value"]["payload"]["quote_id"] == sample_events()["quote"].payload.quote_id
    table = dlq("show", mixed, "--limit", "1")
    assert "JOIN_TIMEOUT" in table.stdout
    assert "1 dead letter(s)" in table.stdout

    stats = dlq("stats", mixed, "--json")
    (row,) = json.loads(stats.stdout)
    assert row["count"] == 250
    assert row["by_reason"]["DECODE_FAILED"] == 50
    assert row["oldest_age_seconds"] >= 0
    assert row["per_minute"] > 0
    assert dlq("show", mixed, "--since", "yesterday").exit_code == 2


def test_purge_hides_what_it_selects_and_asks_first(
    dlq: DlqRun, mixed: str, dlq_settings: Settings
) -> None:
    declined = dlq("purge", mixed, "--reason", "DECODE_FAILED", input="n\n")
    assert declined.exit_code == 1
    assert json.loads(dlq("stats", mixed, "--json").stdout)[0]["count"] == 250

    purged = dlq("purge", mixed, "--reason", "DECODE_FAILED", "--yes")
    assert purged.exit_code == 0, purged.output
    assert "purged 50" in purged.stdout
    assert dlq("show", mixed, "--reason", "DECODE_FAILED", "--json").stdout == ""
    stats = dlq("stats", mixed, "--json")
    row = json.loads(stats.stdout)[0]
    # on failure, what was read (seen once under load: the remaining dead letters read as none)
    assert row["by_reason"] == {"JOIN_TIMEOUT": 200}, (
        stats.output,
        f"show: {dlq('show', mixed, '--json').stdout.count(chr(10))} lines",
    )
    dry = dlq("replay", mixed, "--reason", "DECODE_FAILED", "--dry-run")
    assert "0 dead letter(s)" in dry.stdout

    everything = dlq("purge", mixed, "--yes")
    assert everything.exit_code == 0, everything.output
    assert json.loads(dlq("stats", mixed, "--json").stdout)[0]["count"] == 0
    assert dlq("show", mixed, "--json").stdout == ""


@pytest.mark.skipif(suite_broker_kind() == "tansu", reason="Tansu has no DeleteRecords")
def test_purge_of_everything_deletes_the_records_on_kafka(
    dlq: DlqRun, mixed: str, dlq_settings: Settings
) -> None:
    """Without a filter, purge truncates with DeleteRecords: every low watermark moves up."""
    conf = {**dlq_settings.kafka.librdkafka(), "group.id": "watermarks"}
    consumer = Consumer(conf)
    try:
        before = {
            p: consumer.get_watermark_offsets(TopicPartition(f"dlq.{mixed}", p), 10)
            for p in range(3)
        }
        assert all(low == 0 for low, _ in before.values())
        assert sum(high for _, high in before.values()) == 250
        purged = dlq("purge", mixed, "--yes")
        assert purged.exit_code == 0, purged.output
        assert f"truncated dlq.{mixed}: 250 record(s) deleted" in purged.stdout
        after = {
            p: consumer.get_watermark_offsets(TopicPartition(f"dlq.{mixed}", p), 10)
            for p in range(3)
        }
    finally:
        consumer.close()
    assert after == {p: (high, high) for p, (_, high) in before.items()}


def test_dry_runs_change_nothing_on_any_topic(
    dlq: DlqRun, mixed: str, admin: AdminClient, dlq_settings: Settings
) -> None:
    before = every_end_offset(admin, dlq_settings)
    replay = dlq("replay", mixed, "--reason", "JOIN_TIMEOUT", "--dry-run")
    assert replay.exit_code == 0, replay.output
    assert "200 dead letter(s)" in replay.stdout
    assert "nothing sent" in replay.stdout
    purge = dlq("purge", mixed, "--dry-run")
    assert purge.exit_code == 0
    assert "nothing changed" in purge.stdout
    after = every_end_offset(admin, dlq_settings)
    assert before[(f"dlq.{mixed}", 0)] > 0
    assert after == before


def test_a_transform_breaking_the_contract_is_rejected_and_nothing_sent(
    dlq: DlqRun, mixed: str, admin: AdminClient, dlq_settings: Settings
) -> None:
    before = every_end_offset(admin, dlq_settings)
    result = dlq(
        "replay",
        mixed,
        "--reason",
        "JOIN_TIMEOUT",
        "--to",
        "canonical.quote.v1",
        "--transform",
        "tests.ops.dlq.test_model:break_it",
        "--yes",
    )
    assert result.exit_code == 1
    assert "does not pass contract 'quote' of canonical.quote.v1" in result.stdout
    assert every_end_offset(admin, dlq_settings) == before


def test_the_commands_are_mounted_as_interlock_dlq(mixed: str, dlq_settings: Settings) -> None:
    from typer.testing import CliRunner

    from interlock.cli import app

    env = {
        "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": dlq_settings.kafka.bootstrap_servers or "",
        "INTERLOCK_DLQ__AUDIT_TOPIC": dlq_settings.dlq.audit_topic,
        "INTERLOCK_DLQ__PURGE_TOPIC": dlq_settings.dlq.purge_topic,
    }
    result = CliRunner().invoke(app, ["dlq", "stats", mixed, "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["by_reason"] == {"JOIN_TIMEOUT": 200, "DECODE_FAILED": 50}
