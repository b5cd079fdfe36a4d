"""Per-mapping Avro writers: a Debezium row image straight to canonical event bytes.

The reference path builds a payload dict, the event models, then encodes them
(``CdcMapper.map`` + ``contracts.make_serializer``): about twice the work of the event itself.
The writer generated here computes the same values into local variables and appends each
field's encoding as it goes, using the lines ``contracts.codec_gen.CodecGenerator`` emits for
the contract's own schema (``connectors.cdc.emitter``), so its bytes are the codec's bytes (a
property test holds every shipped mapping to the reference path). What it saves:

- runs of constant fields (entity, schema version, unmapped optional fields) are encoded once,
  when the writer is compiled; so are the event types;
- fields are computed inline (``transforms.field_lines``), nested records included, which are
  encoded straight from their locals instead of through a dict;
- canonical ids hash their leading parts once (``contracts.ids.event_id_after``);
- minor units into a decimal field become the decimal's unscaled bytes without a ``Decimal``;
- the envelope's instants are encoded once per commit time and once per batch.

A writer never decides an error: anything unusual (a value that does not fit the schema, a
required field left empty, no row image) makes it raise, and the caller maps that change
through the reference path, which raises the precise error (or maps it, should the two ever
disagree).

Why every mapping has two implementations, this writer and ``CompiledMapping.map``:

- the reference path is the specification: it goes through the pydantic event models and the
  serializer, so what it writes is valid by the contract's own rules, and its errors carry the
  reason codes and messages operators see on dead letters;
- it is also the fallback, and does real work: the first change per mapping (which teaches the
  writer its wire header), every change the writer refuses (unavailable TOASTed values, empty
  required fields, values that do not fit), and every mapping or schema the generator refuses
  (``compile_writer`` raises ``UnsupportedSchemaError``: ``FastWriter.build`` returns None);
- the writer exists only for speed, and is trusted only because
  ``tests/connectors/cdc/test_fast_paths.py`` holds it, for every shipped mapping, to the same
  bytes and the same refusals as the reference path.

Both are built from one ``MappingPlan`` (``CompiledMapping.plan``), so a mapping is described
once. The source of every writer is kept by ``contracts.codegen``: ``interlock contracts codegen
--show cdc-writer:<mapping>`` prints it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from connectors.cdc.emitter import (
    Const,
    Emitter,
    Encoded,
    Lowered,
    Record,
    field_types,
    non_null,
    register_names,
    value_encoder,
)
from connectors.cdc.envelope import ChangeEvent
from connectors.cdc.eventids import cdc_event_id
from connectors.cdc.mapper import CdcMapper, CompiledMapping, MappingPlan
from connectors.cdc.spec import load_mapping_dir
from connectors.cdc.transforms import FieldPlan, field_lines
from contracts.codec_gen import CodecGenerator, UnsupportedSchemaError
from contracts.codegen import compile_generated
from contracts.errors import ConfigError
from contracts.ids import cached_event_id
from contracts.models import EVENT_MODELS
from contracts.registry import default_registry
from contracts.serde import EventSerializer

__all__ = ["FastWriter", "Writer", "compile_shipped_writers", "compile_writer"]

Writer = Callable[[ChangeEvent, datetime, bytes], tuple[bytes, bytes]]


_MAX_PRECISION = 28
"""Digits the default decimal context keeps: ``Decimal(n).scaleb(-m)`` is exact up to it."""


def _minor_units_bytes(value: Any, factor: int, limit: int) -> bytes:
    """Avro decimal bytes of ``Decimal(int(value)).scaleb(-m)`` (``factor`` = 10**(scale - m)).

    As ``contracts.codec_gen._decimal_bytes`` writes it, precision check included (``limit`` =
    10**precision), without building the Decimal.
    """
    units = int(value)
    if not -limit < units < limit:
        raise ValueError("The decimal precision is bigger than allowed by schema")
    unscaled = units * factor
    return unscaled.to_bytes((unscaled.bit_length() + 8) // 8, "big", signed=True)


def _lowered_minor_units(plan: FieldPlan, schema: Any) -> tuple[int, int] | None:
    """(factor, limit) when ``plan`` turns a column's minor units into this decimal field."""
    spec = plan.spec
    if not (
        spec.column is not None
        and spec.minor_units is not None
        and len(plan.steps) == 1
        and plan.exact is Decimal
        and isinstance(schema, dict)
        and schema.get("type") == "bytes"
        and schema.get("logicalType") == "decimal"
    ):
        return None
    scale, precision = int(schema.get("scale", 0)), int(schema["precision"])
    if spec.minor_units > scale or precision > _MAX_PRECISION:
        return None  # the reference path raises or rounds: leave it to decide
    return 10 ** (scale - spec.minor_units), 10**precision


