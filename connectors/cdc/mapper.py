"""Pure mapping of Debezium changes to canonical events, driven by the declarative mappings.

No Kafka and no I/O: ``CdcMapper.map(change)`` returns the canonical topic, key and event,
``None`` for changes that carry nothing to map, or raises an ``InterlockError`` with a reason
code (unknown table, truncate, mapping failure) for the caller to count and dead-letter.

Identity:
- ``event_id`` = ``deterministic_event_id("cdc", schema.table, record id, log position, op)``
  where the log position is unique per change (``ChangeEvent.position``: the Postgres LSN, the
  MySQL binlog file/pos/row, ...): a change that is published again (connector restart,
  replay) carries the same id.
- ``correlation_id`` is shared by every change of one source transaction, and does not depend
  on whether the connector emits transaction metadata (``ChangeEvent.transaction_key``).

Unavailable values (an unchanged TOASTed column arrives as Debezium's placeholder) are never
mapped as data: the fields they feed are left out of ``changed_fields`` (a partial change, so a
merge keeps their old value), and a required field fed by one fails with
``VALUE_UNAVAILABLE``.
- The Kafka key is a payload field (``account_id`` by default), so that every canonical topic
  is partitioned by the canonical account id.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from connectors.cdc.envelope import ChangeEvent
from connectors.cdc.spec import MappingSpec
from connectors.cdc.transforms import FieldError, FieldPlan, field_lines, plan_field
from contracts.codegen import generated_function
from contracts.conversion import event_builder
from contracts.errors import ConfigError, InterlockError, Reason
from contracts.ids import cached_event_id, deterministic_event_id
from contracts.models import EVENT_MODELS, Envelope

__all__ = [
    "CdcMapper",
    "CompiledMapping",
    "MappedEvent",
    "MappingError",
    "MappingPlan",
    "NestedPlan",
    "TruncateError",
    "UnknownTableError",
]


class MappingError(InterlockError):
    """A change of a mapped table that cannot become a valid canonical event."""

    reason = Reason.MAPPING_FAILED


class UnknownTableError(InterlockError):
    """A change of a table that no mapping covers (dead-lettered in strict mode)."""

    reason = Reason.UNKNOWN_TABLE


class TruncateError(InterlockError):
    """A TRUNCATE: deleting every record downstream is never implicit; an operator decides."""

    reason = Reason.TRUNCATE_UNSUPPORTED


@dataclass(frozen=True, slots=True)
class MappedEvent:
    """A canonical event ready to produce."""

    topic: str
    key: bytes
    event: Envelope
    mapping: str


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _template(model: type[BaseModel]) -> dict[str, Any]:
    """Every field of ``model`` at its default (lists empty), as the trusted builder needs."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        out[name] = None if info.is_required() else info.get_default(call_default_factory=True)
    return out


@dataclass(frozen=True, slots=True)
class NestedPlan:
    """A nested record of the payload, mapped part by part (targets ``head.<part>``).

    Attributes:
        head: the payload field that holds the record.
        fields: (part, plan) per mapped part.
        template: every part of the record at its default; parts that are not mapped keep it.
        many: the field is a list (targets ``head[].<part>``): a list of one record, or empty.
    """

    head: str
    fields: tuple[tuple[str, FieldPlan], ...]
    template: dict[str, Any]
    many: bool


