"""Debezium change envelopes, decoded from every form Debezium users configure, to one shape.

Three value forms are recognised per message, by looking at the bytes:

- Confluent Avro (``AvroConverter``): magic byte ``0x00`` + 4-byte schema id; the writer schema
  is fetched once per id from the Schema Registry client passed in.
- ``JsonConverter`` with ``schemas.enable=true``: ``{"schema": ..., "payload": ...}``; Connect
  ``Decimal`` columns (base64 bytes) are turned into ``Decimal`` using the schema's scale.
- ``JsonConverter`` with ``schemas.enable=false``: the payload alone (also what the built-in
  Postgres source writes).

JSON is parsed by orjson; documents it refuses but the ``json`` module accepts are parsed by
``json``, so numbers stay ``int``/``float`` exactly as before.

A ``None`` value is a tombstone (Debezium writes one after each delete for log compaction).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from decimal import Decimal
from io import BytesIO
from typing import Any, Literal, Protocol, cast

import orjson
from fastavro import parse_schema, schemaless_reader

from contracts.errors import DecodeError, Reason, SchemaUnknownError

__all__ = [
    "OPS",
    "ChangeEvent",
    "EnvelopeDecoder",
    "Op",
    "SchemaRegistryLike",
    "change_from_payload",
]

Op = Literal["c", "u", "d", "r", "t"]
OPS: frozenset[str] = frozenset(("c", "u", "d", "r", "t"))
_DECIMAL = "org.apache.kafka.connect.data.Decimal"
_fast_loads = orjson.loads
"""JSON decoding of the hot path: several times faster than ``json``, same values for valid JSON."""


class SchemaRegistryLike(Protocol):
    """The part of ``SchemaRegistryClient`` the decoder needs (``mock://`` clients qualify)."""

    def get_schema(self, schema_id: int, *args: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One row change as Debezium describes it, independent of the wire form it came in.

    Attributes:
        op: c (create), u (update), d (delete), r (snapshot read), t (truncate).
        before: the row before the change (updates and deletes, if the table logs it).
        after: the row after the change (creates, updates, snapshot reads).
        table: source table name (``source.table``, else the topic's last segment).
        schema: source schema (``source.schema``), if given.
        db: source database (``source.db``), if given.
        ts_ms: when the database committed the change (``source.ts_ms``), else the envelope's.
        lsn: the change's log position (``source.lsn``, Postgres), if given.
        tx_id: the source transaction id (``source.txId``), if given.
        snapshot: True for rows read by a snapshot (``source.snapshot`` true/last/incremental).
        transaction_id: ``transaction.id`` when the connector emits transaction metadata.
        transaction_order: ``transaction.total_order``, if given.
    """

    op: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    table: str
    schema: str | None = None
    db: str | None = None
    ts_ms: int | None = None
    lsn: int | None = None
    tx_id: int | None = None
    snapshot: bool = False
    transaction_id: str | None = None
    transaction_order: int | None = None

    @property
    def row(self) -> dict[str, Any] | None:
        """The row image that describes the record: after, or before for a delete."""
        return self.after if self.after is not None else self.before

    @property
    def position(self) -> str:
        """Where the change sits in the source log: the LSN, else commit time and transaction."""
        if self.lsn is not None:
            return f"lsn:{self.lsn}"
        return f"ts:{self.ts_ms}:tx:{self.tx_id if self.tx_id is not None else self.transaction_id}"


def _slot_setting_factory(cls: type) -> Callable[..., Any]:
    """``cls(*values)`` of a frozen slots dataclass, built by setting each slot directly.

    The ``__init__`` of a frozen dataclass calls ``object.__setattr__`` per field, which costs
    about as much as decoding the rest of a change; this makes the same object for half that.
    """
    names = [f.name for f in fields(cls)]
    ns: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = [f"def make({', '.join(names)}):", "    obj = _new(_cls)"]
    for name in names:
        ns[f"_set_{name}"] = getattr(cls, name).__set__
        lines.append(f"    _set_{name}(obj, {name})")
    lines.append("    return obj")
    exec("\n".join(lines), ns)  # noqa: S102
    return cast(Callable[..., Any], ns["make"])


_new_change: Callable[..., ChangeEvent] = _slot_setting_factory(ChangeEvent)
"""``ChangeEvent(op, before, after, table, schema, db, ts_ms, lsn, tx_id, snapshot,
transaction_id, transaction_order)``, faster."""


def _int_or_none(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def change_from_payload(payload: Any, topic: str) -> ChangeEvent:
    """The ``ChangeEvent`` of one decoded Debezium payload.

    Raises:
        DecodeError: the payload is not a Debezium change envelope.
    """
    if not isinstance(payload, dict):
        raise DecodeError(f"Debezium envelope on {topic} is {type(payload).__name__}, not object")
    op = payload.get("op")
    if op not in OPS:
        raise DecodeError(f"Debezium envelope on {topic} has no valid op (got {op!r})")
    source = payload.get("source") or {}
    transaction = payload.get("transaction") or {}
    table = source.get("table") or topic.rsplit(".", 1)[-1]
    snap = source.get("snapshot")
    before = payload.get("before")
    after = payload.get("after")
    if (op in ("c", "r") and after is None) or (op == "d" and before is None):
        raise DecodeError(f"Debezium op {op!r} on {topic} lacks its row image")
    ts = source.get("ts_ms")
    if ts is None:
        ts = payload.get("ts_ms")
    lsn = source.get("lsn")
    tx_id = source.get("txId")
    order = transaction.get("total_order")
    # Integers (the usual case) are passed as they are, which is what _int_or_none returns.
    return _new_change(
        op,
        before,
        after,
        table if type(table) is str else str(table),
        source.get("schema"),
        source.get("db"),
        ts if type(ts) is int else _int_or_none(ts),
        lsn if type(lsn) is int else _int_or_none(lsn),
        tx_id if type(tx_id) is int else _int_or_none(tx_id),
        snap not in (None, False, "false"),
        transaction.get("id"),
        order if type(order) is int else _int_or_none(order),
    )


def _decimal_fields(schema: dict[str, Any], image: str) -> dict[str, int]:
    """Column -> scale of Connect ``Decimal`` columns in the ``before``/``after`` struct schema."""
    for field in schema.get("fields") or ():
        if field.get("field") == image:
            return {
                col["field"]: int((col.get("parameters") or {}).get("scale", 0))
                for col in field.get("fields") or ()
                if col.get("name") == _DECIMAL
            }
    return {}


def _apply_decimals(row: dict[str, Any] | None, scales: dict[str, int]) -> None:
    if not row:
        return
    for column, scale in scales.items():
        raw = row.get(column)
        if isinstance(raw, str):
            unscaled = int.from_bytes(base64.b64decode(raw), "big", signed=True)
            row[column] = Decimal(unscaled).scaleb(-scale)


class EnvelopeDecoder:
    """Decodes Debezium record values (any of the three forms) to ``ChangeEvent``.

    Args:
        registry: Schema Registry client for Confluent Avro values; without one, Avro values
            fail with ``SchemaUnknownError``.
    """

    def __init__(self, registry: SchemaRegistryLike | None = None) -> None:
        self._registry = registry
        self._writers: dict[int, Any] = {}
        self._loads = json.JSONDecoder().decode

    def decode(self, value: bytes | None, topic: str) -> ChangeEvent | None:
        """The change in ``value``; ``None`` for a tombstone.

        Raises:
            DecodeError: not JSON/Avro, or not a Debezium envelope.
            SchemaUnknownError: an Avro schema id the registry does not know.
        """
        if value is None:
            return None
        if value[:1] == b"\x00":
            return change_from_payload(self._avro(value, topic), topic)
        try:
            doc = _fast_loads(value)
        except orjson.JSONDecodeError:
            # What orjson refuses but the json module reads (NaN, integers beyond 64 bits, lone
            # surrogates) keeps its old meaning; what neither reads fails with json's message.
            try:
                doc = self._loads(value.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise DecodeError(f"value on {topic} is neither JSON nor Avro: {exc}") from exc
        if isinstance(doc, dict) and "payload" in doc and "schema" in doc:
            payload = doc["payload"]
            if payload is None:
                return None
            schema = doc["schema"] or {}
            if isinstance(payload, dict):
                for image in ("before", "after"):
                    scales = _decimal_fields(schema, image)
                    if scales:
                        _apply_decimals(payload.get(image), scales)
            return change_from_payload(payload, topic)
        return change_from_payload(doc, topic)

    def _avro(self, value: bytes, topic: str) -> dict[str, Any]:
        if len(value) < 5:
            raise DecodeError(f"truncated Confluent Avro header on {topic}")
        schema_id = int.from_bytes(value[1:5], "big")
        writer = self._writers.get(schema_id)
        if writer is None:
            writer = self._writer(schema_id)
        buf = BytesIO(value)
        buf.seek(5)
        try:
            return cast(dict[str, Any], schemaless_reader(buf, writer, None))
        except Exception as exc:
            raise DecodeError(f"cannot decode Avro change on {topic}: {exc!r}") from exc

    def _writer(self, schema_id: int) -> Any:
        if self._registry is None:
            raise SchemaUnknownError(
                f"Avro schema id {schema_id} needs a schema registry, none is configured"
            )
        try:
            schema = self._registry.get_schema(schema_id)
            writer = parse_schema(json.loads(schema.schema_str), _force=True)
        except Exception as exc:
            raise SchemaUnknownError(
                f"Avro schema id {schema_id} is not usable: {exc}", reason=Reason.SCHEMA_UNKNOWN
            ) from exc
        self._writers[schema_id] = writer
        return writer
