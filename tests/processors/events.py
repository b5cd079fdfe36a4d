"""Canonical events for the processors' tests, built the way the connectors build them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from contracts import (
    Account,
    AccountEvent,
    Address,
    InvoiceEvent,
    Order,
    OrderEvent,
    Quote,
    QuoteEvent,
    QuoteLine,
    Source,
    deterministic_event_id,
)
from contracts.models import Invoice, Shipment, ShipmentEvent

__all__ = [
    "account_event",
    "erp_order_event",
    "invoice_event",
    "line_event",
    "quote_event",
    "shipment_event",
    "vague_account_match",
]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ADDRESS = Address(line1="1 Harbor Way", city="Rotterdam", postal_code="3011", country_code="NL")


def _source(system: str, record_id: str, at: datetime) -> Source:
    vendor = "hubspot" if system == "crm" else "pg-erp"
    return Source(system=system, vendor=vendor, record_id=record_id, changed_at=at)  # type: ignore[arg-type]


def account_event(
    account_id: str,
    system: str = "erp",
    *,
    version: int = 1,
    changed_fields: list[str] | None = None,
    origin: str | None = None,
    **fields: Any,
) -> AccountEvent:
    """An account change from ``system``; by default a fully linked, orderable ERP customer."""
    at = T0 + timedelta(seconds=version)
    if not fields:
        fields = {
            "erp_customer_number": f"C-{account_id}",
            "currency": "EUR",
            "payment_terms": "NET30",
            "credit_hold": False,
            "billing_address": ADDRESS,
        }
    return AccountEvent(
        event_id=deterministic_event_id(system, "account", account_id, str(version)),
        event_type="AccountChanged",
        source=_source(system, account_id, at),
        correlation_id=account_id,
        occurred_at=at,
        origin=origin,
        changed_fields=changed_fields or [],
        payload=Account(account_id=account_id, **fields),
    )


def vague_account_match() -> tuple[AccountEvent, AccountEvent]:
    """Initech in the CRM and in the ERP: alike, but too vaguely for the worker to link alone."""
    crm = account_event("crm-initech", "crm", crm_record_id="co-8", name="Initech")
    erp = account_event(
        "erp-initech", "erp", version=2, erp_customer_number="C-88", legal_name="Initech Ltd",
        currency="EUR", payment_terms="NET30", credit_hold=False,
    )  # fmt: skip
    return crm, erp


def quote_event(
    quote_id: str,
    account_id: str,
    *,
    revision: int = 1,
    status: str = "ACCEPTED",
    version: int = 1,
    lines: int | list[QuoteLine] = 2,
    **fields: Any,
) -> QuoteEvent:
    """A CRM quote change; accepted, valid and complete by default."""
    at = T0 + timedelta(minutes=revision, seconds=version)
    quote_lines = lines if isinstance(lines, list) else [
        QuoteLine(
            line_number=i,
            product_id=f"P-{i}",
            sku=f"SKU-{i}",
            quantity=Decimal("2"),
            unit_price=Decimal("10.00"),
        )
        for i in range(1, lines + 1)
    ]  # fmt: skip
    values: dict[str, Any] = {
        "crm_deal_id": f"deal-{quote_id}",
        "currency": "EUR",
        "payment_terms": "NET30",
        "ship_to": ADDRESS,
        "lines": quote_lines,
        "accepted_at": at if status == "ACCEPTED" else None,
        **fields,
    }
    return QuoteEvent(
        event_id=deterministic_event_id(
            "crm", "quote", quote_id, str(revision), status, str(version)
        ),
        event_type="QuoteAccepted" if status == "ACCEPTED" else "QuoteChanged",
        source=_source("crm", quote_id, at),
        correlation_id=quote_id,
        occurred_at=at,
        payload=Quote(
            quote_id=quote_id, revision=revision, account_id=account_id, status=status, **values
        ),  # type: ignore[arg-type]
    )


def line_event(
    quote_id: str,
    account_id: str,
    number: int,
    *,
    revision: int = 1,
    deleted: bool = False,
    **fields: Any,
) -> QuoteEvent:
    """A line item's own event (HubSpot line items): the quote id, its revision and one line,
    no quote status; a property change carries only that property."""
    event = quote_event(
        quote_id,
        account_id,
        revision=revision,
        status="SENT",
        lines=[QuoteLine(line_number=number, **fields)],
        version=10 + number + int(fields.get("quantity", 0)) + 100 * deleted,
    )
    payload = event.payload.model_copy(update={"status": None, "ship_to": None})
    kind = "QuoteLineDeleted" if deleted else "QuoteLineChanged"
    return event.model_copy(update={"event_type": kind, "payload": payload})


def erp_order_event(
    order_id: str,
    account_id: str,
    quote_id: str | None,
    *,
    status: str = "CONFIRMED",
    number: str = "SO-1",
    version: int = 1,
    system: str = "erp",
    origin: str | None = None,
    crm_record_id: str | None = None,
    **fields: Any,
) -> OrderEvent:
    """An order change as the ERP (or, with ``system="crm"``, the CRM deal) reports it."""
    at = T0 + timedelta(hours=1, seconds=version)
    return OrderEvent(
        event_id=deterministic_event_id(system, "order", order_id, status, str(version)),
        event_type="OrderStatusChanged",
        source=_source(system, number, at),
        correlation_id=quote_id or order_id,
        occurred_at=at,
        origin=origin,
        payload=Order(
            order_id=order_id,
            account_id=account_id,
            quote_id=quote_id,
            erp_order_number=number,
            status=status,  # type: ignore[arg-type]
            crm_record_id=crm_record_id,
            **fields,
        ),
    )


def shipment_event(account_id: str, order_id: str, number: str, tracking: str) -> ShipmentEvent:
    at = T0 + timedelta(hours=2)
    return ShipmentEvent(
        event_id=deterministic_event_id("erp", "shipment", number, tracking),
        event_type="ShipmentShipped",
        source=_source("erp", f"SH-{number}", at),
        correlation_id=order_id,
        occurred_at=at,
        payload=Shipment(
            shipment_id=f"sh-{number}",
            account_id=account_id,
            order_id=order_id,
            erp_order_number=number,
            status="SHIPPED",
            carrier="DHL",
            tracking_number=tracking,
        ),
    )


def invoice_event(account_id: str, order_id: str, number: str, status: str) -> InvoiceEvent:
    at = T0 + timedelta(hours=3)
    return InvoiceEvent(
        event_id=deterministic_event_id("erp", "invoice", number, status),
        event_type="InvoiceIssued",
        source=_source("erp", f"INV-{number}", at),
        correlation_id=order_id,
        occurred_at=at,
        payload=Invoice(
            invoice_id=f"inv-{number}",
            account_id=account_id,
            order_id=order_id,
            erp_invoice_number=f"INV-{number}",
            erp_order_number=number,
            status=status,  # type: ignore[arg-type]
        ),
    )


ACCOUNT_STATE: dict[str, Any] = {
    "account_id": "a",
    "erp_customer_number": "C1",
    "currency": "EUR",
    "payment_terms": "NET30",
    "credit_hold": False,
}
"""An account's identity state as the quote flow reads it (unit tests of the domain)."""
