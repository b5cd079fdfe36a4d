"""Debezium change envelopes, decoded from every form Debezium users configure, to one shape.

Three value forms are recognised per message, by looking at the bytes:

- Confluent Avro (``AvroConverter``): magic byte ``0x00`` + 4-byte schema id; the writer schema
  is fetched once per id from the Schema Registry client passed in.
- ``JsonConverter`` with ``schemas.enable=true``: ``{"schema": ..., "payload": ...}``; values
  whose meaning only the schema gives are read with it (``connectors.cdc.logical``): Connect
  ``Decimal`` (base64 bytes + the schema's scale), ``VariableScaleDecimal`` and the date/time
  types of every ``time.precision.mode``.
- ``JsonConverter`` with ``schemas.enable=false``: the payload alone (also what the built-in
  Postgres source writes).

Records that are not row changes (the transaction metadata topic, heartbeats, schema-change
events) decode to a ``ControlRecord``, which the stage skips and counts. Columns whose value
Debezium did not have (an unchanged TOASTed column: the ``unavailable.value.placeholder``) are
listed in ``ChangeEvent.unavailable``, so that they are never mapped as data.

JSON is parsed by orjson; documents it refuses but the ``json`` module accepts (NaN, lone
surrogates, numbers beyond a double's range) are parsed by ``json``. Numbers stay ``int`` and
``float`` as ``json`` reads them, except an integer beyond 64 bits, which orjson reads as a
float (no contract field holds one: ids and minor units are 64-bit).

A ``None`` value is a tombstone (Debezium writes one after each delete for log compaction).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from io import BytesIO
from typing import Any, Literal, Protocol, cast

import orjson
from fastavro import parse_schema, schemaless_reader

from connectors.cdc.logical import apply_logical_types, avro_logical_fields, logical_fields
from contracts.codegen import generated_function
from contracts.errors import DecodeError, Reason, SchemaUnknownError

__all__ = [
    "OPS",
    "UNAVAILABLE_PLACEHOLDER",
    "ChangeEvent",
    "ControlKind",
    "ControlRecord",
    "EnvelopeDecoder",
    "Op",
    "Placeholder",
    "SchemaRegistryLike",
    "change_from_payload",
]

Op = Literal["c", "u", "d", "r", "t"]
OPS: frozenset[str] = frozenset(("c", "u", "d", "r", "t"))
UNAVAILABLE_PLACEHOLDER = "__debezium_unavailable_value"
"""Debezium's default ``unavailable.value.placeholder`` (an unchanged TOASTed column)."""
ControlKind = Literal["transaction", "heartbeat", "schema_change"]
_NONE: frozenset[str] = frozenset()
_fast_loads = orjson.loads
"""JSON decoding of the hot path: several times faster than ``json``, the same values for
valid JSON but integers beyond 64 bits (floats here, ints in ``json``)."""


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
        log_position: the change's place in the log of a connector without an LSN (MySQL
            binlog file/pos/row, SQL Server and Db2 commit/change LSN and serial number,
            Oracle SCN/RS_ID/SSN), unique per change and the same when it is delivered again.
        source_tx: the transaction id the source block carries, where it is not ``txId``
            (MySQL ``gtid``, SQL Server and Db2 ``commit_lsn``, Oracle's ``txId``).
        unavailable: columns of the row image that hold the unavailable-value placeholder:
            values Debezium did not have (not changed), never data.
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
    log_position: str | None = None
    source_tx: str | None = None
    unavailable: frozenset[str] = _NONE

    @property
    def row(self) -> dict[str, Any] | None:
        """The row image that describes the record: after, or before for a delete."""
        return self.after if self.after is not None else self.before

    @property
    def position(self) -> str:
        """Where the change sits in the source log, unique per change: the LSN (Postgres), the
        connector's own position (``log_position``), else commit time and transaction."""
        if self.lsn is not None:
            return f"lsn:{self.lsn}"
        if self.log_position is not None:
            return self.log_position
        return f"ts:{self.ts_ms}:tx:{self.tx_id if self.tx_id is not None else self.transaction_id}"

    @property
    def transaction_key(self) -> str | None:
        """The source transaction, from the source block whenever it names one.

        ``transaction.id`` (present only with ``provide.transaction.metadata``) is the last
        resort: for Postgres it is ``txId:LSN``, so preferring ``txId`` gives a change the same
        correlation id with the metadata on and off.
        """
        if self.tx_id is not None:
            return str(self.tx_id)
        return self.source_tx or self.transaction_id


@dataclass(frozen=True, slots=True)
class ControlRecord:
    """A Debezium record that is not a row change: nothing to map, skipped and counted.

    Attributes:
        kind: ``transaction`` (BEGIN/END on ``<prefix>.transaction``), ``heartbeat``
            (``__debezium-heartbeat.<prefix>``) or ``schema_change`` (DDL on ``<prefix>``).
        topic: the topic it was read from.
    """

    kind: ControlKind
    topic: str


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
    source = "\n".join(lines) + "\n"
    return generated_function(f"dataclass-factory:{cls.__qualname__}", source, ns, "make")


_new_change: Callable[..., ChangeEvent] = _slot_setting_factory(ChangeEvent)
"""``ChangeEvent(op, before, after, table, schema, db, ts_ms, lsn, tx_id, snapshot,
transaction_id, transaction_order, log_position, source_tx, unavailable)``, faster."""

_POSITION_FIELDS: dict[str, tuple[str, ...]] = {
    "mysql": ("file", "pos", "row"),
    "mariadb": ("file", "pos", "row"),
    "sqlserver": ("commit_lsn", "change_lsn", "event_serial_no"),
    "db2": ("commit_lsn", "change_lsn"),
    "oracle": ("scn", "commit_scn", "rs_id", "ssn", "redo_thread", "row_id", "lcr_position"),
}
"""Per connector, the ``source`` fields that together place one change in the source log."""
_TX_FIELD = {
    "mysql": "gtid",
    "mariadb": "gtid",
    "sqlserver": "commit_lsn",
    "db2": "commit_lsn",
    "oracle": "txId",
}


def _log_position(source: dict[str, Any]) -> tuple[str | None, str | None]:
    """(position, transaction) of a change of a connector without ``source.lsn``.

    A MySQL ``ts_ms`` has millisecond resolution and outside a transaction no id: two changes
    of a row in one millisecond would share ``ts:<ts_ms>:tx:None``. The binlog file, the
    event's position and the row within it tell them apart, and stay the same when the
    connector delivers the change again.
    """
    connector = str(source.get("connector") or "")
    fields = _POSITION_FIELDS.get(connector)
    tx_field = _TX_FIELD.get(connector)
    tx = source.get(tx_field) if tx_field else None
    tx_text = None if tx is None or tx == "" else str(tx)
    if fields is None:
        return None, tx_text
    values = [source.get(f) for f in fields]
    if all(v is None for v in values[:2]):
        return None, tx_text
    return connector + ":" + ":".join("" if v is None else str(v) for v in values), tx_text


class Placeholder:
    """Debezium's unavailable-value placeholder in every form it takes in a row: text, its
    bytes (Avro), its bytes in base64 (JSON), a one-element array."""

    __slots__ = ("forms", "hashable")

    def __init__(self, text: str = UNAVAILABLE_PLACEHOLDER) -> None:
        raw = text.encode()
        self.hashable = frozenset((text, base64.b64encode(raw).decode(), raw))
        self.forms: tuple[Any, ...] = (*self.hashable, [text])

    def matches(self, value: Any) -> bool:
        """True when ``value`` is the placeholder in one of its forms."""
        return any(value == form for form in self.forms)

    def columns(self, row: dict[str, Any]) -> frozenset[str]:
        """The columns of ``row`` that hold the placeholder; runs per change, so the usual
        answer (none) is found by one set operation."""
        try:
            if self.hashable.isdisjoint(row.values()):
                return _NONE
        except TypeError:  # a value that cannot be hashed (an array, a struct): compare all
            pass
        return frozenset(k for k, v in row.items() if self.matches(v))


_PLACEHOLDER = Placeholder()


def _control(payload: Any, topic: str) -> ControlRecord | None:
    """The ``ControlRecord`` of a payload that is not a change envelope, if it is one."""
    if topic.startswith("__debezium-heartbeat"):
        return ControlRecord("heartbeat", topic)
    if not isinstance(payload, dict) or "op" in payload:
        return None
    if payload.get("status") in ("BEGIN", "END") and "id" in payload:
        return ControlRecord("transaction", topic)
    if "ddl" in payload or "tableChanges" in payload or "databaseName" in payload:
        return ControlRecord("schema_change", topic)
    if set(payload) == {"ts_ms"}:
        return ControlRecord("heartbeat", topic)
    return None


def _int_or_none(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def change_from_payload(
    payload: Any, topic: str, placeholder: Placeholder = _PLACEHOLDER
) -> ChangeEvent | ControlRecord:
    """The ``ChangeEvent`` of one decoded Debezium payload (or the ``ControlRecord`` it is).

    Args:
        placeholder: the connector's unavailable-value placeholder.

    Raises:
        DecodeError: the payload is neither a Debezium change envelope nor a control record.
    """
    if not isinstance(payload, dict):
        control = _control(payload, topic)
        if control is not None:
            return control
        raise DecodeError(f"Debezium envelope on {topic} is {type(payload).__name__}, not object")
    op = payload.get("op")
    if op not in OPS:
        control = _control(payload, topic)
        if control is not None:
            return control
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
    if not ts:  # missing, or 0 (some snapshots): not a commit time
        ts = payload.get("ts_ms") or None
    lsn = source.get("lsn")
    tx_id = source.get("txId")
    order = transaction.get("total_order")
    position = source_tx = None
    if lsn is None:
        position, source_tx = _log_position(source)
        if source_tx is not None:
            tx_id = None  # Oracle's txId is text: the transaction is source_tx
    row = after if after is not None else before
    unavailable = placeholder.columns(row) if row else _NONE
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
        position,
        source_tx,
        unavailable,
    )


class EnvelopeDecoder:
    """Decodes Debezium record values (any of the three forms) to ``ChangeEvent``.

    Args:
        registry: Schema Registry client for Confluent Avro values; without one, Avro values
            fail with ``SchemaUnknownError``.
        unavailable_placeholder: the connector's ``unavailable.value.placeholder``.
    """

    def __init__(
        self,
        registry: SchemaRegistryLike | None = None,
        *,
        unavailable_placeholder: str = UNAVAILABLE_PLACEHOLDER,
    ) -> None:
        self._registry = registry
        self._writers: dict[int, Any] = {}
        self._avro_logical: dict[int, dict[str, dict[str, Any]]] = {}
        self._loads = json.JSONDecoder().decode
        self._placeholder = Placeholder(unavailable_placeholder)

    def decode(self, value: bytes | None, topic: str) -> ChangeEvent | ControlRecord | None:
        """The change in ``value``; a ``ControlRecord`` for a record that is not a change;
        ``None`` for a tombstone.

        Raises:
            DecodeError: not JSON/Avro, or not a Debezium envelope.
            SchemaUnknownError: an Avro schema id the registry does not know.
        """
        try:
            return self._decode(value, topic)
        except (
            RecursionError,
            ArithmeticError,
            LookupError,
            TypeError,
            ValueError,
            AttributeError,
        ) as exc:
            # A value shaped unlike any envelope (a source block that is a list, 1e999 as a
            # timestamp, JSON nested past the parser's recursion): a decode failure, not a bug.
            raise DecodeError(f"value on {topic} is not a Debezium change: {exc!r}") from exc

    def _decode(self, value: bytes | None, topic: str) -> ChangeEvent | ControlRecord | None:
        if value is None:
            return None
        placeholder = self._placeholder
        if value[:1] == b"\x00":
            payload, schema_id = self._avro(value, topic)
            logical = self._avro_logical.get(schema_id)
            if logical and isinstance(payload, dict):
                for image, converters in logical.items():
                    apply_logical_types(payload.get(image), converters, placeholder.matches)
            return change_from_payload(payload, topic, placeholder)
        try:
            doc = _fast_loads(value)
        except orjson.JSONDecodeError:
            # What orjson refuses but the json module reads (NaN, numbers beyond a double's
            # range, lone surrogates) keeps its old meaning; what neither reads fails with
            # json's message.
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
                    converters = logical_fields(schema, image)
                    if converters:
                        apply_logical_types(payload.get(image), converters, placeholder.matches)
            return change_from_payload(payload, topic, placeholder)
        return change_from_payload(doc, topic, placeholder)

    def _avro(self, value: bytes, topic: str) -> tuple[dict[str, Any], int]:
        if len(value) < 5:
            raise DecodeError(f"truncated Confluent Avro header on {topic}")
        schema_id = int.from_bytes(value[1:5], "big")
        writer = self._writers.get(schema_id)
        if writer is None:
            writer = self._writer(schema_id)
        buf = BytesIO(value)
        buf.seek(5)
        try:
            return cast(dict[str, Any], schemaless_reader(buf, writer, None)), schema_id
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
        self._avro_logical[schema_id] = avro_logical_fields(json.loads(schema.schema_str))
        return writer
