"""The wire conventions the simulator shares with the connectors and processors, in one place.

``ops`` may not import ``connectors``, so the few conventions the simulator must speak exactly
(canonical ids of CRM records, the receiver's paths, the fake APIs' paths, the raw topics the CDC
consumer reads, where business-invalid quotes are dead-lettered) are restated here and checked
against the connectors' code by the tests and by the report of each run.
"""

from __future__ import annotations

from typing import Final

from contracts import deterministic_event_id

__all__ = [
    "CDC_TABLES",
    "CRM_DEALS_PATH",
    "CRM_OWNED_COMPANY_PROPERTIES",
    "CRM_VENDOR",
    "ECHO_CHANGE_SOURCE",
    "ERP_ORDERS_PATH",
    "ERP_ORDER_STATUS",
    "HUBSPOT_PATH",
    "QUOTE_DLQ_TOPIC",
    "STANDARD_PATH",
    "VALIDATION_REASON_PREFIX",
    "cdc_topic",
    "crm_account_id",
    "crm_quote_id",
    "erp_account_id",
]

CRM_VENDOR: Final = "hubspot"
#: Receiver paths below ``--webhooks-url``.
HUBSPOT_PATH: Final = "/webhooks/hubspot"
STANDARD_PATH: Final = "/webhooks/standard/{source}"
#: The fake ERP API as the sinks call it (connectors/sinks/contract.py): ``POST /orders``,
#: ``PATCH /orders/{number}``, ``POST /orders/{number}/cancel``; the CRM: ``PATCH /deals/{id}``.
ERP_ORDERS_PATH: Final = "/orders"
CRM_DEALS_PATH: Final = "/deals"
#: ERP sales order status code → canonical order status (connectors/mappings/erp/sales_orders).
ERP_ORDER_STATUS: Final = {
    "OPEN": "REQUESTED",
    "CONFIRMED": "CONFIRMED",
    "HOLD": "ON_CREDIT_HOLD",
    "RELEASED": "RELEASED",
    "SHIPPED": "SHIPPED",
    "INVOICED": "INVOICED",
    "CANCELLED": "CANCELLED",
}
#: HubSpot marks a change made through an app's API with this source and the app id as sourceId.
ECHO_CHANGE_SOURCE: Final = "INTEGRATION"
#: ERP tables the simulator writes change events for (Debezium topics ``raw.erp.<table>``).
CDC_TABLES: Final = ("customers", "products", "sales_orders", "shipments", "invoices")
#: Where the processors dead-letter a quote that breaks a business rule, and the reason family.
QUOTE_DLQ_TOPIC: Final = "dlq.canonical.quote.v1"
VALIDATION_REASON_PREFIX: Final = "VALIDATION"
#: HubSpot company properties whose canonical fields the CRM owns (contracts/ownership.yaml).
CRM_OWNED_COMPANY_PROPERTIES: Final = frozenset(
    {"name", "domain", "industry", "phone", "hubspot_owner_id", "lifecyclestage"}
)


def cdc_topic(table: str, prefix: str = "raw.erp.") -> str:
    """The topic the CDC consumer reads for ``table``."""
    return f"{prefix}{table}"


def crm_account_id(company_id: str, vendor: str = CRM_VENDOR) -> str:
    """Canonical account id of a CRM company (as ``connectors.webhooks.identity``)."""
    return deterministic_event_id("account", f"crm:{vendor}:{company_id}")


def crm_quote_id(deal_id: str, vendor: str = CRM_VENDOR) -> str:
    """Canonical quote id of a CRM deal: the deal is the quote of record.

    ``vendor`` is ``hubspot``, or the ``vendor`` of a Standard-Webhooks mapping (``acme``).
    """
    return deterministic_event_id("quote", f"crm:{vendor}:deal:{deal_id}")


def erp_account_id(customer_number: str) -> str:
    """Canonical account id the ERP customer mapping derives from a customer number."""
    return deterministic_event_id("canonical", "account", "erp", customer_number)
