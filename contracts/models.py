"""Typed Python mirrors of the canonical Avro contracts, so domain code works on models, not dicts.

One pydantic model per Avro record of the latest contract version; a parity test keeps them in
step with the ``.avsc`` files. Money is ``Decimal``, instants are timezone-aware ``datetime``,
calendar days are ``date``, enums are ``Literal`` of their symbols (a reader with a newer enum
maps unknown symbols to ``UNKNOWN``). Payload instants are timestamp-millis (sub-millisecond
digits are dropped on the wire); envelope instants are timestamp-micros. Models are frozen.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "EVENT_MODELS",
    "Account",
    "AccountEvent",
    "Address",
    "CanonicalModel",
    "Contact",
    "ContactEvent",
    "Envelope",
    "Invoice",
    "InvoiceEvent",
    "InvoiceStatus",
    "LifecycleStage",
    "Order",
    "OrderEvent",
    "OrderLine",
    "OrderStatus",
    "Product",
    "ProductEvent",
    "Quote",
    "QuoteEvent",
    "QuoteLine",
    "QuoteStatus",
    "Shipment",
    "ShipmentEvent",
    "ShipmentLine",
    "ShipmentStatus",
    "Source",
    "SourceSystem",
]

SourceSystem = Literal["unknown", "crm", "erp"]
LifecycleStage = Literal[
    "UNKNOWN", "SUBSCRIBER", "LEAD", "QUALIFIED_LEAD", "OPPORTUNITY", "CUSTOMER", "EVANGELIST",
    "CHURNED", "OTHER",
]  # fmt: skip
QuoteStatus = Literal[
    "UNKNOWN", "DRAFT", "PENDING_APPROVAL", "APPROVED", "SENT", "ACCEPTED", "REJECTED",
    "WITHDRAWN", "EXPIRED",
]  # fmt: skip
OrderStatus = Literal[
    "UNKNOWN", "REQUESTED", "CONFIRMED", "ON_CREDIT_HOLD", "RELEASED", "PARTIALLY_SHIPPED",
    "SHIPPED", "INVOICED", "PAID", "CANCELLED", "REJECTED",
]  # fmt: skip
InvoiceStatus = Literal[
    "UNKNOWN", "DRAFT", "ISSUED", "PARTIALLY_PAID", "PAID", "OVERDUE", "VOID", "CREDITED",
]  # fmt: skip
ShipmentStatus = Literal[
    "UNKNOWN", "PENDING", "PICKED", "SHIPPED", "IN_TRANSIT", "DELIVERED", "RETURNED", "CANCELLED",
]  # fmt: skip


class CanonicalModel(BaseModel):
    """Base of every contract model: frozen, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Address(CanonicalModel):
    """A postal address as both systems need it for shipping, billing and tax."""

    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country_code: str | None = None


class Source(CanonicalModel):
    """The system record an event was derived from."""

    system: SourceSystem
    vendor: str
    instance: str | None = None
    record_id: str
    changed_at: AwareDatetime | None = None


class Account(CanonicalModel):
    """A customer company: CRM account and ERP customer as one canonical record."""

    account_id: str
    crm_record_id: str | None = None
    erp_customer_number: str | None = None
    name: str | None = None
    legal_name: str | None = None
    web_domain: str | None = None
    industry: str | None = None
    phone: str | None = None
    owner: str | None = None
    lifecycle_stage: LifecycleStage | None = None
    tax_id: str | None = None
    billing_address: Address | None = None
    shipping_address: Address | None = None
    currency: str | None = None
    payment_terms: str | None = None
    credit_limit: Decimal | None = None
    credit_hold: bool | None = None
    deleted: bool | None = None
    updated_at: AwareDatetime | None = None


class Contact(CanonicalModel):
    """A person at a customer: CRM contact and ERP customer contact."""

    contact_id: str
    account_id: str
    crm_record_id: str | None = None
    erp_contact_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    job_title: str | None = None
    owner: str | None = None
    lifecycle_stage: LifecycleStage | None = None
    is_billing_contact: bool | None = None
    is_shipping_contact: bool | None = None
    mailing_address: Address | None = None
    deleted: bool | None = None
    updated_at: AwareDatetime | None = None


class Product(CanonicalModel):
    """A sellable item: ERP item master mirrored into the CRM product library."""

    product_id: str
    sku: str | None = None
    crm_record_id: str | None = None
    erp_item_number: str | None = None
    name: str | None = None
    description: str | None = None
    family: str | None = None
    unit_of_measure: str | None = None
    currency: str | None = None
    list_price: Decimal | None = None
    taxable: bool | None = None
    tax_code: str | None = None
    active: bool | None = None
    updated_at: AwareDatetime | None = None


class QuoteLine(CanonicalModel):
    """One line of a quote."""

    line_number: int
    product_id: str | None = None
    sku: str | None = None
    description: str | None = None
    quantity: Decimal | None = None
    unit_of_measure: str | None = None
    unit_price: Decimal | None = None
    discount_percent: Decimal | None = None
    discount_amount: Decimal | None = None
    tax_amount: Decimal | None = None
    line_total: Decimal | None = None
    requested_date: date | None = None