class _Payload:
    """Writes the lines computing the payload's field values into locals."""

    def __init__(self, mapping: MappingPlan, gen: CodecGenerator, lines: list[str]) -> None:
        self.mapping = mapping
        self.gen = gen
        self.lines = lines
        gen.ns["_minor_units_bytes"] = _minor_units_bytes

    def field(self, plan: FieldPlan, local: str, ftype: Any, lowerable: bool) -> Any:
        """The value of one field: its local, or the local lowered to what Avro writes."""
        lowering = _lowered_minor_units(plan, non_null(self.gen, ftype)) if lowerable else None
        if lowering is not None:
            factor, limit = lowering
            self.lines += [
                f"    {local} = get({plan.spec.column!r})",
                f"    if {local} is not None: "
                f"{local} = _minor_units_bytes({local}, {factor}, {limit})",
            ]
            return Lowered(local, "bytes")
        recurring = self.mapping.recurring_ids(plan)
        self.lines += field_lines(plan, local, self.gen.ns, "    ", recurring_ids=recurring)
        return local

    def values(self, schema: Any) -> dict[str, Any]:
        """Field name -> local, Lowered, Record or Const, of the payload record ``schema``."""
        mapping, gen = self.mapping, self.gen
        types = field_types(gen, schema, "payload")
        values: dict[str, Any] = {n: Const(v) for n, v in mapping.payload_template.items()}
        fixed = {mapping.key, mapping.deleted_field}  # read back as they are
        for i, (name, plan) in enumerate(mapping.fields):
            if name not in types:
                raise UnsupportedSchemaError(f"payload has no field {name!r}")
            values[name] = self.field(plan, f"p{i}", types[name], name not in fixed)
        for j, nested in enumerate(mapping.nested):
            head = nested.head
            if head not in types:
                raise UnsupportedSchemaError(f"payload has no field {head!r}")
            sub_types = field_types(gen, types[head], head)
            sub: dict[str, Any] = {n: Const(v) for n, v in nested.template.items()}
            locals_ = []
            for k, (name, plan) in enumerate(nested.fields):
                if name not in sub_types:
                    raise UnsupportedSchemaError(f"{head} has no field {name!r}")
                locals_.append(f"n{j}_{k}")
                sub[name] = self.field(plan, locals_[-1], sub_types[name], True)
            present = " or ".join(f"{local} is not None" for local in locals_)
            values[head] = Record(sub, present, many=nested.many)
        for name in mapping.required:
            value = values[name]
            if isinstance(value, Const):
                raise UnsupportedSchemaError(f"required field {name!r} is never mapped")
            if isinstance(value, Record):
                missing = None if value.many else f"not ({value.present})"
            else:
                missing = f"{value.local if isinstance(value, Lowered) else value} is None"
            if missing is not None:
                self.lines.append(f"    if {missing}: raise _MissingFieldError({name!r})")
        deleted = mapping.deleted_field
        if deleted is not None:
            current = values[deleted]
            if isinstance(current, Const):
                otherwise = _ns_const(gen.ns, current.value)
            elif isinstance(current, str):
                otherwise = current
            else:
                raise UnsupportedSchemaError(f"deleted_field {deleted!r} is a record")
            self.lines.append(f"    pdel = True if op == 'd' else {otherwise}")
            values[deleted] = "pdel"
        return values


def _ns_const(ns: dict[str, Any], value: Any) -> str:
    name = f"_pc{len(ns)}"
    ns[name] = value
    return name


class _MissingFieldError(Exception):
    """A required field is empty: the reference path raises the precise error."""


