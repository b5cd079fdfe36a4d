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
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
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
from contracts.identity import (
    crm_account_id,
    crm_contact_id,
    crm_event_id,
    crm_quote_id,
)

__all__ = [
    "DEFAULT_MAPPINGS_DIR",
    "EventRule",
    "StandardMapping",
    "load_mappings",
    "map_standard_event",
    "resolve_path",
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


def resolve_path(document: Any, path: str) -> Any:
    """The value at ``path`` (``$.a.b[0]``) in ``document``, or ``None`` when absent."""
    node = document
    for name, index in _STEP.findall(path[1:]):
        if name:
            node = node.get(name, _MISSING) if isinstance(node, Mapping) else _MISSING
        else:
            i = int(index)
            node = node[i] if isinstance(node, list) and i < len(node) else _MISSING
        if node is _MISSING:
            return None
    return node


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


class StandardMapping(_Strict):
    """The mapping of one Standard-Webhooks source."""

    source: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    vendor: str
    type: str = "$.type"
    occurred_at: str | None = None
    events: dict[str, EventRule]

    @field_validator("type", "occurred_at")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return None if value is None else _check_path(value)


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


def _required(body: Any, path: str, what: str, event_type: str) -> str:
    value = resolve_path(body, path)
    if value in (None, ""):
        raise InterlockError(
            f"{event_type}: {what} missing at {path}", reason=Reason.VALIDATION_MISSING_FIELD
        )
    return str(value)


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
    event_type = resolve_path(body, mapping.type)
    rule = mapping.events.get(str(event_type)) if event_type is not None else None
    if rule is None:
        return None
    vendor = mapping.vendor
    record_id = _required(body, rule.record_id, "record id", str(event_type))
    try:
        occurred = (
            _instant(resolve_path(body, mapping.occurred_at)) if mapping.occurred_at else None
        ) or webhook_timestamp
        fields = {k: v for k, p in rule.fields.items() if (v := resolve_path(body, p)) is not None}
        fields.update(rule.set)
        envelope: dict[str, Any] = {
            "event_id": crm_event_id(vendor, mapping.source, webhook_id),
            "source": Source(system="crm", vendor=vendor, record_id=record_id, changed_at=occurred),
            "occurred_at": occurred,
            "ingested_at": received_at,
            "changed_fields": sorted(
                {*fields, "crm_deal_id" if rule.entity == "quote" else "crm_record_id"}
            ),
        }
        if rule.entity == "account":
            correlation_id = crm_account_id(vendor, record_id)
            payload = {"account_id": correlation_id, "crm_record_id": record_id, **fields}
        else:
            assert rule.account is not None
            account = _required(body, rule.account, "account", record_id)
            account_id = crm_account_id(vendor, account)
            if rule.entity == "contact":
                correlation_id = account_id
                payload = {
                    "contact_id": crm_contact_id(vendor, record_id),
                    "account_id": account_id,
                    "crm_record_id": record_id,
                    **fields,
                }
            else:
                correlation_id = crm_quote_id(vendor, record_id)
                revision = resolve_path(body, rule.revision) if rule.revision else None
                payload = {
                    "quote_id": correlation_id,
                    "revision": int(revision or 1),
                    "account_id": account_id,
                    "crm_deal_id": record_id,
                    **fields,
                }
        event_class, default_type = _EVENTS[rule.entity]
        return event_class(
            event_type=rule.event_type or default_type,
            correlation_id=correlation_id,
            payload=payload,
            **envelope,
        )
    except (PydanticValidationError, ValueError, TypeError) as exc:
        raise InterlockError(
            f"{mapping.source} {event_type} {webhook_id}: {exc}", reason=Reason.MAPPING_FAILED
        ) from exc
