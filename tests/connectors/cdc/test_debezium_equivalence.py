"""Real Debezium (Kafka Connect, pgoutput) and the built-in source, one ERP workload, the same
canonical events: payloads, event ids, correlation ids, event types, changed fields.

The workload covers inserts, updates, deletes, a truncate, NUMERIC with and without a scale,
dates, timestamps with and without a zone, TOASTed text columns that updates leave unchanged
(products: REPLICA IDENTITY DEFAULT, so Debezium sends its unavailable-value placeholder;
customers: FULL, so the value comes from the old row) and a column added while streaming.
Debezium runs twice, from the connector files in ops/debezium: JsonConverter with the schema
envelope (decimals precise) and without it (decimals as text).
The three canonical streams must be equal, only the truncate may be dead-lettered, and no
placeholder may reach a canonical event. The mapping stages subscribe by pattern, beside the
transaction-metadata and heartbeat topics.

Documented differences that this workload keeps out: snapshot records (each source has its own
snapshot position) and ``ingested_at`` (when each stage mapped the change).
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from connectors.cdc.cli import build_stage
from connectors.cdc.envelope import UNAVAILABLE_PLACEHOLDER
from connectors.cdc.postgres import PostgresSource, PostgresSourceConfig
from connectors.cdc.spec import DEFAULT_MAPPINGS_DIR
from contracts.serde import decode
from interlock.apache_kafka import java_binary
from interlock.instruments import Instruments
from interlock.kafka import make_producer
from interlock.metrics import new_registry
from interlock.settings import BrokerSettings, Settings
from ops.debezium.connect import KafkaConnectWorker, connector_config, database_environment
from tests.conftest import end_offsets, wait_for_leaders

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        java_binary(BrokerSettings()) is None, reason="Kafka Connect needs Java 17 or newer"
    ),
]

TABLES = ["customers", "products", "sales_orders", "sales_order_lines", "invoices", "shipments"]
ENTITIES = ["account", "product", "order", "invoice", "shipment"]
PRODUCTS_MAPPING = """\
# The test's products: NUMERIC without a scale, a timestamp without a zone, a TOASTed text
# column, and a column (family) that the workload adds while streaming.
mappings:
  - name: erp-products
    table: products
    entity: product
    record_id: [sku]
    key: product_id
    fields:
      product_id: {canonical_id: product, columns: [sku]}
      sku: sku
      name: name
      description: description
      unit_of_measure: unit_of_measure
      currency: currency
      list_price: list_price
      family: family
      active: active
      updated_at: updated_local