def _source(mapping: MappingPlan, lines: list[str], ns: dict[str, Any]) -> None:
    """Lines computing the envelope values of ``CompiledMapping.map`` into locals.

    A truncate (op t) has no event type: the writer raises, the reference path reports it.
    """
    ns["_types"] = mapping.event_types
    lines.append("    event_type = _types[op]")
    if mapping.on_change:
        ns["_on_change"] = mapping.on_change
        lines += [
            "    if op == 'u':",
            "        before = change.before",
            "        if before is not None:",
            "            after_ = after or {}",
            "            for column, changed_type in _on_change:",
            "                if column in before and before.get(column) != after_.get(column):",
            "                    event_type = changed_type",
            "                    break",
        ]
    record_id = " + ':' + ".join(f"str(get({c!r}))" for c in mapping.record_id)
    lines += [
        f"    record_id = {record_id}",
        "    db = change.db",
        "    lsn = change.lsn",
        "    position = f'lsn:{lsn}' if lsn is not None else change.position",
        "    event_id = _cdc_id(f\"{change.schema or db or ''}.{change.table}\", record_id, "
        "position, op)",
        "    tx = change.transaction_key",
        "    correlation = _cached_id('cdc-tx', db or '', tx) if tx else event_id",
        "    ts = change.ts_ms",
        "    if ts is None:",
        "        changed_at, occurred_at = _NO_CHANGED_AT, _ingest_times(ingested)[0]",
        "    else:",
        "        changed_at, occurred_at = _commit_times(ts)",
        "    ingested_at = _ingest_times(ingested)[1]",
    ]


def _bind_times(ns: dict[str, Any]) -> None:
    """The cached encodings of the envelope's instants (``value_encoder`` functions in ns).

    A commit time is shared by the changes of a transaction (and of a snapshot), and the
    ingestion time by a whole batch, so each is encoded once.
    """
    changed, occurred, ingested = ns["_enc_changed"], ns["_enc_occurred"], ns["_enc_ingested"]

    @lru_cache(maxsize=4096)
    def commit_times(ts_ms: int) -> tuple[bytes, bytes]:
        at = datetime.fromtimestamp(ts_ms / 1000, UTC)
        return changed(at), occurred(at)

    @lru_cache(maxsize=16)
    def ingest_times(at: datetime) -> tuple[bytes, bytes]:
        return occurred(at), ingested(at)

    ns.update(_commit_times=commit_times, _ingest_times=ingest_times)
    ns["_NO_CHANGED_AT"] = changed(None)


def compile_writer(mapping: MappingPlan, schema: dict[str, Any], version: int) -> Writer:
    """The writer of the mapping ``mapping`` plans, for the parsed event ``schema`` (contract
    ``version``); its source is kept as ``cdc-writer:<mapping name>`` (``contracts.codegen``).

    ``writer(change, ingested_at, header)`` returns the Kafka key (the payload's key field)
    and value (``header`` + the event body).

    Raises:
        UnsupportedSchemaError: the schema or mapping needs something the writer cannot do.
    """
    gen = CodecGenerator()
    ns = gen.ns
    ns.update(_cdc_id=cdc_event_id, _cached_id=cached_event_id)
    ns["_MissingFieldError"] = _MissingFieldError
    lines = [
        "def write(change, ingested, header):",
        "    out = bytearray(header)",
        "    if change.unavailable: raise _MissingFieldError('unavailable values')",
        "    after = change.after",
        "    row = after if after is not None else change.before",
        "    get = row.get",
        "    op = change.op",
    ]
    root = gen.resolve(schema)
    register_names(gen, root)
    types = field_types(gen, root, "event")
    try:
        times = [
            value_encoder(gen, ftype, name)
            for name, ftype in (
                ("_enc_changed", field_types(gen, types["source"], "source")["changed_at"]),
                ("_enc_occurred", types["occurred_at"]),
                ("_enc_ingested", types["ingested_at"]),
                ("_enc_event_type", types["event_type"]),
            )
        ]
        payload_type = types["payload"]
    except KeyError as exc:
        raise UnsupportedSchemaError(f"no envelope field {exc}") from None
    payload = _Payload(mapping, gen, lines).values(payload_type)
    _source(mapping, lines, ns)
    key = payload[mapping.key]
    if isinstance(key, Const):
        key_expr = _ns_const(ns, key.value)
    elif isinstance(key, str):
        key_expr = key
    else:
        raise UnsupportedSchemaError(f"key field {mapping.key!r} is a record")
    envelope = {
        "event_id": "event_id",
        "event_type": Encoded("_EVENT_TYPES[event_type]"),
        "entity": Const(mapping.entity),
        "schema_version": Const(version),
        "source": Record(
            {
                "system": Const("erp"),
                "vendor": Const(mapping.vendor),
                "instance": "db",
                "record_id": "record_id",
                "changed_at": Encoded("changed_at"),
            }
        ),
        "correlation_id": "correlation",
        "causation_id": Const(None),
        "occurred_at": Encoded("occurred_at"),
        "ingested_at": Encoded("ingested_at"),
        "origin": Const(None),
        "changed_fields": Const(list(mapping.changed_fields)),
        "payload": Record(payload),
    }
    emitter = Emitter(gen)
    emitter.record(root, envelope, "    ")
    emitter.flush("    ")
    lines += emitter.lines
    lines.append(f"    return str({key_expr}).encode(), bytes(out)")
    source = "\n\n".join([*gen.enc_src, *emitter.const_fns, *times, "\n".join(lines)]) + "\n"
    compile_generated(f"cdc-writer:{mapping.name}", source, ns)
    for i in range(len(emitter.const_fns)):
        ns[f"_K{i}"] = bytes(ns[f"_k{i}"](bytearray()))
    try:
        _bind_times(ns)
    except (TypeError, ValueError, AttributeError) as exc:  # changed_at is not nullable
        raise UnsupportedSchemaError(f"source.changed_at: {exc}") from None
    # Every event type the mapping can give, encoded once.
    event_types = {*mapping.event_types.values(), *(t for _column, t in mapping.on_change)}
    ns["_EVENT_TYPES"] = {t: ns["_enc_event_type"](t) for t in event_types}
    write: Writer = ns["write"]
    return write