@dataclass(frozen=True, slots=True)
class MappingPlan:
    """What one mapping computes, typed and frozen: the input of its generated functions.

    ``CompiledMapping`` builds it once from the ``MappingSpec`` and the canonical model; the
    payload builder below and the CDC writer (``connectors.cdc.fastpath``) are generated from
    it and from nothing else. Templates are shared, never mutated.

    Attributes:
        name: the mapping's name.
        entity: the canonical entity (contract) of its events.
        vendor: ``source.vendor`` of its events.
        key: the payload field whose text is the Kafka key.
        deleted_field: the payload field set to True by a delete, if any.
        payload_template: every payload field at its default.
        required: the payload fields that must not be empty.
        fields: (payload field, plan) per mapped top-level field.
        nested: the nested records of the payload, mapped part by part.
        event_types: the event type per op (c, u, d, r).
        on_change: (column, event type): an update that changes the column has that type
            (the first that applies).
        record_id: the columns of the row's natural key (``source.record_id``).
        changed_fields: ``changed_fields`` of every event: the mapped fields of a partial
            mapping, else empty (a full image).
    """

    name: str
    entity: str
    vendor: str
    key: str
    deleted_field: str | None
    payload_template: dict[str, Any]
    required: tuple[str, ...]
    fields: tuple[tuple[str, FieldPlan], ...]
    nested: tuple[NestedPlan, ...]
    event_types: dict[str, str]
    on_change: tuple[tuple[str, str], ...]
    record_id: tuple[str, ...]
    changed_fields: tuple[str, ...]

    def recurring_ids(self, plan: FieldPlan) -> bool:
        """False for the canonical id of the record itself, which recurs only when it changes.

        Ids that recur across records (an order's account id) are worth caching; see
        ``transforms.field_lines``.
        """
        columns = plan.spec.columns
        return plan.spec.canonical_id is None or columns is None or tuple(columns) != self.record_id


def _payload_builder(plan: MappingPlan) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """``row -> payload`` as one generated function: every field computed inline.

    Runs per event of the reference path, so the per-field function calls are worth removing;
    it computes what calling each ``FieldPlan.run`` computes (a property test holds it to that).
    """
    ns: dict[str, Any] = {"_template": plan.payload_template}
    lines = ["def payload(row):", "    p = _template.copy()", "    get = row.get"]
    for i, (name, field) in enumerate(plan.fields):
        lines += field_lines(field, f"f{i}", ns, "    ", recurring_ids=plan.recurring_ids(field))
        lines.append(f"    p[{name!r}] = f{i}")
    for j, nested in enumerate(plan.nested):
        ns[f"_t{j}"] = nested.template
        locals_ = [f"n{j}_{k}" for k in range(len(nested.fields))]
        for local, (_sub, field) in zip(locals_, nested.fields, strict=True):
            lines += field_lines(field, local, ns, "    ", recurring_ids=plan.recurring_ids(field))
        filled = " or ".join(f"{local} is not None" for local in locals_)
        lines += [f"    if {filled}:", f"        part = _t{j}.copy()"]
        lines += [
            f"        if {local} is not None: part[{sub!r}] = {local}"
            for local, (sub, _field) in zip(locals_, nested.fields, strict=True)
        ]
        empty, wrap = ("[]", "[part]") if nested.many else ("None", "part")
        lines += [
            f"        p[{nested.head!r}] = {wrap}",
            "    else:",
            f"        p[{nested.head!r}] = {empty}",
        ]
    lines.append("    return p")
    source = "\n".join(lines) + "\n"
    return generated_function(f"cdc-payload:{plan.name}", source, ns, "payload")


