"""Postgres values in the representation Debezium's Postgres connector gives them.

The snapshot reads Python values through psycopg and the stream reads wal2json text; both go
through ``debezium_value`` so that a row looks the same whichever way it arrived, and the same
mappings apply to Debezium's topics and to ours:

- ``numeric``: a string (Debezium ``decimal.handling.mode=string``), exact;
- ``date``: days since the epoch (``io.debezium.time.Date``);
- ``timestamp with time zone``: ISO-8601 in UTC (``io.debezium.time.ZonedTimestamp``);
- ``timestamp`` (without zone): microseconds since the epoch (``MicroTimestamp``);
- booleans, integers, text: as is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

__all__ = ["converter_for", "debezium_value"]

_EPOCH_DAY = date(1970, 1, 1)
_EPOCH = datetime(1970, 1, 1)


def _numeric(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value)
    return str(value) if isinstance(value, (Decimal, int, str)) else value


def _date(value: Any) -> Any:
    if isinstance(value, str):
        value = date.fromisoformat(value)
    return (value - _EPOCH_DAY).days if isinstance(value, date) else value


def _timestamptz(value: Any) -> Any:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def _timestamp(value: Any) -> Any:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        naive = value.replace(tzinfo=None)
        delta = naive - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return value


def _same(value: Any) -> Any:
    return value


def converter_for(type_name: str) -> Callable[[Any], Any]:
    """The converter of a column of type ``type_name`` (as ``format_type`` spells it)."""
    name = type_name.lower()
    if name.startswith(("numeric", "decimal")):
        return _numeric
    if name == "date":
        return _date
    if name.startswith("timestamp") and "with time zone" in name:
        return _timestamptz
    if name.startswith("timestamp"):
        return _timestamp
    return _same


def debezium_value(type_name: str, value: Any) -> Any:
    """``value`` of a column of type ``type_name`` as Debezium would publish it."""
    if value is None:
        return None
    return converter_for(type_name)(value)