def _mirrors_models(serializer: EventSerializer) -> bool:
    """True when the serializer writes the contract version the mappings are compiled against."""
    try:
        mirrored = default_registry().get(
            serializer.entity, EVENT_MODELS[serializer.entity].SCHEMA_VERSION
        )
    except (ConfigError, KeyError):
        return False
    return mirrored.fingerprint == serializer.contract.fingerprint


def compile_shipped_writers() -> list[str]:
    """Generate the payload builders and writers of the shipped mappings, for the shipped
    contracts (what ``interlock contracts codegen`` shows); no broker needed.

    Returns:
        The names of the writers (``cdc-writer:<mapping>``); a mapping the generator refuses
        has none.
    """
    names = []
    registry = default_registry()
    for mapping in CdcMapper(load_mapping_dir()).mappings:
        contract = registry.get(mapping.entity, EVENT_MODELS[mapping.entity].SCHEMA_VERSION)
        try:
            compile_writer(mapping.plan, contract.parsed, contract.version)
        except UnsupportedSchemaError:
            continue
        names.append(f"cdc-writer:{mapping.name}")
    return names


class FastWriter:
    """One mapping's writer bound to the serializer of its entity: change -> (key, value).

    ``header`` (single-object or Confluent prefix) is learned from the first value the
    reference path writes to the mapping's topic (``learn``); until then it is None.
    """

    __slots__ = ("_write", "header", "mapping", "topic")

    def __init__(self, mapping: CompiledMapping, write: Writer) -> None:
        self.mapping = mapping
        self.topic = mapping.topic
        self._write = write
        self.header: bytes | None = None

    @classmethod
    def build(cls, mapping: CompiledMapping, serializer: Any) -> FastWriter | None:
        """The writer of ``mapping``, or None when only the reference path can encode it."""
        if not isinstance(serializer, EventSerializer) or serializer.entity != mapping.entity:
            return None
        if not _mirrors_models(serializer):
            return None
        contract = serializer.contract
        try:
            write = compile_writer(mapping.plan, contract.parsed, contract.version)
        except UnsupportedSchemaError:
            return None
        return cls(mapping, write)

    def learn(self, value: bytes, header_size: int) -> None:
        """Remember the header of a value the reference path wrote."""
        self.header = bytes(value[:header_size])

    @property
    def write(self) -> Writer:
        """``write(change, ingested_at, header) -> (key, value)``; raises on anything unusual."""
        return self._write

    def __call__(self, change: ChangeEvent, ingested_at: datetime) -> tuple[bytes, bytes]:
        """(key, value) of ``change``; raises on anything the reference path must decide."""
        assert self.header is not None
        return self._write(change, ingested_at, self.header)
