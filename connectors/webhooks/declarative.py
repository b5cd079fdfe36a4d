"""Declarative mappings for Standard-Webhooks CRMs: YAML data, no code, one file per source.

A file in ``connectors/mappings/crm/`` says, for one ``source`` (the ``{source}`` of
``POST /webhooks/standard/{source}``), where the event type is and, per event type, which
canonical entity it changes and which JSON path fills which canonical field::

    source: acme
    vendor: acme
    type: $.type                   # JSON path of the event type
    occurred_at: $.timestamp       # optional: ISO-8601 or epoch ms (default: webhook-timestamp)
    events:
      company.updated:
        entity: account            # account | contact | quote
        event_type: AccountChanged
        record_id: $.data.id       # the CRM record id (quote: the deal id)
        fields: {name: $.data.name, web_domain: $.data.domain}
      quote.accepted:
        entity: quote
        event_type: QuoteAccepted
        record_id: $.data.deal_id
        account: $.data.company_id # the company (contact and quote entities need it)
        set: {status: ACCEPTED}    # constants
        fields: {total: $.data.total, accepted_at: $.data.accepted_at}

Paths are a small JSONPath subset: ``$``, ``.name`` and ``[index]``. A path that resolves to
nothing leaves its field out of ``changed_fields`` (a partial change). Event types not listed
produce no event.

Each mapping is compiled once, when it is loaded (:class:`CompiledRule`): every path becomes its
tuple of steps (:func:`compile_path`), and the event id hashes the mapping's vendor and source
once (:func:`contracts.ids.event_id_after`). The canonical ids of companies, contacts and deals
recur from request to request, so they are cached (a bounded LRU). Every event is still
validated by pydantic as a whole: the values come from the sender.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from contracts import (
    AccountEvent,
    ConfigError,
    ContactEvent,
    Envelope,
    InterlockError,
    QuoteEvent,
    Reason,
    Source,
)
from contracts.identity import crm_account_id, crm_contact_id, crm_quote_id
from contracts.ids import ID_CACHE, event_id_after

__all__ = [
    "DEFAULT_MAPPINGS_DIR",
    "CompiledMapping",
    "CompiledRule",
    "EventRule",
    "StandardMapping",
    "compile_path",
    "load_mappings",
    "map_standard_event",
    "resolve_path",
    "resolve_steps",
]

DEFAULT_MAPPINGS_DIR = Path(__file__).resolve().parent.parent / "mappings" / "crm"
_MISSING = object()
_EVENTS: dict[str, tuple[type[Envelope], str]] = {
    "account": (AccountEvent, "AccountChanged"),
    "contact": (ContactEvent, "ContactChanged"),
    "quote": (QuoteEvent, "QuoteChanged"),
}
_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
_PATH = re.compile(r"^\$((\.[^.\[\]]+)|(\[\d+\]))*$")


Steps = tuple[str | int, ...]
"""A compiled path: a name (``str``) per ``.name``, an index (``int``) per ``[index]``."""


def compile_path(path: str) -> Steps:
    """The steps of ``path``: ``$.a.b[0]`` is ``("a", "b", 0)``."""
    return tuple(name or int(index) for name, index in _STEP.findall(path[1:]))


def resolve_steps(document: Any, steps: Steps) -> Any:
    """The value at the compiled path ``steps`` in ``document``, or ``None`` when absent."""
    node = document
    for step in steps:
        if isinstance(step, str):
            # a dict first: isinstance against the Mapping ABC is the slow check
            if node.__class__ is dict or isinstance(node, Mapping):
                node = node.get(step, _MISSING)
                if node is _MISSING:
                    return None
            else:
                return None
        elif isinstance(node, list) and step < len(node):
            node = node[step]
        else:
            return None
    return node


_steps_of = lru_cache(maxsize=1024)(compile_path)


def resolve_path(document: Any, path: str) -> Any:
    """The value at ``path`` (``$.a.b[0]``) in ``document``, or ``None`` when absent."""
    return resolve_steps(document, _steps_of(path))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_path(value: str) -> str:
    if not _PATH.match(value):
        raise ValueError(f"not a JSON path ($.a.b[0]): {value!r}")
    return value


class EventRule(_Strict):
    """How one event type becomes a canonical change."""

    entity: Literal["account", "contact", "quote"]
    event_type: str | None = None
    record_id: str
    account: str | None = None
    revision: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)
    set: dict[str, Any] = Field(default_factory=dict)

    @field_validator("record_id", "account", "revision")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return None if value is None else _check_path(value)

    @field_validator("fields")
    @classmethod
    def _paths(cls, value: dict[str, str]) -> dict[str, str]:
        for name, path in value.items():
            try:
                _check_path(path)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _account_for_children(self) -> EventRule:
        if self.entity != "account" and self.account is None:
            raise ValueError(f"entity {self.entity} needs `account` (the company's id path)")
        return self


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """An :class:`EventRule` ready to apply: its paths compiled, its event class looked up.

    ``record_id`` and ``account`` are (path, steps); ``id_field`` is the payload field the
    record id fills, always in ``changed_fields``.
    """

    entity: str
    event_type: str
    record_id: tuple[str, Steps]
    account: tuple[str, Steps] | None
    revision: Steps | None
    fields: tuple[tuple[str, Steps], ...]
    constants: Mapping[str, Any]
    id_field: str
    event_class: type[Envelope]

    @classmethod
    def of(cls, rule: EventRule) -> CompiledRule:
        """Compile ``rule``."""
        event_class, default_type = _EVENTS[rule.entity]
        return cls(
            entity=rule.entity,
            event_type=rule.event_type or default_type,
            record_id=(rule.record_id, compile_path(rule.record_id)),
            account=None if rule.account is None else (rule.account, compile_path(rule.account)),
            revision=None if rule.revision is None else compile_path(rule.revision),
            fields=tuple((name, compile_path(path)) for name, path in rule.fields.items()),
            constants=rule.set,
            id_field="crm_deal_id" if rule.entity == "quote" else "crm_record_id",
            event_class=event_class,
        )


@dataclass(frozen=True, slots=True)
class CompiledMapping:
    """A :class:`StandardMapping` ready to apply (``StandardMapping.compiled``)."""

    type: Steps
    occurred_at: Steps | None
    rules: Mapping[str, CompiledRule]
    event_id: Callable[[str], str]
    """``crm_event_id(vendor, source, webhook id)`` with vendor and source hashed once."""


class StandardMapping(_Strict):
    """The mapping of one Standard-Webhooks source (compiled once, when validated)."""

    source: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    vendor: str
    type: str = "$.type"
    occurred_at: str | None = None
    events: dict[str, EventRule]
    _compiled: Any = PrivateAttr(default=None)

    @field_validator("type", "occurred_at")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return None if value is None else _check_path(value)

    def model_post_init(self, context: Any, /) -> None:
        """Compile the mapping's paths and rules."""
        self._compiled = CompiledMapping(
            type=compile_path(self.type),
            occurred_at=None if self.occurred_at is None else compile_path(self.occurred_at),
            rules={name: CompiledRule.of(rule) for name, rule in self.events.items()},
            # crm_event_id's parts, the vendor and source hashed once
            event_id=event_id_after("crm", self.vendor, self.source),
        )

    @property
    def compiled(self) -> CompiledMapping:
        """The mapping with its paths compiled."""
        compiled: CompiledMapping = self._compiled
        return compiled


