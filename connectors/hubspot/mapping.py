"""HubSpot webhook events → canonical events, as pure functions (no I/O, no clock).

HubSpot sends a JSON array of events, each ``{eventId, subscriptionType, objectId, portalId,
occurredAt (ms), propertyName?, propertyValue?, changeSource?, sourceId?}``. One event becomes at
most one canonical event:

- ``company.*`` → :class:`AccountEvent` (AccountCreated / AccountChanged / AccountDeleted);
- ``contact.*`` → :class:`ContactEvent` (ContactCreated / ContactChanged / ContactDeleted);
- ``deal.*`` → :class:`QuoteEvent`; the deal is the quote of record. ``dealstage`` moving to an
  accepted stage (default ``closedwon``) → ``QuoteAccepted``;
- ``quote.*`` (HubSpot quote objects) → :class:`QuoteEvent` of their deal; ``hs_status`` in
  :data:`ACCEPTED_QUOTE_STATUSES` → ``QuoteAccepted``;
- ``line_item.*`` → ``QuoteLineChanged`` of their deal (``changed_fields=["lines"]``).

A property change carries one property, so it becomes a partial change: ``changed_fields`` names
the one canonical field it sets. Unmapped properties produce no event. HubSpot does not send
associations, so contact, deal, quote and line-item events name their company (and quotes and
line items their deal) in the extension fields ``associatedCompanyId`` / ``associatedDealId``
(added by an enrichment step or the simulator); a deal, quote or line item without its company
is a ``VALIDATION_MISSING_FIELD`` failure; a contact without one gets ``UNASSIGNED_ACCOUNT``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from contracts import (
    Account,
    AccountEvent,
    Contact,
    ContactEvent,
    Envelope,
    InterlockError,
    Quote,
    QuoteEvent,
    QuoteLine,
    Reason,
    Source,
)
from contracts.identity import (
    UNASSIGNED_ACCOUNT,
    crm_account_id,
    crm_contact_id,
    crm_event_id,
    crm_quote_id,
)

__all__ = [
    "ACCEPTED_QUOTE_STATUSES",
    "HubSpotContext",
    "MappingFailedError",
    "map_hubspot_event",
    "map_hubspot_payload",
]

VENDOR = "hubspot"
ACCEPTED_QUOTE_STATUSES = frozenset({"APPROVED", "ACCEPTED", "SIGNED"})
_LIFECYCLE = {
    "subscriber": "SUBSCRIBER",
    "lead": "LEAD",
    "marketingqualifiedlead": "QUALIFIED_LEAD",
    "salesqualifiedlead": "QUALIFIED_LEAD",
    "opportunity": "OPPORTUNITY",
    "customer": "CUSTOMER",
    "evangelist": "EVANGELIST",
    "other": "OTHER",
}
_QUOTE_STATUS = {
    "DRAFT": "DRAFT",
    "PENDING_APPROVAL": "PENDING_APPROVAL",
    "APPROVAL_NOT_NEEDED": "APPROVED",
    "APPROVED": "APPROVED",
    "REJECTED": "REJECTED",
    "SENT": "SENT",
    "ACCEPTED": "ACCEPTED",
    "SIGNED": "ACCEPTED",
    "EXPIRED": "EXPIRED",
}


class MappingFailedError(InterlockError):
    """A HubSpot event could not be mapped (permanent: dead-lettered with the raw request)."""

    reason = Reason.MAPPING_FAILED


@dataclass(frozen=True)
class HubSpotContext:
    """What a mapping needs beyond the event: when it was received, stage conventions, app id."""

    received_at: datetime
    accepted_deal_stages: frozenset[str] = field(default_factory=lambda: frozenset({"closedwon"}))
    app_id: str | None = None


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise MappingFailedError(f"not a number: {value!r}") from exc


def _lifecycle(value: Any) -> str | None:
    return None if value in (None, "") else _LIFECYCLE.get(str(value).lower(), "OTHER")


def _day(value: Any) -> date | None:
    if value in (None, ""):
        return None
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC).date()
    return date.fromisoformat(text[:10])


Convert = Callable[[Any], Any]
_COMPANY: dict[str, tuple[str, Convert]] = {
    "name": ("name", _text),
    "domain": ("web_domain", _text),
    "industry": ("industry", _text),
    "phone": ("phone", _text),
    "hubspot_owner_id": ("owner", _text),
    "lifecyclestage": ("lifecycle_stage", _lifecycle),
    "currency": ("currency", _text),
}
_CONTACT: dict[str, tuple[str, Convert]] = {
    "firstname": ("first_name", _text),
    "lastname": ("last_name", _text),
    "email": ("email", _text),
    "phone": ("phone", _text),
    "jobtitle": ("job_title", _text),
    "hubspot_owner_id": ("owner", _text),
    "lifecyclestage": ("lifecycle_stage", _lifecycle),
}
_DEAL: dict[str, tuple[str, Convert]] = {
    "dealname": ("name", _text),
    "amount": ("total", _decimal),
    "deal_currency_code": ("currency", _text),
    "hubspot_owner_id": ("owner", _text),
    "closedate": ("requested_date", _day),
}
_QUOTE: dict[str, tuple[str, Convert]] = {
    "hs_title": ("name", _text),
    "hs_currency": ("currency", _text),
    "hs_expiration_date": ("valid_until", _day),
    "hs_status": ("status", lambda v: _QUOTE_STATUS.get(str(v).upper(), "UNKNOWN")),
}
_LINE: dict[str, tuple[str, Convert]] = {
    "name": ("description", _text),
    "hs_sku": ("sku", _text),
    "quantity": ("quantity", _decimal),
    "price": ("unit_price", _decimal),
    "hs_discount_percentage": ("discount_percent", _decimal),
    "amount": ("line_total", _decimal),
}
_VERBS = {"creation": "Created", "propertyChange": "Changed", "deletion": "Deleted"}


def _properties(event: Mapping[str, Any], table: Mapping[str, tuple[str, Convert]]) -> dict:
    """Canonical fields set by the event: its one changed property, or a creation's snapshot."""
    raw: dict[str, Any] = dict(event.get("properties") or {})
    name = event.get("propertyName")
    if name is not None:
        raw[str(name)] = event.get("propertyValue")
    out: dict[str, Any] = {}
    for prop, value in raw.items():
        if prop in table:
            target, convert = table[prop]
            out[target] = convert(value)
    return out


