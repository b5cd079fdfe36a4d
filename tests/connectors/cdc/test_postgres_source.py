"""Against a real Postgres and broker: changes reach canonical topics in commit order, and a
SIGKILLed source loses nothing on restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, Producer

from connectors.cdc import CdcMapper, EnvelopeDecoder, load_mapping_dir
from connectors.cdc.consumer import CdcStage
from connectors.cdc.postgres import PostgresSource, PostgresSourceConfig
from contracts.models import EVENT_MODELS
from contracts.serde import make_deserializer, make_serializer
from interlock.deadletter import DeadLetterWriter
from interlock.instruments import Instruments
from interlock.kafka import make_consumer, make_producer
from interlock.settings import Settings
from tests.conftest import consume_n

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def _stage(
    settings: Settings, raw_topics: list[str], prefix: str, make_topic: Callable[..., str]
) -> tuple[CdcStage, Consumer, Producer]:
    for entity in ("account", "order", "invoice", "shipment", "product"):
        make_topic(name=f"{prefix}canonical.{entity}.v1")
    for topic in raw_topics:
        make_topic(name=f"dlq.{topic}")
    mapper = CdcMapper(load_mapping_dir(), topic_for=lambda t: prefix + t)
    consumer = make_consumer(
        settings, f"cdc-{uuid.uuid4().hex[:8]}", **{"session.timeout.ms": 6000}
    )
    consumer.subscribe(raw_topics)
    producer = make_producer(settings)
    from prometheus_client import CollectorRegistry

    instruments = Instruments(CollectorRegistry(), "cdc")
    stage = CdcStage(
        consumer, producer, mapper, EnvelopeDecoder(),
        {e: make_serializer(e) for e in EVENT_MODELS},
        DeadLetterWriter(producer, "cdc"), instruments,
    )  # fmt: skip
    return stage, consumer, producer


def _canonical(consumer: Consumer, n: int, timeout: float = 60) -> list[Any]:
    deserialize = make_deserializer()
    return [(m.key(), deserialize(m.value())) for m in consume_n(consumer, n, timeout)]


def test_insert_update_delete_reach_canonical_topics_in_commit_order(
    settings: Settings, erp_dsn: str, make_topic: Callable[..., str], make_consumer: Any
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    raw = [make_topic(name=f"{prefix}raw.erp.{t}") for t in ("customers", "sales_orders")]
    producer = make_producer(settings)
    source = PostgresSource(
        PostgresSourceConfig(dsn=erp_dsn, tables=["customers", "sales_orders"],
                             slot=f"s_{uuid.uuid4().hex[:8]}", topic_prefix=f"{prefix}raw.erp."),
        producer,
    )  # fmt: skip
    with psycopg.connect(erp_dsn, autocommit=True) as db:
        db.execute("INSERT INTO customers (customer_number, name) VALUES ('C1', 'Acme')")
        assert source.prepare() is True
        assert source.snapshot() == 1
        db.execute("INSERT INTO customers (customer_number, name) VALUES ('C2', 'Beta')")
        db.execute("UPDATE customers SET credit_hold = true WHERE customer_number = 'C1'")
        db.execute(
            "INSERT INTO sales_orders (order_number, customer_number, status) "
            "VALUES ('SO1', 'C1', 'OPEN')"
        )
        db.execute("UPDATE sales_orders SET status = 'SHIPPED' WHERE order_number = 'SO1'")
        db.execute("DELETE FROM sales_orders WHERE order_number = 'SO1'")
        db.execute("UPDATE customers SET name = 'Beta AG' WHERE customer_number = 'C2'")
    sent = 0
    deadline = time.monotonic() + 30
    while sent < 6 and time.monotonic() < deadline:
        sent += source.stream_once()
    assert sent == 6
    assert source.stream_once() == 0  # the slot advanced only past what Kafka acknowledged
    source.drop_slot()
    source.close()
    stage, consumer, _ = _stage(settings, raw, prefix, make_topic)
    try:
        done = 0
        deadline = time.monotonic() + 60
        while done < 7 and time.monotonic() < deadline:
            done += stage.run_once()["ok"]
    finally:
        consumer.close()
    accounts = _canonical(make_consumer(f"{prefix}canonical.account.v1"), 4)
    orders = _canonical(make_consumer(f"{prefix}canonical.order.v1"), 3)
    by_customer: dict[str, list[str]] = defaultdict(list)
    for _key, event in accounts:
        by_customer[event.payload.erp_customer_number].append(event.event_type)
    assert by_customer == {
        "C1": ["AccountSnapshot", "AccountCreditHoldChanged"],
        "C2": ["AccountCreated", "AccountChanged"],
    }
    assert [e.event_type for _k, e in orders] == [
        "OrderCreated", "OrderStatusChanged", "OrderDeleted",
    ]  # fmt: skip
    assert [e.payload.status for _k, e in orders] == ["REQUESTED", "SHIPPED", "SHIPPED"]
    c1_key = next(k for k, e in accounts if e.payload.erp_customer_number == "C1")
    assert {k for k, _e in orders} == {c1_key}  # orders are keyed by their customer's account


def _raw_count(settings: Settings, topic: str) -> int:
    consumer = make_consumer(
        settings, f"count-{uuid.uuid4().hex[:8]}", **{"session.timeout.ms": 6000}
    )
    consumer.subscribe([topic])
    seen = 0
    idle = 0
    while idle < 3:
        msgs = consumer.consume(5000, 1.0)
        idle = idle + 1 if not msgs else 0
        seen += len(msgs)
    consumer.close()
    return seen


def test_sigkilled_source_resumes_from_the_slot_and_loses_nothing(
    settings: Settings, erp_dsn: str, make_topic: Callable[..., str], make_consumer: Any
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    raw = make_topic(name=f"{prefix}raw.erp.customers")
    env = {
        **os.environ,
        "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": str(settings.kafka.bootstrap_servers),
        "INTERLOCK_CDC__RAW_TOPIC_PREFIX": f"{prefix}raw.erp.",
        "INTERLOCK_METRICS__PORT": "0",
        "INTERLOCK_LOG_LEVEL": "WARNING",
    }
    cmd = [sys.executable, "-m", "interlock.cli", "cdc", "postgres", "--dsn", erp_dsn,
           "--tables", "customers", "--slot", f"kill_{uuid.uuid4().hex[:8]}"]  # fmt: skip
    total = 10_000

    def write() -> None:
        with psycopg.connect(erp_dsn, autocommit=True) as db:
            for batch in range(100):
                with db.transaction():
                    db.execute(
                        "INSERT INTO customers (customer_number, name) SELECT 'K' || g, 'n' "
                        "FROM generate_series(%s::int, %s::int) g",
                        (batch * 100, batch * 100 + 99),
                    )
                time.sleep(0.02)

    first = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    writer = threading.Thread(target=write)
    writer.start()
    counter = make_consumer(raw)
    seen = len(consume_n(counter, 2000, 60))
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    writer.join(60)
    assert 0 < seen < total  # killed in the middle of the stream
    second = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        stage, consumer, _ = _stage(settings, [raw], prefix, make_topic)
        mapped = 0
        deadline = time.monotonic() + 120
        out = make_consumer(f"{prefix}canonical.account.v1")
        ids: dict[str, set[str]] = defaultdict(set)
        by_change: dict[tuple[str, str], set[str]] = defaultdict(set)
        deserialize = make_deserializer()
        while len(ids) < total and time.monotonic() < deadline:
            mapped += stage.run_once()["ok"]
            for msg in out.consume(5000, 0.2):
                if msg.error() is None:
                    event = deserialize(msg.value())
                    ids[event.payload.erp_customer_number].add(event.event_id)
                    by_change[(event.payload.erp_customer_number, event.event_type)].add(
                        event.event_id
                    )
        consumer.close()
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    assert len(ids) == total, f"missing {total - len(ids)} changes"
    # a row may be in the snapshot (r) and the stream (c): two changes; but a change that was
    # published again after the kill carries the same event_id
    assert all(len(v) == 1 for v in by_change.values())
    assert mapped >= total
