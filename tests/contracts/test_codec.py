"""The generated Avro codecs write fastavro's exact bytes and read what fastavro reads."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import ContractVersion, decode, default_registry, encode, make_serializer, to_avro
from contracts.codec import AvroCodec, compile_codec
from contracts.serde import SINGLE_OBJECT_MAGIC
from tests.contracts.samples import sample_events

pytestmark = pytest.mark.unit

CONTRACTS = default_registry().all()
TEXT = st.text(max_size=40)  # any unicode, including astral and combining characters
_TZ = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)


def _decimals(precision: int, scale: int) -> st.SearchStrategy[Decimal]:
    """Decimals that fit (precision, scale): exponents from -scale up, negatives, zero, extremes."""
    limit = 10**precision - 1
    return st.builds(
        lambda unscaled, shift: Decimal(unscaled).scaleb(-scale + shift),
        st.one_of(st.integers(-limit, limit), st.sampled_from([0, limit, -limit, 128, -128])),
        st.integers(0, scale),
    ).filter(lambda d: len(d.as_tuple().digits) <= precision)


def _datetimes() -> st.SearchStrategy[datetime]:
    return st.datetimes(
        min_value=datetime(1901, 1, 1), max_value=datetime(2200, 1, 1), timezones=_TZ
    )


def values(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of a fastavro-parsed schema, as the contract models hand them to the writer."""
    if isinstance(schema, list):
        return st.one_of(*(values(branch, named) for branch in schema))
    if isinstance(schema, str):
        if schema in named:
            return values(named[schema], named)
        schema = {"type": schema}
    kind, logical = schema["type"], schema.get("logicalType")
    if isinstance(kind, (dict, list)):
        return values(kind, named)
    if logical == "decimal":
        return _decimals(schema["precision"], schema.get("scale", 0))
    if logical in ("timestamp-millis", "timestamp-micros"):
        return _datetimes()
    if logical == "date":
        return st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
    simple: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1),
        "string": TEXT,
        "bytes": st.binary(max_size=40),
        "float": st.floats(width=32, allow_nan=False),
        "double": st.floats(allow_nan=False),
    }
    if kind in simple:
        return simple[kind]
    if kind == "enum":
        named[schema["name"]] = schema
        return st.sampled_from(schema["symbols"])
    if kind == "fixed":
        named[schema["name"]] = schema
        return st.binary(min_size=schema["size"], max_size=schema["size"])
    if kind == "array":
        return st.lists(values(schema["items"], named), max_size=4)
    assert kind == "record", kind
    named[schema["name"]] = schema
    return st.fixed_dictionaries({f["name"]: values(f["type"], named) for f in schema["fields"]})


def fastavro_bytes(schema: Any, datum: Any) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, schema, datum)
    return out.getvalue()


def fastavro_read(schema: Any, data: bytes) -> Any:
    return schemaless_reader(io.BytesIO(data), schema, None)


