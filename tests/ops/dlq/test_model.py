"""Pure logic of the dead-letter tooling: parsing, filters, selection, stats, replay planning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from contracts import ValidationError, decode, encode
from contracts.errors import InterlockError, Reason
from contracts.topics import load_catalog
from interlock.deadletter import dlq_headers
from interlock.records import RawRecord
from ops.dlq.model import DeadLetter, DeadLetterFilter, parse_time, select, topic_stats
from ops.dlq.replay import (
    ReplayRejectedError,
    TokenBucket,
    audit_value,
    load_transform,
    plan_replay,
)
from tests.contracts.samples import sample_events

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def letter(
    offset: int,
    reason: Reason = Reason.JOIN_TIMEOUT,
    key: bytes | None = b"acct-1",
    value: bytes | None = b"v",
    minutes_ago: float = 0,
    topic: str = "canonical.quote.v1",
) -> DeadLetter:
    original = RawRecord(topic, 1, 100 + offset, key, value, (("trace", b"t1"),), 1_000)
    headers = dlq_headers(
        original,
        InterlockError("no account", reason=reason),
        processor="quote-to-order",
        now=NOW - timedelta(minutes=minutes_ago),
    )
    return DeadLetter.parse(RawRecord(f"dlq.{topic}", 0, offset, key, value, headers, 1_000))


def test_parse_reads_every_documented_header() -> None:
    x = letter(3, Reason.DECODE_FAILED, minutes_ago=5)
    assert (x.reason, x.original_topic, x.original_partition, x.original_offset) == (
        "DECODE_FAILED",
        "canonical.quote.v1",
        1,
        103,
    )
    assert (x.attempt, x.processor, x.error_type) == (1, "quote-to-order", "InterlockError")
    assert x.failed_at == NOW - timedelta(minutes=5)
    assert x.coordinate == "dlq.canonical.quote.v1/0/3"
    assert x.original_headers == [("trace", b"t1")]
    original = x.original()
    assert (original.topic, original.offset, original.headers) == (
        "canonical.quote.v1",
        103,
        (("trace", b"t1"),),
    )


def test_parse_survives_a_record_without_headers() -> None:
    bare = DeadLetter.parse(RawRecord("dlq.raw.crm.hubspot", 0, 0, None, b"x", (), 60_000))
    assert (bare.reason, bare.original_topic, bare.attempt) == ("UNKNOWN", "raw.crm.hubspot", None)
    assert bare.failed_at == datetime(1970, 1, 1, 0, 1, tzinfo=UTC)


def test_parse_time_accepts_iso_and_durations_ago() -> None:
    assert parse_time("2h", NOW) == NOW - timedelta(hours=2)
    assert parse_time("90s", NOW) == NOW - timedelta(seconds=90)
    assert parse_time("1.5d", NOW) == NOW - timedelta(hours=36)
    assert parse_time("2026-01-01T00:00", NOW) == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_time("2026-01-01T00:00:00Z", NOW) == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a time"):
        parse_time("yesterday", NOW)


def test_select_filters_hides_purged_and_skips_replayed_unless_again() -> None:
    letters = [
        letter(0, minutes_ago=50),
        letter(1, Reason.DECODE_FAILED, minutes_ago=40),
        letter(2, key=b"acct-2", minutes_ago=30),
        letter(3, minutes_ago=20),
        letter(4, key=None, minutes_ago=10),
    ]
    join = DeadLetterFilter(reasons=frozenset({"JOIN_TIMEOUT"}))
    assert [x.record.offset for x in select(letters, join)] == [0, 2, 3, 4]
    assert [x.record.offset for x in select(letters, DeadLetterFilter(key="acct-2"))] == [2]
    window = DeadLetterFilter(since=NOW - timedelta(minutes=35), until=NOW - timedelta(minutes=20))
    assert [x.record.offset for x in select(letters, window)] == [2]
    hidden = ["dlq.canonical.quote.v1/0/3"]
    replayed = {"dlq.canonical.quote.v1/0/0": 1}
    assert [x.record.offset for x in select(letters, join, hidden=hidden)] == [0, 2, 4]
    fresh = select(letters, join, hidden=hidden, replayed=replayed, again=False)
    assert [x.record.offset for x in fresh] == [2, 4]
    assert [x.record.offset for x in select(letters, DeadLetterFilter(limit=2))] == [0, 1]
    assert DeadLetterFilter(limit=3).empty
    assert not join.empty


def test_stats_count_by_reason_age_and_rate() -> None:
    letters = [letter(i, minutes_ago=60 - i) for i in range(6)] + [letter(9, Reason.SINK_REJECTED)]
    stats = topic_stats("dlq.canonical.quote.v1", letters, NOW)
    assert [(r.reason, r.count) for r in stats.by_reason] == [
        ("JOIN_TIMEOUT", 6),
        ("SINK_REJECTED", 1),
    ]
    assert stats.oldest_age == timedelta(minutes=60)
    assert stats.rate(timedelta(hours=1)) == pytest.approx(7.0)
    assert stats.rate(timedelta(minutes=1)) == pytest.approx(7 / 60)
    assert topic_stats("dlq.x", [], NOW).rate(timedelta(minutes=1)) == 0.0


def test_token_bucket_paces_to_the_rate_without_bursting() -> None:
    clock = [0.0]
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        clock[0] += s

    bucket = TokenBucket(200, clock=lambda: clock[0], sleep=sleep)
    for _ in range(2000):
        bucket.acquire()
    assert clock[0] == pytest.approx(1999 / 200)
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(0)


def test_plan_strips_dlq_headers_adds_replay_headers_and_counts() -> None:
    letters = [letter(0), letter(1)]
    items = plan_replay(
        letters, replay_id="r-1", at=NOW, replayed={"dlq.canonical.quote.v1/0/1": 2}
    )
    assert [(i.target, i.count) for i in items] == [
        ("canonical.quote.v1", 1),
        ("canonical.quote.v1", 3),
    ]
    assert items[1].headers == [
        ("trace", b"t1"),
        ("interlock.replay.id", b"r-1"),
        ("interlock.replay.count", b"3"),
        ("interlock.replay.at", NOW.isoformat().encode()),
    ]
    assert (items[0].key, items[0].value) == (b"acct-1", b"v")
    to = plan_replay(letters[:1], replay_id="r", at=NOW, to="canonical.quote.v1.fixed")
    assert to[0].target == "canonical.quote.v1.fixed"
    audit = audit_value(items[0], "r-1", NOW)
    assert b'"dlq_offset": 0' in audit
    assert b'"dry_run": false' in audit


def fix_total(record: RawRecord) -> bytes:
    """A transform: a quote with a negative total gets a zero one."""
    event = decode(record.value or b"")
    payload = event.payload.model_copy(update={"total": Decimal(0)})
    return encode(event.model_copy(update={"payload": payload}))


def break_it(record: RawRecord) -> RawRecord:
    return RawRecord(record.topic, record.partition, record.offset, record.key, b"garbage")


def test_a_transformed_record_must_pass_the_target_contract() -> None:
    quote = encode(sample_events()["quote"])
    good = letter(0, Reason.VALIDATION_FAILED, value=quote)
    catalog = load_catalog()
    fix = load_transform("tests.ops.dlq.test_model:fix_total")
    (item,) = plan_replay([good], replay_id="r", at=NOW, transform=fix, catalog=catalog)
    assert decode(item.value or b"").payload.total == 0
    with pytest.raises(ReplayRejectedError, match="does not pass contract 'quote'"):
        plan_replay([good], replay_id="r", at=NOW, transform=break_it, catalog=catalog)
    account = encode(sample_events()["account"])
    with pytest.raises(ReplayRejectedError, match="carries 'quote'"):
        plan_replay([good], replay_id="r", at=NOW, transform=lambda r: account, catalog=catalog)
    with pytest.raises(ReplayRejectedError, match="module:function"):
        load_transform("no_colon")
    with pytest.raises(ReplayRejectedError, match="cannot load"):
        load_transform("tests.ops.dlq.test_model:missing")
    assert issubclass(ValidationError, InterlockError)
