# ruff: noqa: E501  (Debezium rows are kept on one line each, as the documentation prints them)
"""The ``interlock cdc`` stage on the real broker: regex subscription, poison records, truncates."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from connectors.cdc.cli import build_stage
from connectors.cdc.transforms import canonical_id
from contracts.ids import deterministic_event_id
from contracts.serde import decode
from interlock.instruments import Instruments
from interlock.metrics import MetricsEndpoint, new_registry, serve_metrics
from interlock.settings import Settings
from tests.conftest import consume_n, end_offsets
from tests.connectors.cdc.conftest import CUSTOMER, debezium, with_schema

pytestmark = pytest.mark.integration

ORDER = {
    "order_number": "SO-7", "customer_number": "C-100", "quote_id": "Q-1", "quote_revision": 2,
    "crm_deal_id": "d-9", "customer_po": "PO-1", "status": "CONFIRMED", "credit_hold": False,
    "currency": "EUR", "subtotal_minor": 10000, "tax_minor": 1900, "total_minor": 11900,
    "payment_terms": "N30", "promised_date": 19876, "ordered_at": "2024-05-01T10:00:00Z",
    "updated_at": "2024-05-01T10:00:00Z",
}  # fmt: skip
UNKNOWN_TABLE = "warehouse_bins"
UNKNOWN_LABEL = "public.warehouse_bins"  # the metric names the table with its schema


@dataclass
class Stage:
    """A running CDC stage whose topics are unique to one test."""

    prefix: str
    metrics: MetricsEndpoint
    audit_topic: str
    stop: threading.Event = field(default_factory=threading.Event)

    def raw(self, table: str) -> str:
        return f"{self.prefix}.erp.{table}"

    def canonical(self, entity: str) -> str:
        return f"{self.prefix}.canonical.{entity}.v1"

    def scrape(self) -> str:
        return httpx.get(self.metrics.url, timeout=5).text


@pytest.fixture
def start_stage(
    settings: Settings, make_topic: Callable[..., str], make_group: Callable[[], str]
) -> Iterator[Callable[..., Stage]]:
    """``start_stage(strict, tables_before)``: raw topics created first, then the stage subscribes
    to ``^<prefix>\\.erp\\..+`` and runs in a thread, serving its /metrics on a free port."""
    running: list[tuple[Stage, threading.Thread, Any, Any]] = []

    def start(*, strict: bool, tables_before: list[str], also: tuple[str, ...] = ()) -> Stage:
        prefix = f"cdct{uuid.uuid4().hex[:10]}"
        for entity in ("account", "order"):
            make_topic(name=f"{prefix}.canonical.{entity}.v1")
        for table in tables_before:
            make_topic(name=f"{prefix}.erp.{table}")
            make_topic(name=f"dlq.{prefix}.erp.{table}")
        audit = make_topic(name=f"{prefix}.audit")
        conf = settings.model_copy(deep=True)
        conf.cdc.strict = strict
        registry = new_registry()
        stage, consumer, producer = build_stage(
            conf,
            Instruments(registry, "cdc"),
            topics=[rf"^{prefix}\.erp\..+", *(t.format(prefix=prefix) for t in also)],
            group_id=make_group(),
            topic_for=lambda t: f"{prefix}.{t}",
            audit_topic=audit,
        )
        handle = Stage(prefix, serve_metrics(registry, "127.0.0.1", 0), audit)
        thread = threading.Thread(target=stage.run, args=(handle.stop,), daemon=True)
        thread.start()
        running.append((handle, thread, consumer, producer))
        return handle

    yield start
    for handle, thread, consumer, producer in running:
        handle.stop.set()
        thread.join(30)
        producer.flush(10)
        consumer.close()
        handle.metrics.stop()


def _send(producer: Producer, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    for key, value in records:
        producer.produce(topic, value, key)
    assert producer.flush(10) == 0


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def _in_tx(payload: dict[str, Any], transaction_id: str) -> dict[str, Any]:
    """``payload`` as part of Debezium transaction ``transaction_id`` (txId:LSN of its start)."""
    payload["transaction"]["id"] = transaction_id
    return payload


def _unknown_tables(text: str, table: str) -> float:
    match = re.search(
        rf'^interlock_cdc_unknown_tables_total\{{table="{re.escape(table)}"\}} (\S+)$', text, re.M
    )
    return float(match.group(1)) if match else 0.0


def test_regex_subscription_maps_both_json_forms_and_picks_up_topics_created_later(
    start_stage: Callable[..., Stage],
    make_topic: Callable[..., str],
    make_producer: Callable[..., Producer],
    make_consumer: Callable[..., Any],
    settings: Settings,
) -> None:
    stage = start_stage(strict=False, tables_before=["customers"])
    producer = make_producer()
    unknown = _json(debezium("c", UNKNOWN_TABLE, None, {"bin": "A-1"}))
    customer = _json(debezium("c", "customers", None, CUSTOMER))
    _send(producer, stage.raw("customers"), [(b"u", unknown), (b"C-100", customer)])
    accounts = consume_n(make_consumer(stage.canonical("account")), 1, timeout=30)
    # the stage is subscribed and running: now a topic appears (a newly captured table)
    make_topic(name=stage.raw("sales_orders"))
    order = with_schema(debezium("u", "sales_orders", ORDER, {**ORDER, "status": "SHIPPED"}), {})
    _send(producer, stage.raw("sales_orders"), [(b"SO-7", order)])
    orders = consume_n(make_consumer(stage.canonical("order")), 1, timeout=30)
    assert len(accounts) == 1
    assert len(orders) == 1
    account_id = canonical_id("account", "erp", "C-100")
    account = decode(accounts[0].value())  # type: ignore[attr-defined]
    assert account.event_type == "AccountCreated"
    assert account.payload.account_id == account_id
    assert accounts[0].key() == account_id.encode()  # type: ignore[attr-defined]
    event = decode(orders[0].value())  # type: ignore[attr-defined]
    assert event.event_type == "OrderStatusChanged"
    assert event.payload.status == "SHIPPED"
    assert event.payload.account_id == account_id
    # the unknown table was skipped, not dead-lettered, and counted on /metrics
    assert _unknown_tables(stage.scrape(), UNKNOWN_LABEL) == 1.0
    dlq = f"dlq.{stage.raw('customers')}"
    assert end_offsets(settings.kafka.librdkafka(), [(dlq, 0)]) == {(dlq, 0): 0}


def test_poison_records_are_dead_lettered_byte_for_byte_and_the_next_record_still_maps(
    start_stage: Callable[..., Stage],
    make_producer: Callable[..., Producer],
    make_consumer: Callable[..., Any],
) -> None:
    stage = start_stage(strict=True, tables_before=["customers"])
    topic = stage.raw("customers")
    poison = [
        (b"k-json", b'\xff{"op": "c", not json', "DECODE_FAILED", "DecodeError"),
        (b"k-value", _json(debezium("c", "customers", None, {**CUSTOMER, "credit_hold": "maybe"})), "MAPPING_FAILED", "MappingError"),
        (b"k-table", _json(debezium("c", UNKNOWN_TABLE, None, {"bin": "A-1"})), "UNKNOWN_TABLE", "UnknownTableError"),
    ]  # fmt: skip
    good = _json(debezium("c", "customers", None, {**CUSTOMER, "customer_number": "C-200"}))
    _send(make_producer(), topic, [(k, v) for k, v, _, _ in poison] + [(b"C-200", good)])

    dead = consume_n(make_consumer(f"dlq.{topic}"), len(poison), timeout=30)
    events = consume_n(make_consumer(stage.canonical("account")), 1, timeout=30)
    assert len(dead) == len(poison)
    for msg, (key, value, reason, error_type) in zip(dead, poison, strict=True):
        headers = dict(msg.headers())  # type: ignore[attr-defined]
        assert msg.key() == key  # type: ignore[attr-defined]
        assert msg.value() == value  # type: ignore[attr-defined]
        assert headers["interlock.dlq.reason"] == reason.encode()
        assert headers["interlock.dlq.error.type"] == error_type.encode()
        assert headers["interlock.dlq.original.topic"] == topic.encode()
        assert headers["interlock.dlq.processor"] == b"cdc"
    assert [int(dict(m.headers())["interlock.dlq.original.offset"]) for m in dead] == [0, 1, 2]  # type: ignore[attr-defined]
    assert len(events) == 1
    event = decode(events[0].value())  # type: ignore[attr-defined]
    assert event.payload.account_id == canonical_id("account", "erp", "C-200")
    assert _unknown_tables(stage.scrape(), UNKNOWN_LABEL) == 1.0


def test_truncate_is_dead_lettered_and_reported_to_the_audit_topic(
    start_stage: Callable[..., Stage],
    make_producer: Callable[..., Producer],
    make_consumer: Callable[..., Any],
) -> None:
    stage = start_stage(strict=False, tables_before=["customers"])
    topic = stage.raw("customers")
    # an insert and a truncate in one source transaction, then a change after it
    insert = _json(_in_tx(debezium("c", "customers", None, CUSTOMER, lsn=9000, tx=777), "777:8900"))
    truncate = _json(_in_tx(debezium("t", "customers", None, None, lsn=9100, tx=777), "777:8900"))
    later = _json(
        _in_tx(
            debezium("u", "customers", CUSTOMER, {**CUSTOMER, "name": "Acme AG"}, lsn=9200, tx=778),
            "778:9150",
        )
    )
    _send(make_producer(), topic, [(b"C-100", insert), (b"", truncate), (b"C-100", later)])

    events = consume_n(make_consumer(stage.canonical("account")), 2, timeout=30)
    dead = consume_n(make_consumer(f"dlq.{topic}"), 1, timeout=30)
    audit = consume_n(make_consumer(stage.audit_topic), 1, timeout=30)
    assert [decode(m.value()).event_type for m in events] == ["AccountCreated", "AccountChanged"]  # type: ignore[attr-defined]
    assert len(dead) == 1
    headers = dict(dead[0].headers())  # type: ignore[attr-defined]
    assert dead[0].value() == truncate  # type: ignore[attr-defined]
    assert headers["interlock.dlq.error.type"] == b"TruncateError"
    assert headers["interlock.dlq.reason"] == b"TRUNCATE_UNSUPPORTED"
    assert len(audit) == 1
    record = json.loads(audit[0].value())  # type: ignore[attr-defined]
    same_tx = decode(events[0].value()).correlation_id  # type: ignore[attr-defined]
    assert record["decision"] == "truncate_reported"
    assert record["table"] == "public.customers"
    assert record["lsn"] == 9100
    assert record["ts_ms"] == 1559033904863
    assert record["correlation_id"] == same_tx
    assert record["correlation_id"] == deterministic_event_id("cdc-tx", "erp", "777")
    assert audit[0].key() == same_tx.encode()  # type: ignore[attr-defined]
    assert record["details"]["dead_letter_topic"] == f"dlq.{topic}"
    assert record["details"]["original"] == {"topic": topic, "partition": 0, "offset": 1}


TRANSACTION_BEGIN = {"status": "BEGIN", "id": "571:53195829", "ts_ms": 1486500577125, "event_count": None, "data_collections": None}  # fmt: skip
TRANSACTION_END = {"status": "END", "id": "571:53195832", "ts_ms": 1486500577691, "event_count": 1, "data_collections": [{"data_collection": "public.customers", "event_count": 1}]}  # fmt: skip
HEARTBEAT = {"schema": {"type": "struct", "fields": [{"type": "int64", "optional": False, "field": "ts_ms"}], "optional": False, "name": "io.debezium.connector.common.Heartbeat", "version": 1}, "payload": {"ts_ms": 1796183328255}}  # fmt: skip


def test_transaction_and_heartbeat_topics_picked_up_by_a_pattern_are_skipped_not_dead_lettered(
    start_stage: Callable[..., Stage],
    make_topic: Callable[..., str],
    make_producer: Callable[..., Producer],
    make_consumer: Callable[..., Any],
    settings: Settings,
) -> None:
    """``^<prefix>\\..+`` also matches ``<prefix>.transaction``; a heartbeat topic subscribed
    beside it sends ``{"ts_ms": ...}``: neither is a change, neither is dead-lettered."""
    stage = start_stage(
        strict=True,
        tables_before=["customers", "transaction"],
        also=(r"^__debezium-heartbeat\.{prefix}\.erp$",),
    )
    heartbeat = make_topic(name=f"__debezium-heartbeat.{stage.prefix}.erp")
    make_topic(name=f"dlq.{heartbeat}")
    producer = make_producer()
    change = _in_tx(debezium("c", "customers", None, CUSTOMER, tx=571), "571:53195829")
    _send(
        producer, stage.raw("transaction"), [(b'{"id":"571:53195829"}', _json(TRANSACTION_BEGIN))]
    )
    _send(producer, stage.raw("customers"), [(b"C-100", _json(change))])
    _send(producer, stage.raw("transaction"), [(b'{"id":"571:53195832"}', _json(TRANSACTION_END))])
    _send(producer, heartbeat, [(b'{"serverName":"erp"}', _json(HEARTBEAT))] * 2)

    accounts = consume_n(make_consumer(stage.canonical("account")), 1, timeout=30)
    assert len(accounts) == 1

    def skipped(outcome: str, topic: str) -> float:
        wanted = {"service": "cdc", "topic": topic, "outcome": outcome}
        return sum(
            sample.value
            for family in text_string_to_metric_families(stage.scrape())
            for sample in family.samples
            if sample.name == "interlock_events_consumed_total" and sample.labels == wanted
        )

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        skipped("transaction", stage.raw("transaction")) < 2 or skipped("heartbeat", heartbeat) < 2
    ):
        time.sleep(0.2)
    assert skipped("transaction", stage.raw("transaction")) == 2
    assert skipped("heartbeat", heartbeat) == 2
    dead = [f"dlq.{stage.raw('transaction')}", f"dlq.{heartbeat}", f"dlq.{stage.raw('customers')}"]
    conf = settings.kafka.librdkafka()
    assert end_offsets(conf, [(t, 0) for t in dead]) == {(t, 0): 0 for t in dead}