def load_mappings(directory: Path | None = None) -> dict[str, StandardMapping]:
    """Every ``*.yaml`` mapping in ``directory``, by source.

    Raises:
        ConfigError: a file is not valid YAML or not a valid mapping (names the file and field).
    """
    found: dict[str, StandardMapping] = {}
    for path in sorted((directory or DEFAULT_MAPPINGS_DIR).glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            mapping = StandardMapping.model_validate(data)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        except PydanticValidationError as exc:
            where = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"{path}: {where}") from exc
        if mapping.source in found:
            raise ConfigError(f"{path}: source {mapping.source!r} is mapped twice")
        found[mapping.source] = mapping
    return found


def _instant(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _required(body: Any, path: tuple[str, Steps], what: str, event_type: str) -> str:
    value = resolve_steps(body, path[1])
    if value in (None, ""):
        raise InterlockError(
            f"{event_type}: {what} missing at {path[0]}", reason=Reason.VALIDATION_MISSING_FIELD
        )
    return str(value)


# Canonical ids recur (every request about one company, contact or deal): cached, bounded.
_account_id = lru_cache(maxsize=ID_CACHE)(crm_account_id)
_contact_id = lru_cache(maxsize=ID_CACHE)(crm_contact_id)
_quote_id = lru_cache(maxsize=ID_CACHE)(crm_quote_id)


def map_standard_event(
    mapping: StandardMapping,
    body: Any,
    *,
    webhook_id: str,
    webhook_timestamp: datetime,
    received_at: datetime,
) -> Envelope | None:
    """One verified Standard-Webhooks payload → one canonical event, or ``None`` if unmapped.

    Raises:
        InterlockError: ``VALIDATION_MISSING_FIELD`` (an id path is empty) or
            ``MAPPING_FAILED`` (a value does not fit its canonical field).
    """
    plan = mapping.compiled
    event_type = resolve_steps(body, plan.type)
    rule = plan.rules.get(str(event_type)) if event_type is not None else None
    if rule is None:
        return None
    vendor = mapping.vendor
    record_id = _required(body, rule.record_id, "record id", str(event_type))
    try:
        occurred = (
            _instant(resolve_steps(body, plan.occurred_at))
            if plan.occurred_at is not None
            else None
        ) or webhook_timestamp
        fields = {k: v for k, steps in rule.fields if (v := resolve_steps(body, steps)) is not None}
        fields.update(rule.constants)
        envelope: dict[str, Any] = {
            "event_id": plan.event_id(webhook_id),
            "source": Source(system="crm", vendor=vendor, record_id=record_id, changed_at=occurred),
            "occurred_at": occurred,
            "ingested_at": received_at,
            "changed_fields": sorted({*fields, rule.id_field}),
        }
        if rule.entity == "account":
            correlation_id = _account_id(vendor, record_id)
            payload = {"account_id": correlation_id, "crm_record_id": record_id, **fields}
        else:
            assert rule.account is not None
            account = _required(body, rule.account, "account", record_id)
            account_id = _account_id(vendor, account)
            if rule.entity == "contact":
                correlation_id = account_id
                payload = {
                    "contact_id": _contact_id(vendor, record_id),
                    "account_id": account_id,
                    "crm_record_id": record_id,
                    **fields,
                }
            else:
                correlation_id = _quote_id(vendor, record_id)
                revision = resolve_steps(body, rule.revision) if rule.revision is not None else None
                payload = {
                    "quote_id": correlation_id,
                    "revision": int(revision or 1),
                    "account_id": account_id,
                    "crm_deal_id": record_id,
                    **fields,
                }
        return rule.event_class(
            event_type=rule.event_type,
            correlation_id=correlation_id,
            payload=payload,
            **envelope,
        )
    except (PydanticValidationError, ValueError, TypeError) as exc:
        raise InterlockError(
            f"{mapping.source} {event_type} {webhook_id}: {exc}", reason=Reason.MAPPING_FAILED
        ) from exc