class CompiledMapping:
    """One ``MappingSpec`` compiled against its canonical model: ``change -> MappedEvent``.

    ``plan`` says what it computes; ``map`` computes it through the event models (the
    reference path of the CDC stage, see ``connectors.cdc.fastpath``).
    """

    def __init__(self, spec: MappingSpec, path: Path, vendor: str) -> None:
        self.spec = spec
        self.name = spec.name
        where = f"{path}: mapping {spec.name!r}"
        event_cls = EVENT_MODELS[spec.entity]
        payload_cls = _nested_model(event_cls.model_fields["payload"].annotation)
        assert payload_cls is not None
        flat: list[tuple[str, FieldPlan]] = []
        nested: dict[str, list[tuple[str, FieldPlan]]] = {}
        nested_templates: dict[str, dict[str, Any]] = {}
        lists: set[str] = set()
        for target, fspec in spec.fields.items():
            fwhere = f"{where}: field {target!r}"
            head, _, sub = target.partition(".")
            as_list = head.endswith("[]")
            head = head.removesuffix("[]")
            info = payload_cls.model_fields.get(head)
            if info is None:
                raise ConfigError(f"{fwhere}: {spec.entity} has no field {head!r}")
            if sub:
                sub_cls = _nested_model(info.annotation)
                if sub_cls is None or sub not in sub_cls.model_fields:
                    raise ConfigError(f"{fwhere}: {head!r} has no nested field {sub!r}")
                plan = plan_field(fspec, sub_cls.model_fields[sub].annotation, path.parent, fwhere)
                nested.setdefault(head, []).append((sub, plan))
                nested_templates[head] = _template(sub_cls)
                if as_list:
                    lists.add(head)
            else:
                if _nested_model(info.annotation) is not None:
                    raise ConfigError(f"{fwhere}: map its parts ({head}.<part>), not the record")
                flat.append((head, plan_field(fspec, info.annotation, path.parent, fwhere)))
        key = spec.key or ("account_id" if "account_id" in payload_cls.model_fields else None)
        if key is None:
            key = f"{spec.entity}_id"
        if key not in payload_cls.model_fields:
            raise ConfigError(f"{where}: key field {key!r} is not a {spec.entity} field")
        if spec.deleted_field is not None and spec.deleted_field not in payload_cls.model_fields:
            raise ConfigError(f"{where}: deleted_field {spec.deleted_field!r} is not a field")
        heads = sorted({t.partition(".")[0].removesuffix("[]") for t in spec.fields})
        self.plan = MappingPlan(
            name=spec.name,
            entity=spec.entity,
            vendor=spec.vendor or vendor,
            key=key,
            deleted_field=spec.deleted_field,
            payload_template=_template(payload_cls),
            required=tuple(n for n, i in payload_cls.model_fields.items() if i.is_required()),
            fields=tuple(flat),
            nested=tuple(
                NestedPlan(head, tuple(plans), nested_templates[head], head in lists)
                for head, plans in nested.items()
            ),
            event_types={op: spec.event_type(op) for op in ("c", "u", "d", "r")},
            on_change=tuple(spec.on_change.items()),
            record_id=tuple(spec.record_id),
            changed_fields=tuple(heads) if spec.partial else (),
        )
        """What this mapping computes (the input of its generated functions)."""
        self._payload = _payload_builder(self.plan)
        self._build = event_builder(spec.entity)
        self._topic = spec.topic_name
        self._heads = heads
        self._columns_of: dict[str, set[str]] = {}
        for target, fspec in spec.fields.items():
            head = target.partition(".")[0].removesuffix("[]")
            self._columns_of.setdefault(head, set()).update(fspec.source_columns())

    @property
    def topic(self) -> str:
        """The canonical topic this mapping produces to."""
        return self._topic

    @property
    def entity(self) -> str:
        """The canonical entity (contract) of this mapping's events."""
        return self.plan.entity

    @property
    def payload_builder(self) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """The generated ``row -> payload`` of ``map`` (source ``cdc-payload:<name>``)."""
        return self._payload

    def retarget(self, topic: str) -> None:
        """Produce to ``topic`` instead of the mapping's (tests and side-by-side deployments)."""
        self._topic = topic

    def _available_fields(self, change: ChangeEvent) -> list[str]:
        """The fields ``change`` really carries: those fed by no unavailable column.

        Raises:
            MappingError: a required field is fed by an unavailable column.
        """
        missing = {h for h, cols in self._columns_of.items() if cols & change.unavailable}
        for name in self.plan.required:
            if name in missing:
                columns = sorted(self._columns_of[name] & change.unavailable)
                raise MappingError(
                    f"{self.name}: required field {name!r} comes from {columns} of table "
                    f"{change.table}, which the change does not carry (Debezium's unavailable-"
                    "value placeholder: an unchanged TOASTed column)",
                    reason=Reason.VALUE_UNAVAILABLE,
                )
        return [h for h in (self.plan.changed_fields or self._heads) if h not in missing]

    def map(self, change: ChangeEvent, ingested_at: datetime) -> MappedEvent:
        """The canonical event of ``change`` (op c, u, d or r).

        Raises:
            MappingError: a value does not fit, or a required field is missing.
        """
        plan = self.plan
        row = change.after if change.after is not None else change.before
        if row is None:
            raise MappingError(f"{self.name}: op {change.op!r} carries no row image")
        unavailable = change.unavailable
        changed: Sequence[str] = plan.changed_fields
        if unavailable:
            changed = self._available_fields(change)
            row = {k: (None if k in unavailable else v) for k, v in row.items()}
        try:
            payload = self._payload(row)
        except FieldError as exc:
            raise MappingError(f"{self.name}: {exc}", reason=exc.reason) from exc
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise MappingError(f"{self.name}: {exc!r}") from exc
        for name in plan.required:
            if payload[name] is None:
                raise MappingError(
                    f"{self.name}: required field {name!r} is empty for table "
                    f"{change.table} (columns {sorted(row)})",
                    reason=Reason.VALIDATION_MISSING_FIELD,
                )
        op = change.op
        if op == "d" and plan.deleted_field is not None:
            payload[plan.deleted_field] = True
        event_type = plan.event_types[op]
        if op == "u" and plan.on_change and change.before is not None:
            before, after = change.before, change.after or {}
            for column, changed_type in plan.on_change:
                if column in unavailable:
                    continue
                if column in before and before.get(column) != after.get(column):
                    event_type = changed_type
                    break
        record_id = ":".join(str(row.get(c)) for c in plan.record_id)
        qualified = f"{change.schema or change.db or ''}.{change.table}"
        # Both equal contracts.deterministic_event_id(...); a transaction's id is reused.
        event_id = deterministic_event_id("cdc", qualified, record_id, change.position, op)
        tx = change.transaction_key
        correlation = cached_event_id("cdc-tx", change.db or "", tx) if tx else event_id
        changed_at = (
            datetime.fromtimestamp(change.ts_ms / 1000, UTC) if change.ts_ms is not None else None
        )
        event = self._build(
            {
                "event_id": event_id,
                "event_type": event_type,
                "entity": plan.entity,
                "schema_version": 1,
                "source": {
                    "system": "erp",
                    "vendor": plan.vendor,
                    "instance": change.db,
                    "record_id": record_id,
                    "changed_at": changed_at,
                },
                "correlation_id": correlation,
                "causation_id": None,
                "occurred_at": changed_at or ingested_at,
                "ingested_at": ingested_at,
                "origin": None,
                "changed_fields": list(changed),
                "payload": payload,
            }
        )
        key = payload[plan.key]
        return MappedEvent(self._topic, str(key).encode(), event, self.name)