"""
BIG_TEXT = "(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 600) i)"
"""~19 kB that compresses badly: stored out of line (TOAST)."""
WORKLOAD = [
    [
        "INSERT INTO customers (customer_number, name, legal_name, credit_limit_minor, "
        f"updated_at) VALUES ('C1', 'Acme', {BIG_TEXT}, 500000, "
        "'2024-05-01 10:00:00.123456+02'), ('C2', 'Beta', NULL, 0, now())",
        "INSERT INTO products (sku, name, description, unit_price_minor, list_price, "
        f"updated_local) VALUES ('P1', 'Widget', {BIG_TEXT}, 1234, 12.345, "
        "'2024-05-01 10:00:00.123456')",
    ],
    [
        "INSERT INTO sales_orders (order_number, customer_number, status, total_minor, "
        "promised_date, ordered_at) VALUES ('SO1', 'C1', 'CONFIRMED', 4998, '2024-06-01', "
        "'2024-05-01 10:00:00+02')",
        "INSERT INTO sales_order_lines VALUES ('SO1', 1, 'C1', 'P1', 'Widget', 2.5000, 1999, "
        "4998, '2024-06-01'), ('SO1', 2, 'C1', 'P1', NULL, 0.0001, 1, 0, NULL)",
    ],
    ["UPDATE products SET name = 'Widget 2', list_price = 99.9 WHERE sku = 'P1'"],
    ["UPDATE customers SET credit_hold = true WHERE customer_number = 'C1'"],
    ["ALTER TABLE products ADD COLUMN family text"],
    ["UPDATE products SET family = 'tools' WHERE sku = 'P1'"],
    [
        "INSERT INTO products (sku, name, description, unit_price_minor, list_price, family, "
        "updated_local) VALUES ('P2', 'Bolt', 'short', 5, 5, 'parts', '1969-12-31 23:59:59.5')"
    ],
    [
        "INSERT INTO invoices (invoice_number, order_number, customer_number, amount_minor, "
        "issued_date, due_date) VALUES ('INV1', 'SO1', 'C1', 4998, '2024-05-02', '2024-06-01')",
        "UPDATE invoices SET status = 'PAID', paid_minor = 4998, "
        "paid_at = '2024-05-20 08:30:00.5+00' WHERE invoice_number = 'INV1'",
    ],
    [
        "DELETE FROM invoices WHERE invoice_number = 'INV1'",
        "DELETE FROM customers WHERE customer_number = 'C2'",
    ],
    ["TRUNCATE sales_order_lines"],
    ["UPDATE customers SET name = 'Acme AG' WHERE customer_number = 'C1'"],
]
EXPECTED_EVENTS = 15
"""3 + 3 inserts, 6 updates (one of them two changes), 2 deletes; the truncate is not an event."""


def _create_topics(admin: AdminClient, names: list[str]) -> None:
    futures = admin.create_topics([NewTopic(n, 1, 1) for n in names])
    for future in futures.values():
        future.result(timeout=30)
    wait_for_leaders(admin, names)


@pytest.fixture
def mappings(tmp_path: Path) -> Path:
    """The shipped ERP mappings, with products mapped as the workload needs."""
    directory = tmp_path / "mappings"
    shutil.copytree(DEFAULT_MAPPINGS_DIR, directory, ignore=shutil.ignore_patterns("__*"))
    (directory / "products.yaml").write_text(PRODUCTS_MAPPING)
    return directory


@pytest.fixture
def pipelines(settings: Settings, mappings: Path) -> Iterator[Callable[[str, list[str]], None]]:
    """``start(name, patterns)``: a CDC mapping stage reading ``patterns``, producing canonical
    events to ``out-<name>.canonical.*`` (out of its patterns' reach); stopped at the end of the
    test."""
    running: list[tuple[threading.Event, threading.Thread, Any, Any]] = []

    def start(name: str, patterns: list[str]) -> None:
        stage, consumer, producer = build_stage(
            settings,
            Instruments(new_registry(), "cdc"),
            mappings=mappings,
            topics=patterns,
            group_id=f"g-{name}",
            topic_for=lambda t: f"out-{name}.{t}",
            audit_topic=f"out-{name}.audit",
        )
        stop = threading.Event()
        thread = threading.Thread(target=stage.run, args=(stop,), daemon=True)
        thread.start()
        running.append((stop, thread, consumer, producer))

    yield start
    for stop, thread, consumer, producer in running:
        stop.set()
        thread.join(30)
        producer.flush(10)
        consumer.close()


def _canonical(settings: Settings, name: str, n: int, timeout: float) -> dict[str, Any]:
    """Event id -> (entity, key, event) of the first ``n`` canonical events of ``name``."""
    consumer = Consumer(
        {**settings.kafka.librdkafka(), "group.id": f"read-{uuid.uuid4().hex[:8]}",
         "auto.offset.reset": "earliest"}
    )  # fmt: skip
    consumer.subscribe([f"out-{name}.canonical.{e}.v1" for e in ENTITIES])
    found: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(found) < n and time.monotonic() < deadline:
            for msg in consumer.consume(100, 0.5):
                if msg.error() is None:
                    event = decode(msg.value())
                    assert UNAVAILABLE_PLACEHOLDER not in msg.value().decode("latin-1")
                    found[event.event_id] = (event.entity, msg.key(), event)
    finally:
        consumer.close()
    return found


def _comparable(event: Any) -> dict[str, Any]:
    """The event without ``ingested_at`` (when a stage mapped it) and what derives from it."""
    return event.model_dump(mode="json", exclude={"ingested_at"})


def test_debezium_and_the_built_in_source_give_the_same_canonical_events(
    settings: Settings,
    admin: AdminClient,
    erp_dsn: str,
    pipelines: Callable[[str, list[str]], None],
) -> None:
    run = f"dbz{uuid.uuid4().hex[:8]}"
    builtin, debezium, schemaless = f"{run}.b", f"{run}.d", f"{run}.s"
    with psycopg.connect(erp_dsn, autocommit=True) as db:
        db.execute(
            "ALTER TABLE products ADD COLUMN list_price numeric, "
            "ADD COLUMN updated_local timestamp, REPLICA IDENTITY DEFAULT"
        )
    raw = [f"{builtin}.raw.erp.{t}" for t in TABLES]
    for name in (debezium, schemaless):
        raw += [f"{name}.public.{t}" for t in TABLES]
        raw += [f"{name}.transaction", f"__debezium-heartbeat.{name}"]
    topics = raw + [f"dlq.{t}" for t in raw]
    for name in (builtin, debezium, schemaless):
        topics += [f"out-{name}.canonical.{e}.v1" for e in ENTITIES] + [f"out-{name}.audit"]
    _create_topics(admin, topics)

    params = psycopg.conninfo.conninfo_to_dict(erp_dsn)
    with ExitStack() as stack:
        worker = KafkaConnectWorker(
            str(settings.kafka.bootstrap_servers), environment=database_environment(params)
        )
        stack.callback(worker.stop)
        worker.start()
        for name, config in ((debezium, "erp-postgres"), (schemaless, "erp-postgres-schemaless")):
            slot = name.replace(".", "_")
            overrides = {
                "topic.prefix": name,
                "slot.name": slot,
                "publication.name": slot,
                "heartbeat.interval.ms": "500",
            }
            worker.add_connector(connector_config(config, name=slot, **overrides))
        source = PostgresSource(
            PostgresSourceConfig(dsn=erp_dsn, tables=TABLES, slot=f"{run}_b",
                                 topic_prefix=f"{builtin}.raw.erp."),
            make_producer(settings),
        )  # fmt: skip
        stack.callback(source.close)
        assert source.prepare() is True
        assert source.snapshot() == 0  # the tables are empty: no snapshot positions to differ
        with psycopg.connect(erp_dsn, autocommit=True) as db:
            _wait_for_slots(db, [debezium.replace(".", "_"), schemaless.replace(".", "_")])
            for transaction in WORKLOAD:
                with db.transaction():
                    for statement in transaction:
                        db.execute(statement)
        while source.stream_once():
            pass

        pipelines(builtin, [rf"^{builtin}\.raw\.erp\..+"])
        for name in (debezium, schemaless):
            pipelines(name, [rf"^{name}\..+", rf"^__debezium-heartbeat\.{name}$"])
        events = {
            name: _canonical(settings, name, EXPECTED_EVENTS, timeout=60)
            for name in (builtin, debezium, schemaless)
        }

    reference = events[builtin]
    assert len(reference) == EXPECTED_EVENTS
    for name in (debezium, schemaless):
        assert sorted(events[name]) == sorted(reference), name
        for event_id, (entity, key, event) in reference.items():
            other_entity, other_key, other = events[name][event_id]
            assert (other_entity, other_key) == (entity, key)
            assert _comparable(other) == _comparable(event), (name, event.event_type)

    by_type: dict[str, list[Any]] = {}
    for _entity, _key, event in reference.values():
        by_type.setdefault(event.event_type, []).append(event)
    renamed = next(e for e in by_type["ProductChanged"] if e.payload.name == "Widget 2")
    assert "description" not in renamed.changed_fields  # unchanged TOAST: not a change
    assert renamed.payload.list_price == Decimal("99.9")
    created = by_type["ProductCreated"]
    assert {str(e.payload.list_price) for e in created} == {"12.3450", "5.0000"}
    assert next(e for e in created if e.payload.sku == "P2").payload.family == "parts"
    tools = [e for e in by_type["ProductChanged"] if e.payload.family == "tools"]
    assert len(tools) == 1  # the column added while streaming is carried
    held = by_type["AccountCreditHoldChanged"]
    assert len(held) == 1
    # REPLICA IDENTITY FULL: the unchanged TOASTed legal name comes from the old row
    assert held[0].changed_fields == []
    assert held[0].payload.legal_name is not None
    assert len(held[0].payload.legal_name) > 10_000
    first_tx = {e.correlation_id for e in by_type["AccountCreated"]}
    first_tx |= {e.correlation_id for e in created if e.payload.sku == "P1"}
    assert len(first_tx) == 1  # one source transaction, one correlation id
    lines = [line for e in by_type["OrderLineAdded"] for line in e.payload.lines]
    assert sorted(str(line.quantity) for line in lines) == ["0.0001", "2.5000"]

    # only the truncate is dead-lettered, on its table's topic; nothing on the control topics
    truncates = {
        f"dlq.{builtin}.raw.erp.sales_order_lines": 1,
        f"dlq.{debezium}.public.sales_order_lines": 1,
        f"dlq.{schemaless}.public.sales_order_lines": 1,
    }
    conf = settings.kafka.librdkafka()
    deadline = time.monotonic() + 30
    while True:
        ends = end_offsets(conf, [(f"dlq.{t}", 0) for t in raw], timeout=20)
        dead = {topic: n for (topic, _p), n in ends.items() if n}
        if dead == truncates or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert dead == truncates


def _wait_for_slots(db: psycopg.Connection[Any], slots: list[str], timeout: float = 30) -> None:
    """Debezium's slots exist: every change from now on is kept for them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = db.execute(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = ANY(%s)", (slots,)
        ).fetchone()
        if row is not None and row[0] == len(slots):
            return
        time.sleep(0.2)
    raise AssertionError(f"replication slots {slots} were not created")