def _required(event: Mapping[str, Any], name: str, what: str) -> str:
    value = event.get(name)
    if value in (None, ""):
        raise InterlockError(
            f"HubSpot {event.get('subscriptionType')} event {event.get('eventId')} has no "
            f"{name} ({what})",
            reason=Reason.VALIDATION_MISSING_FIELD,
        )
    return str(value)


def map_hubspot_event(event: Mapping[str, Any], ctx: HubSpotContext) -> Envelope | None:
    """One HubSpot event → one canonical event, or ``None`` when nothing canonical changed.

    Raises:
        InterlockError: ``VALIDATION_MISSING_FIELD`` (no id, no company) or ``MAPPING_FAILED``.
    """
    kind, _, action = str(_required(event, "subscriptionType", "what happened")).partition(".")
    verb = _VERBS.get(action)
    if verb is None:
        return None
    event_id = _required(event, "eventId", "delivery id")
    object_id = _required(event, "objectId", "record id")
    try:
        occurred = datetime.fromtimestamp(int(event.get("occurredAt") or 0) / 1000, UTC)
    except (TypeError, ValueError) as exc:
        raise MappingFailedError(
            f"occurredAt is not epoch ms: {event.get('occurredAt')!r}"
        ) from exc
    portal = _text(event.get("portalId"))
    source_id = _text(event.get("sourceId"))
    origin = (
        "interlock"
        if ctx.app_id is not None and source_id == ctx.app_id
        else _text(event.get("changeSource"))
    )
    envelope: dict[str, Any] = {
        "event_id": crm_event_id(VENDOR, portal or "", event_id),
        "source": Source(
            system="crm", vendor=VENDOR, instance=portal, record_id=object_id, changed_at=occurred
        ),
        "occurred_at": occurred,
        "ingested_at": ctx.received_at,
        "origin": origin,
    }
    try:
        return _build(kind, verb, event, object_id, occurred, envelope, ctx)
    except PydanticValidationError as exc:
        raise MappingFailedError(f"HubSpot {kind} event {event_id}: {exc}") from exc