def exact(value: Any) -> Any:
    """``value`` with decimals as their (sign, digits, exponent): 1.0 and 1.00 differ."""
    if isinstance(value, dict):
        return {k: exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [exact(v) for v in value]
    if isinstance(value, Decimal):
        return ("decimal", value.as_tuple())
    if isinstance(value, datetime):
        return ("datetime", value, value.tzinfo)
    return value


def _compiled(schema: Any) -> AvroCodec:
    """The generated codec of ``schema``, which must be one the generator supports."""
    codec = compile_codec(schema)
    assert codec is not None
    return codec


def test_every_shipped_contract_gets_a_generated_codec() -> None:
    assert CONTRACTS
    for cv in CONTRACTS:
        assert compile_codec(cv.parsed) is not None, cv.entity


@pytest.mark.parametrize("cv", CONTRACTS, ids=lambda cv: f"{cv.entity}-v{cv.version}")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_same_bytes_and_same_values_as_fastavro(cv: ContractVersion, data: st.DataObject) -> None:
    codec = _compiled(cv.parsed)
    datum = data.draw(values(cv.parsed, {}))
    expected = fastavro_bytes(cv.parsed, datum)
    assert codec.encode(datum) == expected
    assert exact(codec.decode(expected)) == exact(fastavro_read(cv.parsed, expected))


@pytest.mark.parametrize("entity", sorted(sample_events()))
def test_models_encode_like_their_dicts_and_round_trip(entity: str) -> None:
    event = sample_events()[entity]
    cv = default_registry().latest(entity)
    codec = _compiled(cv.parsed)
    record = to_avro(event)
    assert codec.encode(event) == codec.encode(record) == fastavro_bytes(cv.parsed, record)
    assert decode(encode(event)) == event


def test_serializer_output_is_header_plus_fastavro_body() -> None:
    for entity, event in sample_events().items():
        cv = default_registry().latest(entity)
        record = to_avro(event)
        record["schema_version"] = cv.version
        body = fastavro_bytes(cv.parsed, record)
        assert make_serializer(entity)(event) == SINGLE_OBJECT_MAGIC + cv.fingerprint + body


DECIMAL = {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2}


@pytest.mark.parametrize(
    "value",
    [Decimal("1.234"), Decimal("12345.67"), Decimal("1.00000"), Decimal("NaN")],
    ids=["too-many-places", "too-many-digits", "zeros-beyond-scale", "nan"],
)
def test_decimals_fastavro_refuses_are_refused(value: Decimal) -> None:
    schema = parse_schema(DECIMAL)
    codec = _compiled(schema)
    with pytest.raises((ValueError, TypeError)):
        fastavro_bytes(schema, value)
    with pytest.raises((ValueError, TypeError)):
        codec.encode(value)


def test_unknown_enum_symbol_and_missing_required_field_are_refused() -> None:
    cv = default_registry().latest("account")
    codec = _compiled(cv.parsed)
    record = to_avro(sample_events()["account"])
    record["payload"]["lifecycle_stage"] = "NOT_A_STAGE"
    with pytest.raises(KeyError):
        codec.encode(record)
    del record["event_id"]
    with pytest.raises(KeyError):
        codec.encode(record)


def test_missing_optional_fields_take_their_defaults_like_fastavro() -> None:
    cv = default_registry().latest("order")
    codec = _compiled(cv.parsed)
    record = to_avro(sample_events()["order"])
    for name in ("causation_id", "origin", "changed_fields"):
        del record[name]
    payload = record["payload"]
    for name in ("lines", "status", "bill_to", "total"):
        del payload[name]
    assert codec.encode(record) == fastavro_bytes(cv.parsed, record)


def test_values_of_other_types_go_through_fastavros_conversions() -> None:
    schema = parse_schema(
        {
            "type": "record",
            "name": "Odd",
            "fields": [
                {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
                {"name": "us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
                {"name": "day", "type": {"type": "int", "logicalType": "date"}},
                {"name": "amount", "type": DECIMAL},
            ],
        }
    )
    codec = _compiled(schema)
    for datum in (
        {"at": 1_700_000_000_123, "us": -5, "day": 19_000, "amount": b"\x01\x00"},
        {"at": datetime(2024, 2, 29, 12, 0, 0, 999_999, tzinfo=UTC), "us": datetime(1960, 1, 1,
         tzinfo=UTC), "day": datetime(2024, 2, 29, 23, 59), "amount": Decimal("-0.01")},
        {"at": datetime(2024, 2, 29, 12), "us": datetime(2024, 2, 29, 12), "day": "2024-02-29",
         "amount": Decimal("-128")},
    ):  # fmt: skip
        assert codec.encode(datum) == fastavro_bytes(schema, datum)


GENERIC = [
    {"type": "array", "items": {"type": "array", "items": ["string", "null"]}},
    {"type": "record", "name": "Nums", "fields": [
        {"name": "f", "type": "float"}, {"name": "d", "type": ["null", "double"]},
        {"name": "i", "type": "int"}, {"name": "l", "type": "long"},
        {"name": "b", "type": "bytes"}, {"name": "ok", "type": "boolean"},
        {"name": "x", "type": {"type": "fixed", "name": "Four", "size": 4}},
        {"name": "y", "type": ["null", "Four"]}, {"name": "n", "type": "null"},
    ]},
    "string",
]  # fmt: skip


@pytest.mark.parametrize("raw", GENERIC, ids=["nested-arrays", "primitives", "string"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_generic_schemas_match_fastavro(raw: Any, data: st.DataObject) -> None:
    schema = parse_schema(raw)
    codec = _compiled(schema)
    datum = data.draw(values(schema, {}))
    expected = fastavro_bytes(schema, datum)
    assert codec.encode(datum) == expected
    assert codec.decode(expected) == fastavro_read(schema, expected)


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "map", "values": "string"},
        ["null", "string", "long"],
        {"type": "string", "logicalType": "uuid"},
        {"type": "int", "logicalType": "time-millis"},
    ],
    ids=["map", "three-way-union", "uuid", "time-millis"],
)
def test_unsupported_features_fall_back_to_fastavro(raw: Any) -> None:
    assert compile_codec(parse_schema(raw)) is None


def test_truncated_and_corrupt_bodies_raise() -> None:
    cv = default_registry().latest("quote")
    codec = _compiled(cv.parsed)
    body = fastavro_bytes(cv.parsed, to_avro(sample_events()["quote"]))
    for cut in (1, len(body) // 2, len(body) - 1):
        with pytest.raises((IndexError, EOFError, ValueError)):
            codec.decode(body[:cut])
    with pytest.raises(ValueError, match="trailing"):
        codec.decode(body + b"\x00")
    with pytest.raises(ValueError, match="negative length"):
        codec.decode(b"\x01" + body[1:])  # the event id's length as -1
