"""Status write-back: ERP order, shipment and invoice changes become CRM deal updates.

Also recognises the CRM's echo of our own write-back, so that it is not propagated again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, NamedTuple, cast

from contracts.ids import deterministic_event_id
from contracts.models import (
    Envelope,
    InvoiceEvent,
    OrderEvent,
    OrderStatus,
    ShipmentEvent,
)
from processors.domain.quotes import ORDER_DEFAULTS, build_order_event

__all__ = [
    "WRITTEN_AT",
    "WRITTEN_IN",
    "DealWrite",
    "deal_shows",
    "deal_update",
    "deal_write_of",
    "echo_reason",
    "fold_written",
    "written_values",
]

AT = "_at"
"""Key of the ERP change time of the latest write in a deal's written state."""

_SHIPPED = frozenset({"SHIPPED", "IN_TRANSIT", "DELIVERED"})
_INVOICE_STATUS: dict[str, OrderStatus] = {
    "ISSUED": "INVOICED",
    "OVERDUE": "INVOICED",
    "PARTIALLY_PAID": "INVOICED",
    "PAID": "PAID",
}
#: Deal fields a write-back sets, compared to recognise the CRM's echo of it.
ECHO_FIELDS = ("status", "erp_order_number", "promised_date", "credit_hold", "status_reason")


def deal_update(
    event: OrderEvent | ShipmentEvent | InvoiceEvent,
    order_state: Mapping[str, Any],
    origin: str = "interlock",
) -> OrderEvent | None:
    """The ``commands.crm.update-deal`` for an ERP change of a correlated order, or None.

    ``order_state`` is the quote's order state (deal id, correlation id, quote revision, and
    the ERP order number once known). The command's time is the ERP change time.
    """
    fields: dict[str, Any] = {}
    if isinstance(event, OrderEvent):
        order = event.payload
        if order.status in (None, "UNKNOWN", "REQUESTED"):
            return None
        fields = {
            "status": order.status,
            "promised_date": order.promised_date,
            "credit_hold": order.credit_hold
            if order.credit_hold is not None
            else (order.status == "ON_CREDIT_HOLD"),
            "status_reason": order.status_reason,
            "erp_order_number": order.erp_order_number,
        }
    elif isinstance(event, ShipmentEvent):
        shipment = event.payload
        if shipment.status not in _SHIPPED:
            return None
        tracking = " ".join(p for p in (shipment.carrier, shipment.tracking_number) if p)
        fields = {
            "status": "SHIPPED",
            "status_reason": f"shipped {tracking}".strip(),
            "erp_order_number": shipment.erp_order_number,
        }
    else:
        invoice = event.payload
        mapped = _INVOICE_STATUS.get(invoice.status or "")
        if mapped is None:
            return None
        fields = {
            "status": mapped,
            "status_reason": f"invoice {invoice.erp_invoice_number or invoice.invoice_id} "
            f"{invoice.status}",
            "erp_order_number": invoice.erp_order_number,
        }
    fields["erp_order_number"] = fields.get("erp_order_number") or order_state.get(
        "erp_order_number"
    )
    changed = sorted(k for k, v in fields.items() if v is not None)
    # Built as the Avro-shaped dict and wrapped by the contracts' trusted builder (as
    # ``processors.domain.quotes.build_order_command`` does): every value is copied from the
    # already validated ERP event or from the quote's order state, which the worker wrote.
    payload = {
        **ORDER_DEFAULTS,
        "order_id": str(order_state["order_id"]),
        "account_id": str(order_state.get("account_id") or event.payload.account_id),
        "quote_id": order_state.get("quote_id"),
        "quote_revision": order_state.get("revision"),
        "crm_record_id": order_state.get("deal_id"),
        **{k: v for k, v in fields.items() if v is not None},
    }
    command = build_order_event(
        {
            "event_id": deterministic_event_id("update-deal", event.event_id),
            "event_type": "DealStatusUpdateRequested",
            "entity": "order",
            "schema_version": OrderEvent.SCHEMA_VERSION,
            "source": event.source.__dict__.copy(),
            "correlation_id": str(order_state.get("correlation_id") or event.correlation_id),
            "causation_id": event.event_id,
            "occurred_at": event.source.changed_at or event.occurred_at,
            "ingested_at": event.ingested_at,
            "origin": origin,
            "changed_fields": changed,
            "payload": payload,
        }
    )
    return cast(OrderEvent, command)


class DealWrite(NamedTuple):
    """What one update-deal command writes, as its read-back folds it (:func:`fold_written`,
    ``processors.domain.reconcile.fold_told``): the same from the command decoded or from the
    read-back header it was produced with (``processors.readback``)."""

    deal_id: str | None
    quote_id: str | None
    account_id: str
    order_id: str
    values: dict[str, Any]
    """:func:`written_values`"""
    changed: tuple[str, ...]
    """The command's ``changed_fields``."""
    at: datetime
    """The command's ``occurred_at``."""
    cause: str | None

    @property
    def status(self) -> Any:
        """The status written, if the command writes one."""
        return self.values.get("status")


