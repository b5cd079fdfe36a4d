"""Event serializers and deserializers for Kafka, in both wire formats Interlock speaks.

Writing picks the format by configuration; reading recognises it by the first byte:

- Avro single-object encoding, ``C3 01`` + 8-byte little-endian CRC-64-AVRO fingerprint of the
  writer schema's parsing canonical form, resolved against the contracts shipped here (no
  registry needed: the embedded default).
- Confluent wire format, ``00`` + 4-byte big-endian schema id, resolved through a Schema
  Registry (``confluent_kafka.schema_registry.SchemaRegistryClient``; ``mock://`` in tests).

Both callables have confluent-kafka's shape, ``(obj, SerializationContext | None)``. Schemas
are parsed once and every decode plan is cached per fingerprint or schema id. Where the writer
schema is the reader schema (always when writing, and when reading the current contract), the
body goes through the generated codec of ``contracts.codec`` (same bytes, several times
faster); schema resolution across versions stays with fastavro.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Literal, cast

from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    record_subject_name_strategy,
    topic_record_subject_name_strategy,
    topic_subject_name_strategy,
)
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import SerializationContext
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import to_parsing_canonical_form

from contracts.codec import AvroCodec, compile_codec
from contracts.conversion import event_builder, event_dumper, from_avro
from contracts.errors import ConfigError, ContractError, DecodeError, Reason, SchemaUnknownError
from contracts.models import EVENT_MODELS, Envelope
from contracts.registry import ContractRegistry, ContractVersion, default_registry

__all__ = [
    "CONFLUENT_MAGIC",
    "SINGLE_OBJECT_MAGIC",
    "EventDeserializer",
    "EventSerializer",
    "SubjectStrategy",
    "WireFormat",
    "decode",
    "encode",
    "make_deserializer",
    "make_serializer",
]

WireFormat = Literal["single-object", "confluent"]
SubjectStrategy = Literal["topic", "record", "topic_record"]
SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
_SUBJECT_STRATEGIES: dict[str, Callable[[SerializationContext | None, str | None], str | None]] = {
    "topic": topic_subject_name_strategy,
    "record": record_subject_name_strategy,
    "topic_record": topic_record_subject_name_strategy,
}


def _mirrors_models(cv: ContractVersion) -> bool:
    """True when ``cv`` has the exact shape of the shipped version the event models mirror."""
    try:
        mirrored = default_registry().get(cv.entity, EVENT_MODELS[cv.entity].SCHEMA_VERSION)
    except (ConfigError, KeyError):
        return False
    return mirrored.fingerprint == cv.fingerprint


class EventSerializer:
    """Encodes one entity's events to bytes in the configured wire format.

    ``version`` None encodes with the latest shipped contract of ``entity``.
    """

    def __init__(
        self,
        entity: str,
        *,
        wire_format: WireFormat = "single-object",
        registry: SchemaRegistryClient | None = None,
        subject_strategy: SubjectStrategy = "topic",
        version: int | None = None,
        auto_register: bool = True,
        contracts: ContractRegistry | None = None,
    ) -> None:
        if wire_format not in ("single-object", "confluent"):
            raise ConfigError(f"unknown wire format {wire_format!r}")
        if wire_format == "confluent" and registry is None:
            raise ConfigError("the confluent wire format needs a schema registry client")
        if subject_strategy not in _SUBJECT_STRATEGIES:
            raise ConfigError(f"unknown subject name strategy {subject_strategy!r}")
        self.entity = entity
        self.wire_format: WireFormat = wire_format
        self.contract = (contracts or default_registry()).get(entity, version)
        self._registry = registry
        self._subject_name = _SUBJECT_STRATEGIES[subject_strategy]
        self._auto_register = auto_register
        self._schema = Schema(self.contract.schema_str, "AVRO")
        self._ids: dict[str, bytes] = {}
        self._model = EVENT_MODELS[entity]
        self._dump = event_dumper(entity)
        self._parsed = self.contract.parsed
        self._version = self.contract.version
        self._header = SINGLE_OBJECT_MAGIC + self.contract.fingerprint
        self._codec = _codec_of(self.contract.schema_str, self._parsed)

    def __call__(self, obj: Envelope, ctx: SerializationContext | None = None) -> bytes:
        """Encode ``obj``; ``ctx`` names the topic for the Confluent subject strategy."""
        if type(obj) is not self._model:
            raise ContractError(
                f"{self.entity} serializer got {type(obj).__name__}",
                reason=Reason.ENCODE_FAILED,
            )
        header = self._header if self.wire_format == "single-object" else self._confluent(ctx)
        codec = self._codec
        try:
            if codec is not None:
                # The codec reads nested models through their __dict__: one shallow copy only.
                record = obj.__dict__.copy()
                record["schema_version"] = self._version
                buf = bytearray(header)
                codec.write(buf, record)
                return bytes(buf)
            record = self._dump(obj)
            record["schema_version"] = self._version
            out = BytesIO()
            out.write(header)
            schemaless_writer(out, self._parsed, record)
        except Exception as exc:
            raise ContractError(
                f"cannot encode {self.entity} v{self._version} event {obj.event_id}: {exc}",
                reason=Reason.ENCODE_FAILED,
            ) from exc
        return out.getvalue()

    def _confluent(self, ctx: SerializationContext | None) -> bytes:
        try:
            subject = self._subject_name(ctx, self.contract.record_name)
        except (ValueError, AttributeError, TypeError) as exc:
            # confluent-kafka's topic strategies dereference ctx.topic without a check
            raise ConfigError(
                f"subject name strategy failed ({exc}); the topic subject strategy needs a "
                "SerializationContext"
            ) from exc
        if subject is None:
            raise ConfigError("the topic subject strategy needs a SerializationContext")
        header = self._ids.get(subject)
        if header is None:
            header = CONFLUENT_MAGIC + self._schema_id(subject).to_bytes(4, "big")
            self._ids[subject] = header
        return header

    def _schema_id(self, subject: str) -> int:
        assert self._registry is not None
        try:
            if self._auto_register:
                return int(self._registry.register_schema(subject, self._schema))
            registered = self._registry.lookup_schema(subject, self._schema)
            return int(registered.schema_id or 0)
        except SchemaRegistryError as exc:
            raise ContractError(
                f"schema registry refused {self.contract.record_name} for subject {subject!r}: "
                f"{exc}",
                reason=Reason.ENCODE_FAILED,
                transient=exc.http_status_code >= 500 or exc.http_status_code < 0,
            ) from exc


@dataclass(frozen=True)
class _Plan:
    """How to decode bytes written with one writer schema."""

    writer: dict[str, Any]
    reader: dict[str, Any] | None
    build: Callable[[dict[str, Any]], Envelope]
    codec: AvroCodec | None = None
    """The generated codec, when the writer schema is the reader schema."""


class EventDeserializer:
    """Decodes bytes in either wire format to the event model of their entity.

    One deserializer serves every entity; the Confluent wire format needs ``registry``.
    """

    def __init__(
        self,
        *,
        registry: SchemaRegistryClient | None = None,
        reader_version: int | Literal["latest"] = "latest",
        contracts: ContractRegistry | None = None,
    ) -> None:
        self._registry = registry
        self._reader_version = None if reader_version == "latest" else reader_version
        self._contracts = contracts or default_registry()
        self._by_fingerprint: dict[bytes, _Plan] = {}
        self._by_schema_id: dict[int, _Plan] = {}

    def __call__(self, data: bytes | None, ctx: SerializationContext | None = None) -> Any:
        """Decode ``data``; ``None`` (a tombstone) stays ``None``."""
        if data is None:
            return None
        return self.decode(data)

    def decode(self, data: bytes) -> Envelope:
        """Decode one message value.

        Raises:
            SchemaUnknownError: the fingerprint or schema id is not known.
            DecodeError: wrong magic, truncated, or not matching the writer schema.
        """
        size = len(data)
        if size >= 10 and data[0] == 0xC3 and data[1] == 0x01:
            fp = bytes(data[2:10])
            plan = self._by_fingerprint.get(fp) or self._fingerprint_plan(fp, data)
            offset = 10
        elif size >= 5 and data[0] == 0x00:
            schema_id = int.from_bytes(data[1:5], "big")
            plan = self._by_schema_id.get(schema_id) or self._schema_id_plan(schema_id, data)
            offset = 5
        else:
            raise DecodeError(_bad_header(data), raw=bytes(data))
        codec = plan.codec
        if codec is not None:
            try:
                record, end = codec.read(data, offset)
            except Exception as exc:
                raise DecodeError(f"cannot decode event body: {exc!r}", raw=bytes(data)) from exc
            if end != size:
                raise DecodeError(
                    f"{size - end} trailing bytes after the event body", raw=bytes(data)
                )
            return plan.build(record)
        buf = BytesIO(data)
        buf.seek(offset)
        try:
            record = cast(dict[str, Any], schemaless_reader(buf, plan.writer, plan.reader))
        except Exception as exc:
            raise DecodeError(f"cannot decode event body: {exc!r}", raw=bytes(data)) from exc
        if buf.tell() != size:
            raise DecodeError(
                f"{size - buf.tell()} trailing bytes after the event body", raw=bytes(data)
            )
        return plan.build(record)

    def _reader(self, entity: str) -> ContractVersion:
        return self._contracts.get(entity, self._reader_version)

    def _plan(self, writer: dict[str, Any], writer_form: str, entity: str) -> _Plan:
        reader = self._reader(entity)
        same = reader.canonical_form == writer_form
        if _mirrors_models(reader):
            build = event_builder(entity)
        else:

            def build(record: dict[str, Any]) -> Envelope:
                return from_avro(entity, record)

        if same:
            codec = _codec_of(writer_form, writer)
            return _Plan(writer=writer, reader=None, build=build, codec=codec)
        return _Plan(writer=writer, reader=reader.parsed, build=build)

    def _fingerprint_plan(self, fp: bytes, data: bytes) -> _Plan:
        writer = self._contracts.by_fingerprint(fp)
        if writer is None:
            raise SchemaUnknownError(
                f"no shipped contract has fingerprint {fp.hex()}", raw=bytes(data)
            )
        plan = self._plan(writer.parsed, writer.canonical_form, writer.entity)
        self._by_fingerprint[fp] = plan
        return plan

    def _schema_id_plan(self, schema_id: int, data: bytes) -> _Plan:
        if self._registry is None:
            raise SchemaUnknownError(
                f"schema id {schema_id} needs a schema registry, none is configured",
                raw=bytes(data),
            )
        try:
            schema = self._registry.get_schema(schema_id)
            writer_json = json.loads(schema.schema_str or "")
            writer = cast(dict[str, Any], parse_schema(writer_json, _force=True))
            form = to_parsing_canonical_form(parse_schema(writer_json, _write_hint=False))
        except SchemaRegistryError as exc:
            transient = exc.http_status_code >= 500 or exc.http_status_code < 0
            raise SchemaUnknownError(
                f"schema id {schema_id} is not in the registry: {exc}",
                raw=bytes(data),
                transient=transient,
            ) from exc
        except Exception as exc:
            raise SchemaUnknownError(
                f"schema id {schema_id} is not a usable Avro schema: {exc}", raw=bytes(data)
            ) from exc
        name = writer.get("name") if isinstance(writer, dict) else None
        entity = self._contracts.entity_of_record(str(name))
        if entity is None:
            raise SchemaUnknownError(
                f"schema id {schema_id} ({name}) is not an Interlock contract", raw=bytes(data)
            )
        plan = self._plan(writer, form, entity)
        self._by_schema_id[schema_id] = plan
        return plan


_codecs: dict[str, AvroCodec | None] = {}


def _codec_of(key: str, parsed: dict[str, Any]) -> AvroCodec | None:
    """The generated codec of ``parsed``, compiled once per process per ``key``.

    Writers key by the full schema JSON (field defaults matter when a field is missing);
    readers by the parsing canonical form (defaults never matter when reading).
    """
    if key not in _codecs:
        _codecs[key] = compile_codec(parsed)
    return _codecs[key]


def _bad_header(data: bytes) -> str:
    if not data:
        return "empty message"
    if data[0] == 0xC3 and (len(data) < 2 or data[1] == 0x01):
        return f"truncated single-object header ({len(data)} of 10 bytes)"
    if data[0] == 0x00:
        return f"truncated Confluent header ({len(data)} of 5 bytes)"
    return f"unknown wire format: first bytes {bytes(data[:2]).hex()} (want c301 or 00)"


# The factories are the classes: a factory that repeated their keyword arguments would have to
# be kept in step with them by hand.
make_serializer = EventSerializer
make_deserializer = EventDeserializer

_default_serializers: dict[str, EventSerializer] = {}
_default_deserializer: list[EventDeserializer] = []


def encode(event: Envelope) -> bytes:
    """Single-object encoding of ``event`` with the latest shipped contract of its entity."""
    entity = type(event).ENTITY
    serializer = _default_serializers.get(entity)
    if serializer is None:
        serializer = _default_serializers[entity] = EventSerializer(entity)
    return serializer(event)


def decode(data: bytes) -> Envelope:
    """Decode single-object bytes against the shipped contracts (no registry)."""
    if not _default_deserializer:
        _default_deserializer.append(EventDeserializer())
    return _default_deserializer[0].decode(data)