class CdcMapper:
    """Routes each change to the mapping of its table, and maps it.

    Args:
        mappings: (file, spec) pairs, e.g. from ``load_mapping_dir``; the first matching
            mapping of a table wins (files sorted by name, mappings in file order).
        vendor: ``source.vendor`` of the events (a mapping may override it).
        clock: ``ingested_at`` source (UTC now by default).
        topic_for: renames canonical topics (e.g. a prefix per environment).
    """

    def __init__(
        self,
        mappings: list[tuple[Path, MappingSpec]],
        *,
        vendor: str = "postgres-erp",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        topic_for: Callable[[str], str] | None = None,
    ) -> None:
        self.mappings = [CompiledMapping(spec, path, vendor) for path, spec in mappings]
        if topic_for is not None:
            for compiled in self.mappings:
                compiled.retarget(topic_for(compiled.spec.topic_name))
        self._routes: dict[tuple[str, str | None], CompiledMapping | None] = {}
        self._clock = clock

    def mapping_for(self, table: str, schema: str | None) -> CompiledMapping | None:
        """The mapping that covers ``schema.table``, or None (cached per table)."""
        route = (table, schema)
        try:
            return self._routes[route]
        except KeyError:
            pass
        found = next((m for m in self.mappings if m.spec.matches(table, schema)), None)
        self._routes[route] = found
        return found

    def map(self, change: ChangeEvent, now: datetime | None = None) -> MappedEvent:
        """The canonical event of ``change``.

        Raises:
            UnknownTableError: no mapping covers the change's table.
            TruncateError: the change is a TRUNCATE (op t).
            MappingError: the row does not fit the mapping.
        """
        if change.op == "t":
            raise TruncateError(
                f"TRUNCATE of {change.schema or change.db}.{change.table} was not applied: "
                "it would delete every record of the table downstream; re-snapshot the table "
                "or delete the records deliberately"
            )
        mapping = self.mapping_for(change.table, change.schema)
        if mapping is None:
            raise UnknownTableError(f"no mapping covers table {change.schema}.{change.table}")
        return mapping.map(change, now or self._clock())