def deal_write_of(command: OrderEvent) -> DealWrite:
    """What ``command`` writes to its deal."""
    order = command.payload
    return DealWrite(
        order.crm_record_id,
        order.quote_id,
        order.account_id,
        order.order_id,
        written_values(command),
        tuple(command.changed_fields),
        command.occurred_at,
        command.causation_id,
    )


def written_values(command: OrderEvent) -> dict[str, Any]:
    """What an update-deal command writes to the deal, as JSON values (kept to spot echoes):
    the values ``model_dump(mode="json")`` gives (a date as its ISO text), of those fields only."""
    values = command.payload.__dict__
    return {k: _json(values.get(k)) for k in ECHO_FIELDS if k in command.changed_fields}


def _json(value: Any) -> Any:
    return value.isoformat() if type(value) is date else value


RECENT = "_recent"
"""Key of the deal's earlier written states (newest first), so late echoes are recognised."""
KEEP_RECENT = 4
WRITTEN_AT = "_written_at"
"""Key of the wall-clock time a deal's last write became durable (the table's expiry clock)."""
WRITTEN_IN = "_partition"
"""Key of the partition whose changelog holds the deal's entry (swept by that partition's tick)."""
_BOOKKEEPING = (WRITTEN_AT, WRITTEN_IN)


def fold_written(shown: Mapping[str, Any] | None, write: DealWrite) -> dict[str, Any]:
    """What the deal shows after the update-deal that writes ``write``: an update-deal
    PATCHes only the fields it sends, so the deal keeps the others; ``_at`` is the newest ERP
    change time written, ``_recent`` the states it showed before (an echo of one of them may
    still be on its way)."""
    before = {k: v for k, v in (shown or {}).items() if k not in _BOOKKEEPING}
    earlier = before.pop(RECENT, [])
    state = {**before, **write.values}
    at = write.at
    previous = before.get(AT)
    if previous is None or datetime.fromisoformat(previous) < at:
        state[AT] = at.isoformat()
    if before:
        state[RECENT] = [{k: v for k, v in before.items() if k != AT}, *earlier][:KEEP_RECENT]
    return state


def deal_shows(shown: Mapping[str, Any] | None, write: DealWrite) -> str | None:
    """Why the update-deal that writes ``write`` would add nothing (``same values`` or
    ``stale``), else None.

    Same values: the deal already shows every field the command sets (e.g. the ERP's answer
    to an amend repeats the status the order change already wrote). Stale: the command
    reports an ERP change older than one already written, with other values (an answer or a
    redelivered change overtaken by a newer status); writing it would move the deal back.
    """
    if not shown:
        return None
    values = write.values
    if all(shown.get(k) == v for k, v in values.items()):
        return "same values"
    at = shown.get(AT)
    if at is None:
        return None
    shown_at = datetime.fromisoformat(at)
    if write.at < shown_at:
        return "stale"
    if write.at == shown_at and _behind(values.get("status"), shown.get("status")):
        # Changes of one instant (an ERP that ships and invoices in one transaction, change
        # times in milliseconds): the step further along the lifecycle wins, whichever table's
        # change came first. Otherwise a deal showed INVOICED, then SHIPPED again, then
        # INVOICED, as the shipment, invoice and order topics were read in another order.
        return "stale"
    return None


LIFECYCLE_RANK = {"CONFIRMED": 0, "SHIPPED": 1, "INVOICED": 2, "PAID": 3}
"""How far an order went; holds and cancellations are not on this line (never tie-broken)."""


def _behind(status: Any, shown: Any) -> bool:
    new, old = LIFECYCLE_RANK.get(str(status)), LIFECYCLE_RANK.get(str(shown))
    return new is not None and old is not None and new < old


def echo_reason(
    event: Envelope, last_written: Mapping[str, Any] | None, origin: str = "interlock"
) -> str | None:
    """Why a CRM change is the echo of our own write-back (``origin`` or ``values``), or None.

    Only CRM changes can be echoes: Interlock writes to the CRM only through update-deal.
    By values: a CRM deal change whose every deal field we write equals what we last wrote,
    or what one of the few writes before it left (its echo may come after a newer write).
    """
    if event.source.system != "crm":
        return None
    if event.origin == origin:
        return "origin"
    if not last_written or not isinstance(event, OrderEvent):
        return None
    dumped = event.payload.model_dump(mode="json")
    present = {k: dumped[k] for k in ECHO_FIELDS if dumped.get(k) is not None}
    if not present:
        return None
    # the latest state we wrote, or one before it whose echo arrives after a newer write
    for state in (last_written, *last_written.get(RECENT, ())):
        if all(state.get(k) == v for k, v in present.items()):
            return "values"
    return None
