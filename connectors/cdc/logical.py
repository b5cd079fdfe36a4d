"""Debezium values whose meaning only their schema gives, read into Python values.

Connect writes some column types as plain numbers or bytes and names their meaning only in
the schema: a ``Decimal`` is base64 bytes whose scale is a schema parameter; a timestamp is a
count of milliseconds, microseconds or nanoseconds depending on ``time.precision.mode`` and the
column's precision. Where the record carries its schema (``JsonConverter`` with
``schemas.enable=true``, or Avro), these become ``Decimal``, ``date``, ``time`` and aware
``datetime`` values here, so that the mappings see the same values whatever the mode.

Without the schema (``schemas.enable=false``) the numbers are read as the Postgres connector's
defaults (``time.precision.mode=adaptive``: dates in days, timestamps in microseconds), and
``decimal.handling.mode=precise`` cannot be read at all: its bytes do not say their scale.
``VariableScaleDecimal`` (a Postgres ``NUMERIC`` without a declared scale) carries its scale
and is read in both forms (``transforms``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

__all__ = [
    "apply_logical_types",
    "avro_logical_fields",
    "logical_fields",
    "variable_scale_decimal",
]

Converter = Callable[[Any], Any]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)
_MIDNIGHT = datetime(1970, 1, 1)


def _bytes(raw: Any) -> bytes:
    return base64.b64decode(raw) if isinstance(raw, str) else bytes(raw)


def _decimal(scale: int) -> Converter:
    def convert(raw: Any) -> Any:
        if isinstance(raw, (str, bytes)):
            return Decimal(int.from_bytes(_bytes(raw), "big", signed=True)).scaleb(-scale)
        return raw

    return convert


def variable_scale_decimal(raw: Any) -> Any:
    """``io.debezium.data.VariableScaleDecimal`` (``{"scale": s, "value": bytes}``) -> Decimal."""
    if isinstance(raw, dict) and "scale" in raw and "value" in raw:
        unscaled = int.from_bytes(_bytes(raw["value"]), "big", signed=True)
        return Decimal(unscaled).scaleb(-int(raw["scale"]))
    return raw


def _instant(per_second: int) -> Converter:
    def convert(raw: Any) -> Any:
        if type(raw) is int:
            seconds, rest = divmod(raw, per_second)
            return _EPOCH + timedelta(seconds=seconds, microseconds=rest * 1_000_000 // per_second)
        return raw

    return convert


def _time_of_day(per_second: int) -> Converter:
    def convert(raw: Any) -> Any:
        if type(raw) is int:
            seconds, rest = divmod(raw, per_second)
            at = _MIDNIGHT + timedelta(seconds=seconds, microseconds=rest * 1_000_000 // per_second)
            return at.time() if raw < 86_400 * per_second else time.max
        return raw

    return convert


def _days(raw: Any) -> Any:
    return _EPOCH_DAY + timedelta(days=raw) if type(raw) is int else raw


_BY_NAME: dict[str, Converter] = {
    "io.debezium.data.VariableScaleDecimal": variable_scale_decimal,
    "io.debezium.time.Date": _days,
    "org.apache.kafka.connect.data.Date": _days,
    "io.debezium.time.Time": _time_of_day(1_000),
    "org.apache.kafka.connect.data.Time": _time_of_day(1_000),
    "io.debezium.time.MicroTime": _time_of_day(1_000_000),
    "io.debezium.time.NanoTime": _time_of_day(1_000_000_000),
    "io.debezium.time.Timestamp": _instant(1_000),
    "org.apache.kafka.connect.data.Timestamp": _instant(1_000),
    "io.debezium.time.MicroTimestamp": _instant(1_000_000),
    "io.debezium.time.NanoTimestamp": _instant(1_000_000_000),
}
"""Logical type -> converter. ``ZonedTimestamp``/``ZonedTime`` and ``Iso*`` are ISO-8601 text,
which the mappings read as it is."""
_DECIMAL = "org.apache.kafka.connect.data.Decimal"


def _converter(name: str | None, parameters: dict[str, Any] | None) -> Converter | None:
    if name == _DECIMAL:
        return _decimal(int((parameters or {}).get("scale", 0)))
    return _BY_NAME.get(name or "")


def logical_fields(schema: dict[str, Any], image: str) -> dict[str, Converter]:
    """Column -> converter, of the ``before``/``after`` struct of a Connect JSON schema."""
    for field in schema.get("fields") or ():
        if field.get("field") == image:
            found = {}
            for col in field.get("fields") or ():
                convert = _converter(col.get("name"), col.get("parameters"))
                if convert is not None:
                    found[col["field"]] = convert
            return found
    return {}


def _avro_type(schema: Any) -> Any:
    """The non-null branch of an Avro union (or the schema itself)."""
    if isinstance(schema, list):
        rest = [s for s in schema if s != "null"]
        return rest[0] if len(rest) == 1 else None
    return schema


def avro_logical_fields(schema: dict[str, Any]) -> dict[str, dict[str, Converter]]:
    """Image -> column -> converter, from an Avro ``Envelope`` schema written by AvroConverter.

    Avro decimals are read as ``Decimal`` by the Avro reader already; the other logical types
    are named by ``connect.name``.
    """
    images: dict[str, dict[str, Converter]] = {}
    for field in schema.get("fields") or ():
        if field.get("name") not in ("before", "after"):
            continue
        record = _avro_type(field.get("type"))
        if not isinstance(record, dict):
            continue
        found = {}
        for col in record.get("fields") or ():
            ctype = _avro_type(col.get("type"))
            if isinstance(ctype, dict):
                name = ctype.get("connect.name")
                convert = None if name == _DECIMAL else _BY_NAME.get(name or "")
                if convert is not None:
                    found[col["name"]] = convert
        images[field["name"]] = found
        if record.get("name"):
            images["after" if field["name"] == "before" else "before"] = found
    return images


def apply_logical_types(
    row: dict[str, Any] | None,
    converters: dict[str, Converter],
    is_placeholder: Callable[[Any], bool],
) -> None:
    """Convert the columns of ``row`` in place; placeholders of unavailable values stay."""
    if not row:
        return
    for column, convert in converters.items():
        raw = row.get(column)
        if raw is None or is_placeholder(raw):
            continue
        row[column] = convert(raw)
