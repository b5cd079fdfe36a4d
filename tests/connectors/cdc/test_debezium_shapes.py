# ruff: noqa: E501  (Debezium source blocks are kept on one line each, as the documentation prints them)
"""What Debezium really sends, beyond the Postgres row changes: other connectors' positions,
unavailable values, every decimal and time mode, control records, transaction metadata on and
off, truncates (pure logic, on the event shapes of Debezium's connector documentation)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pytest

from connectors.cdc import CdcMapper, EnvelopeDecoder, load_mapping_dir
from connectors.cdc.envelope import UNAVAILABLE_PLACEHOLDER, ChangeEvent, ControlRecord
from connectors.cdc.fastpath import FastWriter
from connectors.cdc.logical import apply_logical_types, logical_fields
from connectors.cdc.mapper import MappingError, TruncateError
from contracts.errors import Reason
from contracts.serde import make_serializer
from tests.connectors.cdc.conftest import debezium, envelope_schema

pytestmark = pytest.mark.unit

MAPPER = CdcMapper(load_mapping_dir())
CUSTOMER = {"customer_number": "C-100", "name": "Acme GmbH", "payment_terms": "N30", "credit_limit_minor": 100, "credit_hold": False, "currency": "EUR", "updated_at": "2024-05-01T10:00:00Z"}  # fmt: skip
PRODUCT = {"sku": "SKU-1", "item_number": "I-1", "name": "Widget", "description": "A long text", "unit_of_measure": "EA", "unit_price_minor": 1999, "currency": "EUR", "active": True, "updated_at": "2024-05-01T10:00:00Z"}  # fmt: skip
INVOICE = {"invoice_number": "INV-1", "order_number": "SO-1", "customer_number": "C-100", "amount_minor": 10000, "tax_minor": 1900, "paid_minor": 0, "currency": "EUR", "status": "OPEN", "issued_date": 19844, "due_date": None, "paid_at": None, "updated_at": "2024-05-01T10:00:00Z"}  # fmt: skip
MYSQL_SOURCE = {"version": "3.6.1.Final", "connector": "mysql", "name": "erp", "ts_ms": 1465581029100, "snapshot": "false", "db": "erp", "table": "customers", "server_id": 223344, "gtid": None, "file": "mysql-bin.000003", "pos": 484, "row": 0, "thread": 7, "query": None}  # fmt: skip
SQLSERVER_SOURCE = {"version": "3.6.1.Final", "connector": "sqlserver", "name": "erp", "ts_ms": 1559729468470, "snapshot": "false", "db": "erp", "schema": "dbo", "table": "customers", "change_lsn": "00000027:00000758:0003", "commit_lsn": "00000027:00000758:0005", "event_serial_no": 1}  # fmt: skip
ORACLE_SOURCE = {"version": "3.6.1.Final", "connector": "oracle", "name": "erp", "ts_ms": 1520085154000, "txId": "6.28.807", "scn": "2122184", "commit_scn": "2122185", "rs_id": "001234.00012345.0124", "ssn": 0, "redo_thread": 1, "snapshot": "false", "db": "ERP", "schema": "ERP", "table": "customers"}  # fmt: skip


def _json(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def _change(value: bytes, topic: str = "erp.public.t") -> ChangeEvent:
    change = EnvelopeDecoder().decode(value, topic)
    assert isinstance(change, ChangeEvent)
    return change


def _envelope(op: str, source: dict[str, Any], before: Any, after: Any) -> dict[str, Any]:
    return {
        "before": before,
        "after": after,
        "source": source,
        "op": op,
        "ts_ms": source["ts_ms"] + 3,
    }


def _event_id(payload: dict[str, Any]) -> str:
    return MAPPER.map(_change(_json(payload))).event.event_id


# -- positions: unique per change, the same when delivered again -----------------------------


def test_two_mysql_changes_of_one_row_in_one_millisecond_get_different_ids() -> None:
    """Outside a transaction a MySQL change has no txId; ts_ms alone made these one event."""
    first = _envelope("u", MYSQL_SOURCE, CUSTOMER, {**CUSTOMER, "name": "Acme AG"})
    second = _envelope("u", {**MYSQL_SOURCE, "pos": 912}, CUSTOMER, {**CUSTOMER, "name": "Acme SE"})
    same_event_two_rows = _envelope(
        "u", {**MYSQL_SOURCE, "row": 1}, CUSTOMER, {**CUSTOMER, "name": "Acme SE"}
    )
    ids = {_event_id(first), _event_id(second), _event_id(same_event_two_rows)}
    assert len(ids) == 3
    redelivered = json.loads(json.dumps(first))  # the connector restarts and sends it again
    assert _event_id(redelivered) == _event_id(first)
    assert _change(_json(first)).position == "mysql:mysql-bin.000003:484:0"


@pytest.mark.parametrize(
    ("source", "moved", "position"),
    [
        (
            SQLSERVER_SOURCE,
            {"event_serial_no": 2},
            "sqlserver:00000027:00000758:0005:00000027:00000758:0003:1",
        ),
        (ORACLE_SOURCE, {"ssn": 1}, "oracle:2122184:2122185:001234.00012345.0124:0:1::"),
    ],
    ids=["sqlserver", "oracle"],
)
def test_every_connectors_position_tells_changes_apart(
    source: dict[str, Any], moved: dict[str, Any], position: str
) -> None:
    change = _envelope("u", source, CUSTOMER, {**CUSTOMER, "name": "Acme AG"})
    other = _envelope("u", {**source, **moved}, CUSTOMER, {**CUSTOMER, "name": "Acme AG"})
    assert _change(_json(change)).position == position
    assert _event_id(change) != _event_id(other)
    assert _event_id(change) == _event_id(json.loads(json.dumps(change)))


def test_postgres_keeps_its_lsn_position() -> None:
    change = _change(_json(debezium("c", "customers", None, CUSTOMER, lsn=24023128)))
    assert change.position == "lsn:24023128"


# -- correlation: the same with transaction metadata on and off -------------------------------


@pytest.mark.parametrize(
    ("source", "transaction_id"),
    [
        (debezium("c", "customers", None, CUSTOMER, tx=571)["source"], "571:53195829"),
        (
            {**MYSQL_SOURCE, "gtid": "3E11FA47-71CA-11E1-9E33-C80AA9429562:23"},
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:23",
        ),
        (SQLSERVER_SOURCE, "00000027:00000758:0005"),
        (ORACLE_SOURCE, "6.28.807"),
    ],
    ids=["postgres", "mysql-gtid", "sqlserver", "oracle"],
)
def test_correlation_id_does_not_depend_on_transaction_metadata(
    source: dict[str, Any], transaction_id: str
) -> None:
    plain = _envelope("c", source, None, CUSTOMER)
    with_metadata = {
        **plain,
        "transaction": {"id": transaction_id, "total_order": 1, "data_collection_order": 1},
    }
    off = MAPPER.map(_change(_json(plain))).event
    on = MAPPER.map(_change(_json(with_metadata))).event
    assert on.correlation_id == off.correlation_id
    assert on.event_id == off.event_id
    assert off.correlation_id != off.event_id  # a transaction id was found without metadata


# -- unavailable values ----------------------------------------------------------------------


def test_an_unchanged_toasted_column_is_not_changed_and_never_data() -> None:
    after = {**PRODUCT, "name": "Widget 2", "description": UNAVAILABLE_PLACEHOLDER}
    mapped = MAPPER.map(_change(_json(debezium("u", "products", None, after))))
    payload = mapped.event.payload
    assert mapped.event.changed_fields == sorted(
        {"product_id", "sku", "erp_item_number", "name", "unit_of_measure", "currency",
         "list_price", "active", "updated_at"}
    )  # fmt: skip
    assert payload.description is None  # not the placeholder; a merge keeps the old value
    assert payload.name == "Widget 2"
    full = MAPPER.map(_change(_json(debezium("u", "products", None, PRODUCT))))
    assert full.event.changed_fields == []  # an ordinary change is complete


def test_unavailable_values_in_their_bytes_and_array_forms() -> None:
    encoded = base64.b64encode(UNAVAILABLE_PLACEHOLDER.encode()).decode()
    after = {**PRODUCT, "description": encoded, "item_number": [UNAVAILABLE_PLACEHOLDER]}
    change = _change(_json(debezium("u", "products", None, after)))
    assert change.unavailable == {"description", "item_number"}
    event = MAPPER.map(change).event
    assert "description" not in event.changed_fields
    assert "erp_item_number" not in event.changed_fields
    assert event.payload.description is None


def test_a_placeholder_in_a_precise_decimal_is_not_read_as_a_number() -> None:
    encoded = base64.b64encode(UNAVAILABLE_PLACEHOLDER.encode()).decode()
    line = {"order_number": "SO-1", "line_number": 1, "customer_number": "C-100", "sku": "SKU-1", "quantity": encoded, "unit_price_minor": 100, "line_total_minor": 100}  # fmt: skip
    schema = _schema({"quantity": _decimal_field(4)})
    value = _json({"schema": schema, "payload": debezium("u", "sales_order_lines", None, line)})
    event = MAPPER.map(_change(value)).event
    assert "lines" not in event.changed_fields
    assert event.changed_fields == [
        "account_id",
        "erp_customer_number",
        "erp_order_number",
        "order_id",
    ]


def test_a_required_field_that_is_unavailable_is_dead_lettered_with_its_reason() -> None:
    after = {**CUSTOMER, "customer_number": UNAVAILABLE_PLACEHOLDER}
    with pytest.raises(
        MappingError, match=r"required field 'account_id' comes from \['customer_number'\]"
    ) as err:
        MAPPER.map(_change(_json(debezium("u", "customers", None, after))))
    assert err.value.reason is Reason.VALUE_UNAVAILABLE


def test_a_placeholder_does_not_look_like_a_changed_column() -> None:
    """on_change compares before and after: a placeholder is not a new value."""
    before = {**CUSTOMER, "credit_hold": False}
    after = {**CUSTOMER, "credit_hold": UNAVAILABLE_PLACEHOLDER, "name": "Acme AG"}
    event = MAPPER.map(_change(_json(debezium("u", "customers", before, after)))).event
    assert event.event_type == "AccountChanged"
    assert "credit_hold" not in event.changed_fields


def test_the_fast_writer_leaves_unavailable_values_to_the_reference_path() -> None:
    mapping = next(m for m in MAPPER.mappings if m.name == "erp-products")
    writer = FastWriter.build(mapping, make_serializer("product"))
    assert writer is not None
    writer.learn(b"\x00" * 10, 10)
    after = {**PRODUCT, "description": UNAVAILABLE_PLACEHOLDER}
    with pytest.raises(Exception, match="unavailable"):
        writer(_change(_json(debezium("u", "products", None, after))), datetime.now(UTC))


def test_a_custom_placeholder_is_recognised() -> None:
    after = {**PRODUCT, "description": "<toasted>"}
    change = EnvelopeDecoder(unavailable_placeholder="<toasted>").decode(
        _json(debezium("u", "products", None, after)), "t"
    )
    assert isinstance(change, ChangeEvent)
    assert change.unavailable == {"description"}


# -- decimals --------------------------------------------------------------------------------


def _decimal_field(scale: int) -> dict[str, Any]:
    return {
        "type": "bytes",
        "optional": True,
        "name": "org.apache.kafka.connect.data.Decimal",
        "version": 1,
        "parameters": {"scale": str(scale)},
    }


VARIABLE = {"type": "struct", "optional": True, "name": "io.debezium.data.VariableScaleDecimal", "version": 1, "fields": [{"type": "int32", "optional": False, "field": "scale"}, {"type": "bytes", "optional": False, "field": "value"}]}  # fmt: skip


def _schema(columns: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return envelope_schema([{**spec, "field": name} for name, spec in columns.items()])


def _unscaled(value: int) -> str:
    return base64.b64encode(
        value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)
    ).decode()


def _line(quantity: Any) -> dict[str, Any]:
    return {
        "order_number": "SO-1",
        "line_number": 1,
        "customer_number": "C-100",
        "sku": "SKU-1",
        "quantity": quantity,
        "unit_price_minor": 100,
        "line_total_minor": 100,
    }


@pytest.mark.parametrize(
    ("quantity", "column_schema"),
    [
        (_unscaled(125000), _decimal_field(4)),  # precise, with the schema envelope
        ({"scale": 3, "value": _unscaled(12500)}, VARIABLE),  # NUMERIC without a scale
        ({"scale": 3, "value": _unscaled(12500)}, None),  # the same, schemas.enable=false
        ("12.5000", None),  # decimal.handling.mode=string
        (12.5, None),  # decimal.handling.mode=double
    ],
    ids=["precise", "variable-scale", "variable-scale-schemaless", "string", "double"],
)
def test_every_decimal_handling_mode(quantity: Any, column_schema: dict[str, Any] | None) -> None:
    payload = debezium("c", "sales_order_lines", None, _line(quantity))
    value = _json(
        {"schema": _schema({"quantity": column_schema}), "payload": payload}
        if column_schema
        else payload
    )
    event = MAPPER.map(_change(value)).event
    assert event.payload.lines[0].quantity == Decimal("12.5")


def test_precise_decimals_without_the_schema_envelope_say_what_they_need() -> None:
    payload = debezium("c", "sales_order_lines", None, _line(_unscaled(125000)))
    with pytest.raises(
        MappingError, match=r"schemas\.enable=true .*decimal\.handling\.mode=string"
    ) as err:
        MAPPER.map(_change(_json(payload)))
    assert err.value.reason is Reason.SCHEMA_REQUIRED


# -- dates and times, every time.precision.mode ----------------------------------------------

PAID_US = datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
PAID_MS = datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)
EPOCH_US = 1714557600123456


def _timestamp(name: str) -> dict[str, Any]:
    return {"type": "int64", "optional": True, "name": name, "version": 1}


@pytest.mark.parametrize(
    ("paid_at", "column_schema", "expected"),
    [
        (EPOCH_US, _timestamp("io.debezium.time.MicroTimestamp"), PAID_US),  # adaptive
        (
            EPOCH_US // 1000,
            _timestamp("io.debezium.time.Timestamp"),
            PAID_MS,
        ),  # adaptive, precision <= 3
        (
            EPOCH_US * 1000 + 789,
            _timestamp("io.debezium.time.NanoTimestamp"),
            PAID_US,
        ),  # nanosecond columns
        (
            EPOCH_US // 1000,
            _timestamp("org.apache.kafka.connect.data.Timestamp"),
            PAID_MS,
        ),  # connect
        (
            "2024-05-01T10:00:00.123456Z",
            {
                "type": "string",
                "optional": True,
                "name": "io.debezium.time.ZonedTimestamp",
                "version": 1,
            },
            PAID_US,
        ),
        (
            "2024-05-01T10:00:00.123456789Z",
            {
                "type": "string",
                "optional": True,
                "name": "io.debezium.time.ZonedTimestamp",
                "version": 1,
            },
            PAID_US,
        ),
        (EPOCH_US, None, PAID_US),  # schemas.enable=false: the adaptive default, microseconds
    ],
    ids=[
        "MicroTimestamp",
        "Timestamp",
        "NanoTimestamp",
        "connect-Timestamp",
        "ZonedTimestamp",
        "ZonedTimestamp-nanos",
        "schemaless",
    ],
)
@pytest.mark.parametrize(
    ("issued", "date_schema"),
    [
        (
            19844,
            {"type": "int32", "optional": False, "name": "io.debezium.time.Date", "version": 1},
        ),
        (
            19844,
            {
                "type": "int32",
                "optional": False,
                "name": "org.apache.kafka.connect.data.Date",
                "version": 1,
            },
        ),
    ],
    ids=["Date", "connect-Date"],
)
def test_timestamps_and_dates_in_every_time_precision_mode(
    paid_at: Any,
    column_schema: dict[str, Any] | None,
    expected: datetime,
    issued: int,
    date_schema: dict[str, Any],
) -> None:
    row = {**INVOICE, "paid_at": paid_at, "issued_date": issued}
    payload = debezium("c", "invoices", None, row)
    columns = {"issued_date": date_schema, **({"paid_at": column_schema} if column_schema else {})}
    event = MAPPER.map(_change(_json({"schema": _schema(columns), "payload": payload}))).event
    assert event.payload.paid_at == expected
    assert event.payload.issued_date == date(2024, 5, 1)


@pytest.mark.parametrize(
    ("raw", "name", "expected"),
    [
        (36_000_123, "io.debezium.time.Time", time(10, 0, 0, 123000)),
        (36_000_123, "org.apache.kafka.connect.data.Time", time(10, 0, 0, 123000)),
        (36_000_123_456, "io.debezium.time.MicroTime", time(10, 0, 0, 123456)),
        (36_000_123_456_789, "io.debezium.time.NanoTime", time(10, 0, 0, 123456)),
        (86_400_000_000, "io.debezium.time.MicroTime", time.max),  # Postgres 24:00:00
    ],
)
def test_times_of_day_in_every_mode(raw: int, name: str, expected: time) -> None:
    converters = logical_fields(
        _schema({"at": {"type": "int64", "optional": True, "name": name}}), "after"
    )
    row = {"at": raw}
    apply_logical_types(row, converters, lambda _v: False)
    assert row["at"] == expected


def test_a_zero_ts_ms_is_not_a_commit_time() -> None:
    payload = debezium("r", "customers", None, CUSTOMER, snapshot="true")
    payload["source"]["ts_ms"] = 0
    event = MAPPER.map(_change(_json(payload))).event
    assert event.source.changed_at == datetime.fromtimestamp(payload["ts_ms"] / 1000, UTC)
    payload["ts_ms"] = 0
    now = datetime(2026, 1, 1, tzinfo=UTC)
    event = MAPPER.map(_change(_json(payload)), now).event
    assert event.source.changed_at is None
    assert event.occurred_at == now


# -- records that are not changes, and truncates ---------------------------------------------


@pytest.mark.parametrize(
    ("topic", "value", "kind"),
    [
        (
            "erp.transaction",
            {
                "status": "BEGIN",
                "id": "571:53195829",
                "ts_ms": 1486500577125,
                "event_count": None,
                "data_collections": None,
            },
            "transaction",
        ),
        (
            "erp.transaction",
            {
                "status": "END",
                "id": "571:53195832",
                "ts_ms": 1486500577691,
                "event_count": 2,
                "data_collections": [{"data_collection": "public.customers", "event_count": 2}],
            },
            "transaction",
        ),
        ("__debezium-heartbeat.erp", {"ts_ms": 1732000000000}, "heartbeat"),
        (
            "erp.heartbeat",
            {
                "schema": {
                    "type": "struct",
                    "name": "io.debezium.connector.common.Heartbeat",
                    "fields": [{"type": "int64", "field": "ts_ms"}],
                },
                "payload": {"ts_ms": 1732000000000},
            },
            "heartbeat",
        ),
        (
            "erp",
            {
                "source": MYSQL_SOURCE,
                "ts_ms": 1,
                "databaseName": "erp",
                "schemaName": None,
                "ddl": "ALTER TABLE customers ADD COLUMN x INT",
                "tableChanges": [],
            },
            "schema_change",
        ),
    ],
    ids=["begin", "end", "heartbeat", "heartbeat-with-schema", "schema-change"],
)
def test_records_that_are_not_changes_are_recognised(
    topic: str, value: dict[str, Any], kind: str
) -> None:
    decoded = EnvelopeDecoder().decode(_json(value), topic)
    assert decoded == ControlRecord(kind, topic)  # type: ignore[arg-type]


def test_a_truncate_has_its_own_reason() -> None:
    with pytest.raises(TruncateError) as err:
        MAPPER.map(_change(_json(debezium("t", "customers", None, None))))
    assert err.value.reason is Reason.TRUNCATE_UNSUPPORTED
