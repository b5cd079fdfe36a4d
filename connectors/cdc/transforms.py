"""Field transforms of the declarative mappings, compiled once into plain closures.

Each canonical field becomes one function ``row -> value``; the per-event cost is a few
dictionary lookups and conversions, because mapping runs at tens of thousands of events/s.
The last step coerces the value to the canonical field's type (taken from the contract
model), so what reaches the Avro encoder has the type the contract promises.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import yaml

from connectors.cdc.logical import variable_scale_decimal
from connectors.cdc.spec import FieldSpec
from contracts.errors import ConfigError, Reason
from contracts.ids import cached_event_id, deterministic_event_id, event_id_after

__all__ = [
    "FieldError",
    "FieldPlan",
    "canonical_id",
    "coercer_for",
    "compile_field",
    "field_lines",
    "plan_field",
]

Row = dict[str, Any]
FieldFn = Callable[[Row], Any]
_EPOCH_DAY = date(1970, 1, 1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TRUE = frozenset(("true", "t", "1", "yes", "y", "on"))
_FALSE = frozenset(("false", "f", "0", "no", "n", "off"))


class FieldError(ValueError):
    """A value that cannot be mapped; ``reason`` says how (missing or invalid)."""

    def __init__(self, message: str, reason: Reason = Reason.MAPPING_FAILED) -> None:
        super().__init__(message)
        self.reason = reason


def canonical_id(kind: str, system: str, *natural_key: str) -> str:
    """The canonical id of a ``kind`` record (e.g. account) known by ``natural_key`` in ``system``.

    ``uuid5(EVENT_ID_NAMESPACE, "9:canonical" + len:kind + len:system + len:key...)`` via
    ``contracts.deterministic_event_id``: the same ERP customer number always gives the same
    account id, in every process, so canonical topics keyed by it are co-partitioned.
    """
    return deterministic_event_id("canonical", kind, system, *natural_key)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise FieldError(f"{value!r} is not a boolean")


_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, dict):  # Postgres NUMERIC without a scale: VariableScaleDecimal
        value = variable_scale_decimal(value)
        if isinstance(value, Decimal):
            return value
    try:
        return Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        if isinstance(value, str) and len(value) % 4 == 0 and _BASE64.fullmatch(value):
            raise FieldError(
                f"{value!r} looks like the bytes of a Connect Decimal "
                "(decimal.handling.mode=precise), whose scale is only in the record's schema: "
                "use JsonConverter with schemas.enable=true (or Avro), or "
                "decimal.handling.mode=string",
                Reason.SCHEMA_REQUIRED,
            ) from None
        raise FieldError(f"{value!r} is not a decimal") from None


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, str):  # Debezium's ZonedTimestamp, the usual form: tested first
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise FieldError(f"{value!r} is not an ISO-8601 timestamp") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int):
        # Debezium's default for timestamp columns: microseconds since the epoch.
        return _EPOCH + timedelta(microseconds=value)
    raise FieldError(f"{value!r} is not a timestamp")


def _to_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int):
        # Debezium's io.debezium.time.Date: days since the epoch.
        return _EPOCH_DAY + timedelta(days=value)
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            raise FieldError(f"{value!r} is not an ISO-8601 date") from None
    raise FieldError(f"{value!r} is not a date")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise FieldError(f"{value!r} is not an integer") from None


_CASTS: dict[str, Callable[[Any], Any]] = {
    "str": str,
    "int": _to_int,
    "decimal": _to_decimal,
    "bool": _to_bool,
    "date": _to_date,
    "timestamp": _to_datetime,
}


def coercer_for(annotation: Any, where: str) -> Callable[[Any], Any]:
    """A function turning a mapped value into the type of a canonical field (None passes)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return coercer_for(args[0], where)
    if origin is typing.Literal:
        symbols = frozenset(typing.get_args(annotation))

        def literal(value: Any) -> Any:
            text = str(value)
            if text not in symbols:
                raise FieldError(f"{value!r} is not one of {sorted(symbols)}")
            return text

        return literal
    if annotation is str:
        return lambda v: v if type(v) is str else str(v)
    if annotation is bool:
        return _to_bool
    if annotation is int:
        return _to_int
    if annotation is Decimal:
        return _to_decimal
    if annotation is date:
        return _to_date
    if annotation is datetime or getattr(annotation, "__origin__", None) is datetime:
        return _to_datetime
    if "AwareDatetime" in repr(annotation) or "datetime" in repr(annotation):
        return _to_datetime
    raise ConfigError(f"{where}: cannot map into a field of type {annotation!r}")


