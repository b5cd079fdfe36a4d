"""Per-mapping Avro writers: a Debezium row image straight to canonical event bytes.

The reference path builds a payload dict, the event models, then encodes them
(``CdcMapper.map`` + ``contracts.make_serializer``): about twice the work of the event itself.
The writer generated here computes the same values into local variables and appends each
field's encoding as it goes, using the lines ``contracts.codec_gen.CodecGenerator`` emits for
the contract's own schema, so its bytes are the codec's bytes (a property test holds every
shipped mapping to the reference path). Runs of constant fields (entity, schema version,
unmapped optional fields) are encoded once, when the writer is compiled.

A writer never decides an error: anything unusual (a value that does not fit the schema, a
required field left empty, no row image) makes it raise, and the caller maps that change
through the reference path, which raises the precise error (or maps it, should the two ever
disagree).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from connectors.cdc.envelope import ChangeEvent
from connectors.cdc.eventids import cached_event_id, cdc_event_id
from connectors.cdc.mapper import CompiledMapping
from contracts.codec_gen import CodecGenerator, UnsupportedSchemaError
from contracts.errors import ConfigError
from contracts.models import EVENT_MODELS
from contracts.registry import default_registry
from contracts.serde import EventSerializer

__all__ = ["FastWriter", "compile_writer"]

Writer = Callable[[ChangeEvent, datetime, bytearray], Any]


@lru_cache(maxsize=4096)
def _from_ms(ts_ms: int) -> datetime:
    """``source.changed_at`` of a commit time; commit times repeat within a transaction."""
    return datetime.fromtimestamp(ts_ms / 1000, UTC)


class _Const:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Record:
    __slots__ = ("values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values


class _Emitter:
    """Writes the lines encoding one record whose field values are expressions or constants."""

    def __init__(self, gen: CodecGenerator) -> None:
        self.gen = gen
        self.lines: list[str] = []
        self.pending: list[tuple[Any, Any]] = []
        self.const_fns: list[str] = []

    def flush(self, ind: str) -> None:
        """Encode the pending constant fields once (at compile time) as one bytes literal."""
        if not self.pending:
            return
        index = len(self.const_fns)
        body = [f"def _k{index}(out):"]
        for schema, value in self.pending:
            v = self.gen.var()
            body.append(f"    {v} = {self.gen.const(value)}")
            body.extend(self.gen.encode(schema, v, "    "))
        body.append("    return out")
        self.const_fns.append("\n".join(body))
        self.lines.append(f"{ind}out += _K{index}")
        self.pending = []

    def record(self, schema: dict[str, Any], values: dict[str, Any], ind: str) -> None:
        for field in schema["fields"]:
            name, ftype = field["name"], field["type"]
            if name in values:
                value = values[name]
            elif "default" in field:
                value = _Const(field["default"])
            elif isinstance(ftype, list) and "null" in ftype:
                value = _Const(None)
            else:
                raise UnsupportedSchemaError(f"no value for field {name!r}")
            if isinstance(value, _Const):
                self.pending.append((ftype, value.value))
                continue
            if isinstance(value, _Record):
                resolved = self.gen.resolve(ftype)
                if isinstance(resolved, list):
                    null_at, other = self.gen.union_parts(resolved)
                    # The value is never null: the branch index, written as Avro writes it.
                    self.pending.append(("long", 1 - null_at))
                    resolved = self.gen.resolve(other)
                if not (isinstance(resolved, dict) and resolved.get("type") == "record"):
                    raise UnsupportedSchemaError(f"field {name!r} is not a record")
                self.record(resolved, value.values, ind)
                continue
            self.flush(ind)
            self.lines.extend(self.gen.encode(ftype, value, ind))


def _payload_values(
    mapping: CompiledMapping, lines: list[str], ns: dict[str, Any]
) -> dict[str, Any]:
    """Lines computing every payload field into a local; field name -> local name or _Const."""
    values: dict[str, Any] = {name: _Const(v) for name, v in mapping._payload_template.items()}
    for i, (name, fn) in enumerate(mapping._flat):
        column = mapping._plain.get(name)
        local = f"p{i}"
        if column is not None:
            lines += [
                f"    {local} = get({column!r})",
                f"    if {local} is not None and type({local}) is not str: {local} = str({local})",
            ]
        else:
            ns[f"_f{i}"] = fn
            lines.append(f"    {local} = _f{i}(row)")
        values[name] = local
    for j, (head, fns) in enumerate(mapping._nested):
        ns[f"_t{j}"] = mapping._nested_templates[head]
        part = f"part{j}"
        lines.append(f"    {part} = None")
        for k, (sub, fn) in enumerate(fns):
            ns[f"_n{j}_{k}"] = fn
            lines += [
                f"    v = _n{j}_{k}(row)",
                "    if v is not None:",
                f"        if {part} is None: {part} = _t{j}.copy()",
                f"        {part}[{sub!r}] = v",
            ]
        if head in mapping._lists:
            lines.append(f"    {part} = [] if {part} is None else [{part}]")
        values[head] = part
    for name in mapping._required:
        local = values[name]
        if isinstance(local, _Const):
            raise UnsupportedSchemaError(f"required field {name!r} is never mapped")
        lines.append(f"    if {local} is None: raise _MissingFieldError({name!r})")
    deleted = mapping.spec.deleted_field
    if deleted is not None:
        current = values[deleted]
        otherwise = _ns_const(ns, current.value) if isinstance(current, _Const) else current
        lines.append(f"    pdel = True if op == 'd' else {otherwise}")
        values[deleted] = "pdel"
    return values


def _ns_const(ns: dict[str, Any], value: Any) -> str:
    name = f"_pc{len(ns)}"
    ns[name] = value
    return name


class _MissingFieldError(Exception):
    """A required field is empty: the reference path raises the precise error."""


def _source(mapping: CompiledMapping, lines: list[str], ns: dict[str, Any]) -> None:
    """Lines computing the envelope values of ``CompiledMapping.map`` into locals."""
    ns["_types"] = mapping._types
    lines.append("    event_type = _types[op]")
    if mapping._on_change:
        ns["_on_change"] = mapping._on_change
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
    record_id = " + ':' + ".join(f"str(get({c!r}))" for c in mapping._record_cols)
    lines += [
        f"    record_id = {record_id}",
        "    db = change.db",
        "    event_id = _cdc_id(f\"{change.schema or db or ''}.{change.table}\", record_id, "
        "change.position, op)",
        "    tx = change.transaction_id or (",
        "        str(change.tx_id) if change.tx_id is not None else None)",
        "    correlation = _cached_id('cdc-tx', db or '', tx) if tx else event_id",
        "    ts = change.ts_ms",
        "    changed_at = _from_ms(ts) if ts is not None else None",
        "    occurred = changed_at or ingested",
    ]


def compile_writer(mapping: CompiledMapping, schema: dict[str, Any], version: int) -> Writer:
    """The writer of ``mapping`` for the parsed event ``schema`` (contract ``version``).

    ``writer(change, ingested_at, out)`` appends the event body to ``out`` and returns the
    payload's key field value.

    Raises:
        UnsupportedSchemaError: the schema or mapping needs something the writer cannot do.
    """
    gen = CodecGenerator()
    ns = gen.ns
    ns.update(_cdc_id=cdc_event_id, _cached_id=cached_event_id, _from_ms=_from_ms)
    ns["_MissingFieldError"] = _MissingFieldError
    lines = [
        "def write(change, ingested, out):",
        "    after = change.after",
        "    row = after if after is not None else change.before",
        "    get = row.get",
        "    op = change.op",
    ]
    payload = _payload_values(mapping, lines, ns)
    _source(mapping, lines, ns)
    key = payload[mapping._key]
    key_expr = _ns_const(ns, key.value) if isinstance(key, _Const) else key
    envelope = {
        "event_id": "event_id",
        "event_type": "event_type",
        "entity": _Const(mapping._entity),
        "schema_version": _Const(version),
        "source": _Record(
            {
                "system": _Const("erp"),
                "vendor": _Const(mapping._vendor),
                "instance": "db",
                "record_id": "record_id",
                "changed_at": "changed_at",
            }
        ),
        "correlation_id": "correlation",
        "causation_id": _Const(None),
        "occurred_at": "occurred",
        "ingested_at": "ingested",
        "origin": _Const(None),
        "changed_fields": _Const(list(mapping._changed)),
        "payload": _Record(payload),
    }
    root = gen.resolve(schema)
    emitter = _Emitter(gen)
    emitter.record(root, envelope, "    ")
    emitter.flush("    ")
    lines += emitter.lines
    lines.append(f"    return {key_expr}")
    source = "\n\n".join([*gen.enc_src, *emitter.const_fns, "\n".join(lines)]) + "\n"
    exec(compile(source, f"<cdc writer {mapping.name}>", "exec"), ns)  # noqa: S102
    for i in range(len(emitter.const_fns)):
        ns[f"_K{i}"] = bytes(ns[f"_k{i}"](bytearray()))
    write: Writer = ns["write"]
    write.source = source  # type: ignore[attr-defined]
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


class FastWriter:
    """One mapping's writer bound to the serializer of its entity: change -> (key, value).

    ``header`` (single-object or Confluent prefix) is learned from the first value the
    reference path writes to the mapping's topic (``learn``); until then ``ready`` is False.
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
            write = compile_writer(mapping, contract.parsed, contract.version)
        except UnsupportedSchemaError:
            return None
        return cls(mapping, write)

    def learn(self, value: bytes, header_size: int) -> None:
        """Remember the header of a value the reference path wrote."""
        self.header = bytes(value[:header_size])

    def __call__(self, change: ChangeEvent, ingested_at: datetime) -> tuple[bytes, bytes]:
        """(key, value) of ``change``; raises on anything the reference path must decide."""
        assert self.header is not None
        out = bytearray(self.header)
        key = self._write(change, ingested_at, out)
        return str(key).encode(), bytes(out)
