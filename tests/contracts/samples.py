"""Realistic sample events of every entity, filled in so round trips exercise every type."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from contracts import (
    Account,
    AccountEvent,
    Address,
    Contact,
    ContactEvent,
    Envelope,
    Invoice,
    InvoiceEvent,
    Order,
    OrderEvent,
    OrderLine,
    Product,
    ProductEvent,
    Quote,
    QuoteEvent,
    QuoteLine,
    Shipment,
    ShipmentEvent,
    ShipmentLine,
    Source,
    deterministic_event_id,
)
from contracts.models import CanonicalModel

AT = datetime(2025, 3, 14, 15, 9, 26, 535000, tzinfo=UTC)
ADDRESS = Address(line1="1 Harbor Way", city="Rotterdam", postal_code="3011", country_code="NL")


def envelope_fields(system: str, record_id: str, event_type: str) -> dict[str, object]:
    """Envelope values of a change to ``record_id`` in ``system``."""
    return {
        "event_id": deterministic_event_id(system, record_id, "42"),
        "event_type": event_type,
        "source": Source(
            system=system,
            vendor="hubspot" if system == "crm" else "pg-erp",
            instance="eu-1",
            record_id=record_id,
            changed_at=AT,
        ),
        "correlation_id": "corr-1",
        "causation_id": None,
        "occurred_at": AT.replace(microsecond=535897),
        "ingested_at": AT.replace(second=27, microsecond=1),
        "origin": None,
        "changed_fields": [],
    }


def _lines(cls: type[CanonicalModel], n: int) -> list[CanonicalModel]:
    extra = {"promised_date": date(2025, 4, 2)} if cls is OrderLine else {}
    return [
        cls(
            line_number=i,
            sku=f"SKU-{i}",
            description="Pump housing",
            quantity=Decimal("2"),
            unit_price=Decimal("149.9900"),
            discount_percent=Decimal("7.5"),
            line_total=Decimal("277.4815"),
            requested_date=date(2025, 4, 1),
            **extra,
        )
        for i in range(1, n + 1)
    ]


def sample_events() -> dict[str, Envelope]:
    """One filled-in event per entity."""
    return {
        "account": AccountEvent(
            **envelope_fields("crm", "co-1", "AccountChanged"),  # type: ignore[arg-type]
            payload=Account(
                account_id="acc-1",
                crm_record_id="co-1",
                name="Acme BV",
                web_domain="acme.example",
                owner="ana@example.com",
                lifecycle_stage="CUSTOMER",
                billing_address=ADDRESS,
                shipping_address=ADDRESS,
                credit_limit=Decimal("50000.00"),
                credit_hold=False,
                currency="EUR",
                payment_terms="NET30",
                updated_at=AT,
            ),
        ),
        "contact": ContactEvent(
            **envelope_fields("crm", "ct-1", "ContactChanged"),  # type: ignore[arg-type]
            payload=Contact(
                contact_id="con-1",
                account_id="acc-1",
                email="bo@acme.example",
                first_name="Bo",
                lifecycle_stage="LEAD",
                mailing_address=ADDRESS,
            ),
        ),
        "product": ProductEvent(
            **envelope_fields("erp", "item-9", "ProductChanged"),  # type: ignore[arg-type]
            payload=Product(
                product_id="prd-9",
                sku="SKU-9",
                name="Pump",
                list_price=Decimal("149.99"),
                currency="EUR",
                active=True,
            ),
        ),
        "quote": QuoteEvent(
            **envelope_fields("crm", "q-7", "QuoteAccepted"),  # type: ignore[arg-type]
            payload=Quote(
                quote_id="q-7",
                revision=3,
                account_id="acc-1",
                status="ACCEPTED",
                currency="EUR",
                lines=_lines(QuoteLine, 2),
                total=Decimal("554.963"),
                bill_to=ADDRESS,
                ship_to=ADDRESS,
                valid_until=date(2025, 4, 30),
                accepted_at=AT,
                accepted_by="buyer@acme.example",
            ),
        ),
        "order": OrderEvent(
            **envelope_fields("erp", "SO-1001", "OrderStatusChanged"),  # type: ignore[arg-type]
            payload=Order(
                order_id="ord-1",
                account_id="acc-1",
                quote_id="q-7",
                quote_revision=3,
                erp_order_number="SO-1001",
                status="ON_CREDIT_HOLD",
                currency="EUR",
                lines=_lines(OrderLine, 3),
                total=Decimal("832.4445"),
                credit_hold=True,
                ship_to=ADDRESS,
                promised_date=date(2025, 4, 2),
                ordered_at=AT,
            ),
        ),
        "invoice": InvoiceEvent(
            **envelope_fields("erp", "INV-5", "InvoiceIssued"),  # type: ignore[arg-type]
            payload=Invoice(
                invoice_id="inv-5",
                account_id="acc-1",
                order_id="ord-1",
                erp_invoice_number="INV-5",
                status="ISSUED",
                currency="EUR",
                total=Decimal("832.4445"),
                amount_due=Decimal("832.4445"),
                due_date=date(2025, 5, 14),
            ),
        ),
        "shipment": ShipmentEvent(
            **envelope_fields("erp", "DL-3", "ShipmentShipped"),  # type: ignore[arg-type]
            payload=Shipment(
                shipment_id="shp-3",
                account_id="acc-1",
                order_id="ord-1",
                status="SHIPPED",
                carrier="DHL",
                tracking_number="JD0146",
                lines=[ShipmentLine(order_line_number=1, quantity=Decimal("2"))],
                shipped_at=AT,
                estimated_delivery_date=date(2025, 3, 17),
            ),
        ),
    }