class Quote(CanonicalModel):
    """A CRM quote; its acceptance is what creates the ERP order."""

    quote_id: str
    revision: int
    account_id: str
    crm_record_id: str | None = None
    crm_deal_id: str | None = None
    erp_customer_number: str | None = None
    contact_id: str | None = None
    name: str | None = None
    status: QuoteStatus | None = None
    owner: str | None = None
    currency: str | None = None
    lines: list[QuoteLine] = Field(default_factory=list)
    subtotal: Decimal | None = None
    discount_total: Decimal | None = None
    tax_total: Decimal | None = None
    total: Decimal | None = None
    payment_terms: str | None = None
    customer_po_number: str | None = None
    bill_to: Address | None = None
    ship_to: Address | None = None
    valid_until: date | None = None
    requested_date: date | None = None
    sent_at: AwareDatetime | None = None
    accepted_at: AwareDatetime | None = None
    accepted_by: str | None = None
    updated_at: AwareDatetime | None = None


class OrderLine(QuoteLine):
    """One line of an order: a quote line plus what the ERP promised and shipped."""

    erp_item_number: str | None = None
    promised_date: date | None = None
    quantity_shipped: Decimal | None = None


class Order(CanonicalModel):
    """A sales order: created in the ERP from an accepted quote, its status reported to the CRM."""

    order_id: str
    account_id: str
    quote_id: str | None = None
    quote_revision: int | None = None
    crm_record_id: str | None = None
    erp_order_number: str | None = None
    erp_customer_number: str | None = None
    customer_po_number: str | None = None
    status: OrderStatus | None = None
    status_reason: str | None = None
    owner: str | None = None
    currency: str | None = None
    lines: list[OrderLine] = Field(default_factory=list)
    subtotal: Decimal | None = None
    discount_total: Decimal | None = None
    tax_total: Decimal | None = None
    shipping_total: Decimal | None = None
    total: Decimal | None = None
    payment_terms: str | None = None
    credit_hold: bool | None = None
    bill_to: Address | None = None
    ship_to: Address | None = None
    requested_date: date | None = None
    promised_date: date | None = None
    ordered_at: AwareDatetime | None = None
    confirmed_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None


class Invoice(CanonicalModel):
    """An ERP invoice for an order, reported back to the CRM."""

    invoice_id: str
    account_id: str
    order_id: str | None = None
    erp_invoice_number: str | None = None
    erp_order_number: str | None = None
    erp_customer_number: str | None = None
    crm_record_id: str | None = None
    status: InvoiceStatus | None = None
    currency: str | None = None
    subtotal: Decimal | None = None
    tax_total: Decimal | None = None
    total: Decimal | None = None
    amount_paid: Decimal | None = None
    amount_due: Decimal | None = None
    payment_terms: str | None = None
    tax_id: str | None = None
    bill_to: Address | None = None
    issued_date: date | None = None
    due_date: date | None = None
    paid_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None


class ShipmentLine(CanonicalModel):
    """Quantity of one order line in a shipment."""

    order_line_number: int
    sku: str | None = None
    quantity: Decimal | None = None


class Shipment(CanonicalModel):
    """A shipment of (part of) an order, with carrier tracking, reported back to the CRM."""

    shipment_id: str
    account_id: str
    order_id: str | None = None
    erp_shipment_number: str | None = None
    erp_order_number: str | None = None
    status: ShipmentStatus | None = None
    carrier: str | None = None
    service_level: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    lines: list[ShipmentLine] = Field(default_factory=list)
    ship_to: Address | None = None
    shipped_at: AwareDatetime | None = None
    estimated_delivery_date: date | None = None
    delivered_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Envelope(CanonicalModel):
    """Fields every canonical event carries: identity, lineage, timing, origin, partial-change set.

    Subclasses add a typed ``payload`` and set ``ENTITY``; ``entity`` and ``schema_version``
    default to that entity and the version the model mirrors.
    """

    ENTITY: ClassVar[str] = ""
    SCHEMA_VERSION: ClassVar[int] = 1

    event_id: str
    event_type: str
    entity: str = ""
    schema_version: int = 1
    source: Source
    correlation_id: str
    causation_id: str | None = None
    occurred_at: AwareDatetime
    ingested_at: AwareDatetime = Field(default_factory=_utc_now)
    origin: str | None = None
    changed_fields: list[str] = Field(default_factory=list)
    payload: CanonicalModel


class AccountEvent(Envelope):
    """An account change (AccountChanged, AccountCreditHoldChanged, ...)."""

    ENTITY: ClassVar[str] = "account"
    entity: str = "account"
    payload: Account


class ContactEvent(Envelope):
    """A contact change (ContactChanged, ...)."""

    ENTITY: ClassVar[str] = "contact"
    entity: str = "contact"
    payload: Contact


class ProductEvent(Envelope):
    """A product change (ProductChanged, ...)."""

    ENTITY: ClassVar[str] = "product"
    entity: str = "product"
    payload: Product


class QuoteEvent(Envelope):
    """A quote change (QuoteChanged, QuoteAccepted, QuoteWithdrawn, ...)."""

    ENTITY: ClassVar[str] = "quote"
    entity: str = "quote"
    payload: Quote


class OrderEvent(Envelope):
    """An order change (OrderRequested, OrderStatusChanged, ...)."""

    ENTITY: ClassVar[str] = "order"
    entity: str = "order"
    payload: Order


class InvoiceEvent(Envelope):
    """An invoice change (InvoiceIssued, InvoicePaid, ...)."""

    ENTITY: ClassVar[str] = "invoice"
    entity: str = "invoice"
    payload: Invoice


class ShipmentEvent(Envelope):
    """A shipment change (ShipmentShipped, ShipmentDelivered, ...)."""

    ENTITY: ClassVar[str] = "shipment"
    entity: str = "shipment"
    payload: Shipment


EVENT_MODELS: dict[str, type[Envelope]] = {cls.ENTITY: cls for cls in Envelope.__subclasses__()}
"""Event model per entity name, as used in topic catalog ``contract:`` fields."""