def _build(
    kind: str,
    verb: str,
    event: Mapping[str, Any],
    object_id: str,
    occurred: datetime,
    envelope: dict[str, Any],
    ctx: HubSpotContext,
) -> Envelope | None:
    deleted = verb == "Deleted"
    if kind == "company":
        fields = {"deleted": True} if deleted else _properties(event, _COMPANY)
        if verb == "Created":
            fields["crm_record_id"] = object_id
        if not fields:
            return None
        account_id = crm_account_id(VENDOR, object_id)
        return AccountEvent(
            event_type=f"Account{verb}",
            correlation_id=account_id,
            changed_fields=sorted(fields),
            payload=Account(account_id=account_id, **{"crm_record_id": object_id, **fields}),
            **envelope,
        )
    if kind == "contact":
        fields = {"deleted": True} if deleted else _properties(event, _CONTACT)
        company = _text(event.get("associatedCompanyId"))
        account_id = crm_account_id(VENDOR, company) if company else UNASSIGNED_ACCOUNT
        changed = set(fields)
        if verb == "Created":
            changed |= {"account_id", "crm_record_id"}
        elif company:
            changed.add("account_id")
        if not changed:
            return None
        contact = Contact(
            contact_id=crm_contact_id(VENDOR, object_id),
            account_id=account_id,
            crm_record_id=object_id,
            **fields,
        )
        return ContactEvent(
            event_type=f"Contact{verb}",
            correlation_id=account_id,
            changed_fields=sorted(changed),
            payload=contact,
            **envelope,
        )
    if kind in ("deal", "quote", "line_item"):
        return _quote_event(kind, verb, event, object_id, occurred, envelope, ctx)
    return None


def _quote_event(
    kind: str,
    verb: str,
    event: Mapping[str, Any],
    object_id: str,
    occurred: datetime,
    envelope: dict[str, Any],
    ctx: HubSpotContext,
) -> QuoteEvent | None:
    company = _required(event, "associatedCompanyId", "the deal's company")
    deal_id = object_id if kind == "deal" else _required(event, "associatedDealId", "its deal")
    account_id = crm_account_id(VENDOR, company)
    fields: dict[str, Any]
    event_type = f"Quote{verb}"
    if kind == "line_item":
        line = _properties(event, _LINE)
        if not line and verb != "Deleted":
            return None
        position = (
            event.get("properties", {}).get("hs_position_on_quote")
            if event.get("properties")
            else None
        )
        line_number = int(position) if position not in (None, "") else int(object_id)
        fields = {"lines": [QuoteLine(line_number=line_number, **line)]}
        event_type = "QuoteLineDeleted" if verb == "Deleted" else "QuoteLineChanged"
    elif verb == "Deleted":
        fields = {"status": "WITHDRAWN"}
        event_type = "QuoteWithdrawn"
    else:
        fields = _properties(event, _DEAL if kind == "deal" else _QUOTE)
        stage = (
            str(event.get("propertyValue")) if event.get("propertyName") == "dealstage" else None
        )
        if kind == "deal" and stage is None and "dealstage" in (event.get("properties") or {}):
            stage = str(event["properties"]["dealstage"])
        status = (
            str(event.get("propertyValue")).upper()
            if event.get("propertyName") == "hs_status"
            else None
        )
        if (stage is not None and stage in ctx.accepted_deal_stages) or (
            status is not None and status in ACCEPTED_QUOTE_STATUSES
        ):
            fields.update(status="ACCEPTED", accepted_at=occurred)
            event_type = "QuoteAccepted"
        elif stage == "closedlost":
            fields["status"] = "REJECTED"
        if kind == "quote" and verb != "Created":
            fields.setdefault("crm_record_id", object_id)
        if not fields and verb != "Created":
            return None
    quote_id = crm_quote_id(VENDOR, deal_id)
    revision = int(event.get("quoteRevision") or 1)
    payload = Quote(
        quote_id=quote_id,
        revision=revision,
        account_id=account_id,
        crm_deal_id=deal_id,
        **fields,
    )
    changed = sorted({*fields, "crm_deal_id"})
    return QuoteEvent(
        event_type=event_type,
        correlation_id=quote_id,
        changed_fields=changed,
        payload=payload,
        **envelope,
    )


def map_hubspot_payload(
    events: Any, ctx: HubSpotContext
) -> list[tuple[Mapping[str, Any], Envelope | InterlockError | None]]:
    """Map every event of one request; each outcome is an event, ``None`` or the failure."""
    if not isinstance(events, list):
        events = [events]
    out: list[tuple[Mapping[str, Any], Envelope | InterlockError | None]] = []
    for event in events:
        if not isinstance(event, Mapping):
            out.append(({}, MappingFailedError(f"event is not an object: {event!r:.80}")))
            continue
        try:
            out.append((event, map_hubspot_event(event, ctx)))
        except InterlockError as exc:
            out.append((event, exc))
        except (ValueError, TypeError) as exc:
            out.append((event, MappingFailedError(f"HubSpot event {event.get('eventId')}: {exc}")))
    return out
