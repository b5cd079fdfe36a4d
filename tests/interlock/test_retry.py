"""FailureRouter and restore: transient failures climb the retry tiers, the rest dead-letter."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from contracts.errors import DecodeError, InterlockError, Reason
from contracts.topics import load_catalog
from interlock.instruments import Instruments
from interlock.records import RawRecord
from interlock.retry import FailureRouter, restore, retry_info, retry_topics, tiers_from_catalog

pytestmark = pytest.mark.unit

ORIGINAL = RawRecord(
    topic="commands.erp.create-order",
    partition=2,
    offset=41,
    key=b"acct-1",
    value=b"\xc3\x01payload",
    headers=(("trace", b"abc"), ("n", None)),
    timestamp_ms=1_700_000_000_000,
)


class FakeProducer:
    """Records produce calls (pure logic under test; the broker path is in test_retry_stage)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def produce(self, topic: str, **kwargs: Any) -> None:
        self.sent.append((topic, kwargs))

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = 0) -> int:
        return 0


def unavailable() -> InterlockError:
    return InterlockError("ERP answered 503", reason=Reason.SINK_UNAVAILABLE, transient=True)


def as_read_back(topic: str, kwargs: dict[str, Any], offset: int = 0) -> RawRecord:
    return RawRecord(
        topic=topic,
        partition=0,
        offset=offset,
        key=kwargs["key"],
        value=kwargs["value"],
        headers=tuple(kwargs["headers"]),
        timestamp_ms=kwargs.get("timestamp"),
    )


def test_transient_failures_climb_the_tiers_then_dead_letter_on_the_original_topic() -> None:
    producer = FakeProducer()
    registry = CollectorRegistry()
    router = FailureRouter(
        producer, "sink", [1, 10, 60], Instruments(registry, "sink"), clock=lambda: 1000.0
    )
    record, attempt = ORIGINAL, 1
    routes = []
    for _ in range(4):
        routes.append(router.route(record, unavailable(), attempt))
        topic, kwargs = producer.sent[-1]
        record, attempt = restore(as_read_back(topic, kwargs, offset=7))
    assert routes == ["retry", "retry", "retry", "dead_letter"]
    assert [t for t, _ in producer.sent] == [
        "retry.commands.erp.create-order.1",
        "retry.commands.erp.create-order.2",
        "retry.commands.erp.create-order.3",
        "dlq.commands.erp.create-order",
    ]
    nb = [dict(k["headers"])["interlock.retry.not_before"] for _, k in producer.sent[:3]]
    assert nb == [b"1001000", b"1010000", b"1060000"]
    dlq = dict(producer.sent[-1][1]["headers"])
    assert dlq["interlock.dlq.original.topic"] == b"commands.erp.create-order"
    assert dlq["interlock.dlq.original.partition"] == b"2"
    assert dlq["interlock.dlq.original.offset"] == b"41"
    assert dlq["interlock.dlq.attempt"] == b"4"
    assert dlq["interlock.dlq.reason"] == b"SINK_UNAVAILABLE"
    assert not any(k.startswith("interlock.retry.") for k, _ in producer.sent[-1][1]["headers"])
    assert producer.sent[-1][1]["headers"][:2] == list(ORIGINAL.headers)
    assert producer.sent[-1][1]["timestamp"] == ORIGINAL.timestamp_ms
    assert (record.key, record.value) == (ORIGINAL.key, ORIGINAL.value)
    sample = registry.get_sample_value
    assert (
        sample(
            "interlock_retries_total",
            {"service": "sink", "topic": "commands.erp.create-order", "attempt": "2"},
        )
        == 1
    )
    assert (
        sample(
            "interlock_dead_letters_total",
            {
                "service": "sink",
                "topic": "dlq.commands.erp.create-order",
                "reason": "SINK_UNAVAILABLE",
            },
        )
        == 1
    )


def test_permanent_failure_dead_letters_at_once() -> None:
    producer = FakeProducer()
    router = FailureRouter(producer, "mapper", [1, 10])
    assert router.route(ORIGINAL, DecodeError("bad magic"), 1) == "dead_letter"
    assert router.route(ORIGINAL, ValueError("boom"), 1) == "dead_letter"
    assert [t for t, _ in producer.sent] == ["dlq.commands.erp.create-order"] * 2
    reasons = [dict(k["headers"])["interlock.dlq.reason"] for _, k in producer.sent]
    assert reasons == [b"DECODE_FAILED", b"PROCESSING_FAILED"]


def test_topics_without_retry_tiers_dead_letter_transient_failures() -> None:
    producer = FakeProducer()
    tiers = tiers_from_catalog(load_catalog(), [1, 10])
    router = FailureRouter(producer, "mapper", [1, 10], tiers_for=tiers)
    assert router.tiers("commands.erp.create-order") == 2
    assert router.tiers("canonical.quote.v1") == 0
    raw = RawRecord("canonical.quote.v1", 0, 3, b"k", b"v")
    assert router.route(raw, unavailable(), 1) == "dead_letter"
    assert dict(producer.sent[0][1]["headers"])["interlock.dlq.error.class"] == b"transient"


def test_restore_falls_back_on_the_topic_name_and_leaves_first_deliveries_alone() -> None:
    assert restore(ORIGINAL) == (ORIGINAL, 1)
    assert retry_info(ORIGINAL) is None
    bare = RawRecord("retry.raw.crm.hubspot.2", 1, 9, b"k", b"v", (("x", b"1"),), 5)
    restored, attempt = restore(bare)
    assert (restored.topic, restored.partition, restored.offset, attempt) == (
        "raw.crm.hubspot",
        1,
        9,
        3,
    )
    assert restored.headers == (("x", b"1"),)
    assert retry_topics(["a", "b"], 2) == ["retry.a.1", "retry.a.2", "retry.b.1", "retry.b.2"]


def test_with_a_max_age_a_transient_failure_goes_round_the_last_tier_until_too_old() -> None:
    """The sinks: running out of tiers is no reason to give up on a command; its age is."""
    producer = FakeProducer()
    now = [ORIGINAL.timestamp_ms / 1000 + 60]  # written a minute ago
    router = FailureRouter(producer, "sinks", [1, 10], clock=lambda: now[0], max_age_s=3600)
    assert [router.route(ORIGINAL, unavailable(), attempt) for attempt in (1, 2, 3, 4)] == [
        "retry"
    ] * 4
    assert [t for t, _ in producer.sent] == [
        "retry.commands.erp.create-order.1",
        "retry.commands.erp.create-order.2",
        "retry.commands.erp.create-order.2",
        "retry.commands.erp.create-order.2",
    ]
    assert [dict(k["headers"])["interlock.retry.attempt"] for _, k in producer.sent] == [
        b"1",
        b"2",
        b"3",
        b"4",
    ]
    assert not router.expired(ORIGINAL)
    now[0] += 3600  # an hour later it is past its max age: dead-lettered, saying why
    assert router.expired(ORIGINAL)
    assert router.route(ORIGINAL, unavailable(), 5) == "dead_letter"
    topic, kwargs = producer.sent[-1]
    assert topic == "dlq.commands.erp.create-order"
    message = dict(kwargs["headers"])["interlock.dlq.error.message"].decode()
    assert message.startswith("still failing 1.0 h after it was written (max age 1 h)")
    # a permanent failure is dead-lettered at once, whatever its age
    now[0] = ORIGINAL.timestamp_ms / 1000
    assert router.route(ORIGINAL, DecodeError("bad bytes"), 1) == "dead_letter"