def _source(spec: FieldSpec, where: str) -> FieldFn:
    if spec.column is not None:
        column = spec.column
        return lambda row: row.get(column)
    if spec.has_const:
        const = spec.const
        return lambda row: const
    if spec.concat is not None:
        columns = tuple(spec.concat)
        sep = spec.separator

        def concat(row: Row) -> Any:
            parts = [str(row[c]) for c in columns if row.get(c) is not None]
            return sep.join(parts) if parts else None

        return concat
    kind, system, columns_ = spec.canonical_id or "", spec.system, tuple(spec.columns or ())

    def ident(row: Row) -> Any:
        values = [row.get(c) for c in columns_]
        if any(v is None for v in values):
            return None
        # Same value as canonical_id(); cached, since a natural key recurs in many changes.
        return cached_event_id("canonical", kind, system, *[str(v) for v in values])

    return ident


def _load_lookup(spec: FieldSpec, base_dir: Path, where: str) -> dict[str, Any]:
    assert spec.lookup is not None
    if spec.lookup.table is not None:
        return {str(k): v for k, v in spec.lookup.table.items()}
    path = base_dir / str(spec.lookup.file)
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{where}: cannot read lookup file {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{where}: lookup file {path} must hold a mapping of key: value")
    return {str(k): v for k, v in loaded.items()}


def _table_step(
    table: dict[str, Any], has_default: bool, default: Any, passthrough: bool, label: str
) -> Callable[[Any], Any]:
    def step(value: Any) -> Any:
        if value is None:
            return None
        hit = table.get(value if type(value) is str else str(value), table)
        if hit is not table:
            return hit
        if has_default:
            return default
        if passthrough:
            return value
        raise FieldError(f"{value!r} is not in the {label}")

    return step


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """One field compiled into its parts, so that code generators can inline the common ones.

    ``run`` is the field as one closure (the reference); ``field_lines`` writes the same
    computation as source lines.

    Attributes:
        spec: the field's spec.
        source: row -> raw value.
        steps: the conversions after the source (epoch or minor units, map or lookup, cast).
        coerce: the last step, to the canonical field's type.
        exact: values of exactly this type leave ``coerce`` unchanged (None: always call it).
        run: row -> value: the source, then each step while the value is not None.
    """

    spec: FieldSpec
    source: FieldFn
    steps: tuple[Callable[[Any], Any], ...]
    coerce: Callable[[Any], Any]
    exact: type | None
    run: FieldFn


_IDENTITY_ON: dict[Any, type] = {str: str, bool: bool, int: int, Decimal: Decimal, date: date}
"""Annotations whose coercion returns a value of exactly that type unchanged."""


def plan_field(spec: FieldSpec, annotation: Any, base_dir: Path, where: str) -> FieldPlan:
    """Compile ``spec`` for a canonical field of type ``annotation``.

    Raises:
        ConfigError: the spec cannot fit the field (e.g. an enum map to an unknown symbol).
    """
    source = _source(spec, where)
    steps: list[Callable[[Any], Any]] = []
    if spec.epoch is not None:
        # A value the record's schema already made a date or instant (logical) is kept.
        unit = spec.epoch
        if unit == "days":
            steps.append(
                lambda v: v if isinstance(v, date) else _EPOCH_DAY + timedelta(days=int(v))
            )
        else:
            div = {"s": 1, "ms": 1_000, "us": 1_000_000}[unit]
            steps.append(
                lambda v: (
                    v
                    if isinstance(v, date)
                    else _EPOCH + timedelta(microseconds=int(v) * 1_000_000 // div)
                )
            )
    if spec.minor_units is not None:
        exponent = -spec.minor_units
        steps.append(lambda v: Decimal(int(v)).scaleb(exponent))
    if spec.map is not None:
        table = {str(k): v for k, v in spec.map.items()}
        steps.append(_table_step(table, spec.has_default, spec.default, False, "enum map"))
    if spec.lookup is not None:
        lk = spec.lookup
        table = _load_lookup(spec, base_dir, where)
        steps.append(_table_step(table, lk.has_default, lk.default, lk.passthrough, "lookup"))
    if spec.cast is not None:
        steps.append(_CASTS[spec.cast])
    coerce = coercer_for(annotation, where)
    if spec.map is not None:
        for target in spec.map.values():
            try:
                coerce(target)
            except FieldError as exc:
                raise ConfigError(f"{where}: enum map target {exc}") from None
    chain = (*steps, coerce)

    def run(row: Row) -> Any:
        value = source(row)
        if value is None:
            return None
        for step in chain:
            value = step(value)
            if value is None:
                return None
        return value

    exact = _IDENTITY_ON.get(_unwrap_optional(annotation))
    return FieldPlan(spec, source, tuple(steps), coerce, exact, run)


def compile_field(spec: FieldSpec, annotation: Any, base_dir: Path, where: str) -> FieldFn:
    """``spec`` compiled for a canonical field of type ``annotation``: ``row -> value``.

    Raises:
        ConfigError: the spec cannot fit the field (e.g. an enum map to an unknown symbol).
    """
    return plan_field(spec, annotation, base_dir, where).run


CANONICAL_ID_CACHE = 4_096
"""Canonical ids kept per (kind, system): the recurring ones (the customer, the products of
every order line) stay hot; each new order, shipment or invoice id is computed once anyway, so a
larger cache only grows the process (with 65,536 per kind, the CDC process kept growing all
through a 10-minute soak)."""


@cache
def _cached_canonical_id(kind: str, system: str) -> Callable[[str], str]:
    return lru_cache(maxsize=CANONICAL_ID_CACHE)(event_id_after("canonical", kind, system))


def field_lines(
    plan: FieldPlan, target: str, ns: dict[str, Any], ind: str, *, recurring_ids: bool = True
) -> list[str]:
    """Source lines computing ``plan``'s field into the local ``target``, as ``plan.run`` does.

    The lines run where ``row`` is the row and ``get`` is ``row.get``; the objects they call
    are added to ``ns`` under names starting with ``_{target}``. A canonical id over one column
    is computed with its leading parts pre-hashed, and cached unless ``recurring_ids`` is False
    (ids of the record itself recur only when the same record changes again).
    """
    spec, t = plan.spec, target

    def bind(obj: Any, suffix: str) -> str:
        name = f"_{t}_{suffix}"
        ns[name] = obj
        return name

    if spec.column is not None:
        lines = [f"{ind}{t} = get({spec.column!r})"]
    elif spec.canonical_id is not None and spec.columns is not None and len(spec.columns) == 1:
        if recurring_ids:
            ident = _cached_canonical_id(spec.canonical_id, spec.system)
        else:
            ident = event_id_after("canonical", spec.canonical_id, spec.system)
        fn = bind(ident, "id")
        lines = [
            f"{ind}{t} = get({spec.columns[0]!r})",
            f"{ind}if {t} is not None: {t} = {fn}({t} if type({t}) is str else str({t}))",
        ]
    else:
        lines = [f"{ind}{t} = {bind(plan.source, 'source')}(row)"]
    for k, step in enumerate(plan.steps):
        lines.append(f"{ind}if {t} is not None: {t} = {bind(step, f'step{k}')}({t})")
    if plan.exact is str and spec.canonical_id is not None and not plan.steps:
        return lines  # an id is text already
    # A text field's coercion is str() itself; the others are called by name.
    coerce = "str" if plan.exact is str else bind(plan.coerce, "coerce")
    if plan.exact is not None:
        exact = plan.exact.__name__ if plan.exact in (str, bool, int) else bind(plan.exact, "type")
        lines.append(f"{ind}if {t} is not None and type({t}) is not {exact}: {t} = {coerce}({t})")
    else:
        lines.append(f"{ind}if {t} is not None: {t} = {coerce}({t})")
    return lines


def _unwrap_optional(annotation: Any) -> Any:
    """``X`` of ``X | None``; other annotations unchanged."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation
