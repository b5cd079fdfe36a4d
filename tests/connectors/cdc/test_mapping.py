# ruff: noqa: E501  (Debezium fixtures are kept as the documentation prints them)
"""Debezium envelopes in every configured form map to the right canonical events (pure logic)."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from fastavro import parse_schema, schemaless_writer

from connectors.cdc import CdcMapper, EnvelopeDecoder, load_mapping_dir
from connectors.cdc.mapper import MappingError, TruncateError, UnknownTableError
from connectors.cdc.transforms import canonical_id
from contracts.errors import ConfigError, Reason
from contracts.models import EVENT_MODELS
from contracts.serde import decode, encode
from tests.connectors.cdc.conftest import CUSTOMER, debezium, with_schema

pytestmark = pytest.mark.unit

HELD = {**CUSTOMER, "credit_hold": True}
ACCOUNT_ID = canonical_id("account", "erp", "C-100")


@pytest.fixture(scope="module")
def mapper() -> CdcMapper:
    return CdcMapper(load_mapping_dir())


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


CASES = [
    ("c", None, CUSTOMER, "AccountCreated"),
    ("u", CUSTOMER, {**CUSTOMER, "name": "Acme AG"}, "AccountChanged"),
    ("u", CUSTOMER, HELD, "AccountCreditHoldChanged"),
    ("d", CUSTOMER, None, "AccountDeleted"),
    ("r", None, CUSTOMER, "AccountSnapshot"),
]


@pytest.mark.parametrize(("op", "before", "after", "event_type"), CASES)
@pytest.mark.parametrize("form", ["schemaless", "with_schema"])
def test_each_op_in_both_json_forms(
    mapper: CdcMapper, form: str, op: str, before: Any, after: Any, event_type: str
) -> None:
    payload = debezium(op, "customers", before, after, snapshot="true" if op == "r" else "false")
    value = _json(payload) if form == "schemaless" else with_schema(payload, {})
    change = EnvelopeDecoder().decode(value, "erp.public.customers")
    assert change is not None
    mapped = mapper.map(change)
    event = mapped.event
    assert mapped.topic == "canonical.account.v1"
    assert mapped.key == ACCOUNT_ID.encode()
    assert event.event_type == event_type
    assert event.source.system == "erp"
    assert event.source.record_id == "C-100"
    assert event.payload.account_id == ACCOUNT_ID
    assert event.payload.credit_limit == Decimal("12500.00")
    assert event.payload.payment_terms == "NET30"
    assert event.payload.billing_address.city == "Berlin"
    assert event.payload.deleted is (True if op == "d" else None)
    assert event.correlation_id != event.event_id  # shared by the source transaction
    # valid against the contract: full pydantic validation and an Avro round trip agree
    assert EVENT_MODELS["account"].model_validate(event.model_dump()) == event
    assert decode(encode(event)) == event


def test_connect_decimals_are_decoded_with_their_scale(mapper: CdcMapper) -> None:
    row = {
        "order_number": "SO-1", "line_number": 1, "customer_number": "C-100", "sku": "W-1",
        "description": "Widget", "quantity": base64.b64encode((25000).to_bytes(3, "big")).decode(),
        "unit_price_minor": 999, "line_total_minor": 24975, "promised_date": 19800,
    }  # fmt: skip
    value = with_schema(debezium("c", "sales_order_lines", None, row), {"quantity": 4})
    change = EnvelopeDecoder().decode(value, "erp.public.sales_order_lines")
    assert change is not None
    event = mapper.map(change).event
    line = event.payload.lines[0]
    assert line.quantity == Decimal("2.5000")
    assert line.unit_price == Decimal("9.99")
    assert str(line.promised_date) == "2024-03-18"
    assert event.event_type == "OrderLineAdded"
    assert "lines" in event.changed_fields
    assert event.payload.account_id == ACCOUNT_ID


AVRO_ROW = {
    "type": "record", "name": "Value", "namespace": "erp.public.invoices",
    "fields": [
        {"name": "invoice_number", "type": "string"},
        {"name": "order_number", "type": ["null", "string"], "default": None},
        {"name": "customer_number", "type": "string"},
        {"name": "amount_minor", "type": "long"},
        {"name": "status", "type": "string"},
        {"name": "due_date", "type": ["null", {"type": "int", "connect.name": "io.debezium.time.Date"}], "default": None},
    ],
}  # fmt: skip
AVRO_ENVELOPE = {
    "type": "record", "name": "Envelope", "namespace": "erp.public.invoices",
    "fields": [
        {"name": "before", "type": ["null", AVRO_ROW], "default": None},
        {"name": "after", "type": ["null", "Value"], "default": None},
        {"name": "source", "type": {"type": "record", "name": "Source", "namespace": "io.debezium.connector.postgresql", "fields": [
            {"name": "ts_ms", "type": "long"}, {"name": "snapshot", "type": ["string", "null"]},
            {"name": "db", "type": "string"}, {"name": "schema", "type": "string"},
            {"name": "table", "type": "string"}, {"name": "txId", "type": ["null", "long"]},
            {"name": "lsn", "type": ["null", "long"]}]}},
        {"name": "op", "type": "string"},
        {"name": "ts_ms", "type": ["null", "long"]},
    ],
}  # fmt: skip


@pytest.mark.parametrize(("op", "event_type"), [("c", "InvoiceIssued"), ("u", "InvoiceStatusChanged"), ("d", "InvoiceDeleted"), ("r", "InvoiceSnapshot")])  # fmt: skip
def test_confluent_avro_changes(mapper: CdcMapper, op: str, event_type: str) -> None:
    registry = SchemaRegistryClient.new_client({"url": "mock://cdc-unit"})
    schema_id = registry.register_schema(
        "erp.public.invoices-value", Schema(json.dumps(AVRO_ENVELOPE), "AVRO")
    )
    row = {
        "invoice_number": "INV-1",
        "order_number": "SO-1",
        "customer_number": "C-100",
        "amount_minor": 5000,
        "status": "OPEN",
        "due_date": 19800,
    }
    paid = {**row, "status": "PAID"}
    before, after = {"c": (None, row), "u": (row, paid), "d": (row, None), "r": (None, row)}[op]
    record = {
        "before": before,
        "after": after,
        "op": op,
        "ts_ms": 1,
        "source": {
            "ts_ms": 1700000000000,
            "snapshot": "false",
            "db": "erp",
            "schema": "public",
            "table": "invoices",
            "txId": 7,
            "lsn": 99,
        },
    }
    buf = BytesIO()
    schemaless_writer(buf, parse_schema(AVRO_ENVELOPE), record)
    value = b"\x00" + schema_id.to_bytes(4, "big") + buf.getvalue()
    change = EnvelopeDecoder(registry).decode(value, "erp.public.invoices")
    assert change is not None
    mapped = mapper.map(change)
    assert mapped.topic == "canonical.invoice.v1"
    assert mapped.key == ACCOUNT_ID.encode()
    assert mapped.event.event_type == event_type
    assert mapped.event.payload.subtotal == Decimal("50.00")
    assert mapped.event.payload.status == ("PAID" if op == "u" else "ISSUED")
    assert mapped.event.payload.order_id == canonical_id("order", "erp", "SO-1")


def test_tombstone_is_nothing_to_map() -> None:
    assert EnvelopeDecoder().decode(None, "erp.public.customers") is None
    assert EnvelopeDecoder().decode(b'{"schema":null,"payload":null}', "t") is None


def test_truncate_is_refused_with_a_clear_reason(mapper: CdcMapper) -> None:
    change = EnvelopeDecoder().decode(_json(debezium("t", "customers", None, None)), "t")
    assert change is not None
    with pytest.raises(
        TruncateError, match=r"TRUNCATE of public\.customers was not applied"
    ) as err:
        mapper.map(change)
    assert err.value.reason is Reason.TRUNCATE_UNSUPPORTED


def test_unknown_table_and_bad_values(mapper: CdcMapper) -> None:
    change = EnvelopeDecoder().decode(_json(debezium("c", "warehouses", None, {"id": 1})), "t")
    assert change is not None
    with pytest.raises(UnknownTableError):
        mapper.map(change)
    bad = {**CUSTOMER, "credit_hold": "maybe"}
    change = EnvelopeDecoder().decode(_json(debezium("c", "customers", None, bad)), "t")
    assert change is not None
    with pytest.raises(MappingError, match="not a boolean"):
        mapper.map(change)
    missing = {**CUSTOMER, "customer_number": None}
    change = EnvelopeDecoder().decode(_json(debezium("c", "customers", None, missing)), "t")
    assert change is not None
    with pytest.raises(MappingError) as err:
        mapper.map(change)
    assert err.value.reason is Reason.VALIDATION_MISSING_FIELD


def test_event_id_is_stable_per_change_and_differs_between_changes(mapper: CdcMapper) -> None:
    decoder = EnvelopeDecoder()

    def event_id(lsn: int, op: str = "c") -> str:
        change = decoder.decode(_json(debezium(op, "customers", None, CUSTOMER, lsn=lsn)), "t")
        assert change is not None
        return mapper.map(change).event.event_id

    assert event_id(100) == event_id(100)
    assert event_id(100) != event_id(101)
    assert event_id(100, "c") != event_id(100, "r")


def test_glob_tables_and_validation_errors_name_file_mapping_field(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        "mappings:\n"
        "  - name: any-customers\n    table: '*.cust*'\n    entity: account\n"
        "    record_id: [num]\n    fields:\n      account_id: {canonical_id: account, columns: [num]}\n"
    )
    mapper = CdcMapper(load_mapping_dir(tmp_path))
    assert mapper.mapping_for("customers_eu", "sales") is not None
    assert mapper.mapping_for("orders", "sales") is None
    (tmp_path / "m.yaml").write_text(
        "mappings:\n  - name: broken\n    table: t\n    entity: account\n    record_id: [id]\n"
        "    fields:\n      name: {column: a, const: b}\n"
    )
    with pytest.raises(
        ConfigError, match=r"m\.yaml: mapping 'broken': field 'name': .*exactly one"
    ):
        load_mapping_dir(tmp_path)
    (tmp_path / "m.yaml").write_text(
        "mappings:\n  - name: wrong-enum\n    table: t\n    entity: order\n    record_id: [id]\n"
        "    fields:\n      status: {column: s, map: {X: SHIPPPED}}\n"
    )
    with pytest.raises(ConfigError, match=r"mapping 'wrong-enum': field 'status': enum map"):
        CdcMapper(load_mapping_dir(tmp_path))
