"""Both wire formats round-trip every entity, pin their framing, interoperate with confluent-kafka,
resolve older writers against newer readers, and fail with typed errors that keep the bytes."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from contracts import (
    CONTRACTS_DIR,
    ContractRegistry,
    DecodeError,
    Product,
    ProductEvent,
    Reason,
    SchemaUnknownError,
    Source,
    decode,
    default_registry,
    encode,
    make_deserializer,
    make_serializer,
    parsing_fingerprint,
    to_avro,
)
from contracts.errors import ConfigError, ContractError
from tests.contracts.samples import sample_events

pytestmark = pytest.mark.unit

ENTITIES = sorted(sample_events())


def _registry() -> SchemaRegistryClient:
    return SchemaRegistryClient.new_client({"url": "mock://contracts-tests"})


def _ctx(entity: str) -> SerializationContext:
    return SerializationContext(f"canonical.{entity}.v1", MessageField.VALUE)


@pytest.mark.parametrize("entity", ENTITIES)
def test_single_object_round_trip(entity: str) -> None:
    event = sample_events()[entity]
    data = make_serializer(entity)(event, _ctx(entity))
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == default_registry().latest(entity).fingerprint
    assert make_deserializer()(data, _ctx(entity)) == event
    assert decode(encode(event)) == event


@pytest.mark.parametrize("entity", ENTITIES)
def test_confluent_round_trip(entity: str) -> None:
    registry = _registry()
    event = sample_events()[entity]
    data = make_serializer(entity, wire_format="confluent", registry=registry)(event, _ctx(entity))
    schema_id = registry.get_latest_version(f"canonical.{entity}.v1-value").schema_id
    assert data[0] == 0
    assert int.from_bytes(data[1:5], "big") == schema_id
    assert make_deserializer(registry=registry)(data, _ctx(entity)) == event


def _tiny_product() -> ProductEvent:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    return ProductEvent(
        event_id="e", event_type="ProductChanged", correlation_id="c", occurred_at=at,
        ingested_at=at, source=Source(system="erp", vendor="v", record_id="r"),
        payload=Product(product_id="p"),
    )  # fmt: skip


GOLDEN_BODY = (
    "0265"  # event_id "e"
    "1c50726f647563744368616e676564"  # event_type "ProductChanged"
    "0e70726f64756374"  # entity "product"
    "02"  # schema_version 1
    "04"
    "0276"
    "00"
    "0272"
    "00"  # source: erp, vendor "v", instance null, "r", changed_at null
    "0263"  # correlation_id "c"
    "00"  # causation_id null
    "8080e3a0b7a69506"
    "8080e3a0b7a69506"  # occurred_at, ingested_at: 2025-01-01 in micros
    "00"
    "00"  # origin null, changed_fields []
    "0270" + "00" * 13  # payload: product_id "p", 13 null fields
)


def test_golden_single_object_bytes() -> None:
    fingerprint = default_registry().latest("product").fingerprint
    assert encode(_tiny_product()).hex() == "c301" + fingerprint.hex() + GOLDEN_BODY
    assert fingerprint.hex() == "77730fc03147aa60"


def test_golden_confluent_framing() -> None:
    registry = _registry()
    data = make_serializer("product", wire_format="confluent", registry=registry)(
        _tiny_product(), _ctx("product")
    )
    schema_id = registry.get_latest_version("canonical.product.v1-value").schema_id
    assert data.hex() == "00" + schema_id.to_bytes(4, "big").hex() + GOLDEN_BODY


def test_fingerprint_is_crc64_avro_little_endian() -> None:
    # Avro spec value for "int": 0x7275d51a3f395c8f, written little-endian.
    assert parsing_fingerprint("int") == (0x7275D51A3F395C8F).to_bytes(8, "little")


@pytest.mark.parametrize("entity", ENTITIES)
def test_bytes_written_by_interlock_decode_with_confluent(entity: str) -> None:
    registry = _registry()
    event = sample_events()[entity]
    data = make_serializer(entity, wire_format="confluent", registry=registry)(event, _ctx(entity))
    decoded = AvroDeserializer(registry)(data, _ctx(entity))
    assert decoded == to_avro(event)


@pytest.mark.parametrize("entity", ENTITIES)
def test_bytes_written_by_confluent_decode_with_interlock(entity: str) -> None:
    registry = _registry()
    event = sample_events()[entity]
    schema_str = default_registry().latest(entity).schema_str
    data = AvroSerializer(registry, schema_str)(to_avro(event), _ctx(entity))
    assert make_deserializer(registry=registry)(data, _ctx(entity)) == event


def test_record_subject_strategy_registers_under_record_name() -> None:
    registry = _registry()
    serializer = make_serializer(
        "order", wire_format="confluent", registry=registry, subject_strategy="record"
    )
    serializer(sample_events()["order"], None)
    assert registry.get_subjects() == ["interlock.canonical.OrderEvent"]


def test_confluent_without_registry_or_topic_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="registry"):
        make_serializer("order", wire_format="confluent")
    serializer = make_serializer("order", wire_format="confluent", registry=_registry())
    with pytest.raises(ConfigError, match="SerializationContext"):
        serializer(sample_events()["order"], None)


def test_serializer_refuses_another_entity() -> None:
    with pytest.raises(ContractError, match="order serializer got QuoteEvent") as info:
        make_serializer("order")(sample_events()["quote"])
    assert info.value.reason is Reason.ENCODE_FAILED


def _contracts_with_older_order(tmp_path: Path) -> ContractRegistry:
    """A contracts dir whose order v1 lacks ``status_reason`` and v2 is the shipped order."""
    shutil.copytree(CONTRACTS_DIR / "avro", tmp_path / "avro")
    shipped = json.loads((tmp_path / "avro/order/v1.avsc").read_text())
    older = {**shipped, "fields": [f for f in shipped["fields"] if f["name"] != "status_reason"]}
    (tmp_path / "avro/order/v2.avsc").write_text(json.dumps(shipped))
    (tmp_path / "avro/order/v1.avsc").write_text(json.dumps(older))
    return ContractRegistry.load(tmp_path)


@pytest.mark.parametrize("wire_format", ["single-object", "confluent"])
def test_older_writer_resolves_against_newer_reader(tmp_path: Path, wire_format: str) -> None:
    contracts = _contracts_with_older_order(tmp_path)
    registry = _registry()
    event = sample_events()["order"]
    event = event.model_copy(update={"payload": event.payload.model_copy(  # type: ignore[attr-defined]
        update={"status_reason": "credit limit exceeded"})})  # fmt: skip
    writer = make_serializer("order", version=1, contracts=contracts, registry=registry,
                             wire_format=wire_format)  # type: ignore[arg-type]  # fmt: skip
    data = writer(event, _ctx("order"))
    decoded = make_deserializer(contracts=contracts, registry=registry)(data, _ctx("order"))
    assert decoded.schema_version == 1
    assert decoded.payload.status_reason is None  # absent in v1: the reader's default
    assert decoded.payload.lines == event.payload.lines  # type: ignore[attr-defined]
    pinned = make_deserializer(contracts=contracts, registry=registry, reader_version=1)
    assert pinned(data, _ctx("order")).payload.status_reason is None


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty message"),
        (b"hello world", "unknown wire format"),
        (b"\xc3\x01\x00", "truncated single-object header"),
        (b"\x00\x00\x01", "truncated Confluent header"),
    ],
)
def test_garbage_raises_decode_error_with_raw_bytes(data: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match) as info:
        decode(data)
    assert info.value.raw == data
    assert info.value.reason is Reason.DECODE_FAILED


def test_truncated_body_raises_decode_error() -> None:
    data = encode(sample_events()["order"])[:-7]
    with pytest.raises(DecodeError, match="cannot decode event body") as info:
        decode(data)
    assert info.value.raw == data


def test_trailing_bytes_raise_decode_error() -> None:
    with pytest.raises(DecodeError, match="trailing bytes"):
        decode(encode(sample_events()["order"]) + b"\x00")


def test_unknown_fingerprint_raises_schema_unknown() -> None:
    data = b"\xc3\x01" + bytes(8) + b"\x02"
    with pytest.raises(SchemaUnknownError, match="0000000000000000") as info:
        decode(data)
    assert info.value.raw == data
    assert info.value.reason is Reason.SCHEMA_UNKNOWN


def test_unknown_schema_id_raises_schema_unknown() -> None:
    data = b"\x00\x00\x00\x03\xe7\x02"
    with pytest.raises(SchemaUnknownError, match="schema id 999") as info:
        make_deserializer(registry=_registry())(data, None)
    assert info.value.raw == data
    with pytest.raises(SchemaUnknownError, match="needs a schema registry"):
        decode(data)


def test_foreign_schema_in_registry_raises_schema_unknown() -> None:
    registry = _registry()
    schema = '{"type":"record","name":"Other","fields":[{"name":"a","type":"int"}]}'
    data = AvroSerializer(registry, schema)({"a": 1}, _ctx("other"))
    with pytest.raises(SchemaUnknownError, match="not an Interlock contract"):
        make_deserializer(registry=registry)(data, None)


def test_tombstone_stays_none() -> None:
    assert make_deserializer()(None, None) is None
