"""The simulated company's records: a company as both systems know it, and its ERP row."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FIRST",
    "LAST",
    "SUFFIX",
    "WORDS",
    "CompanyRecord",
    "customer_row",
    "product_row",
]


@dataclass
class CompanyRecord:
    """A company: its CRM record id, ERP customer number and identity evidence."""

    company_id: str
    customer_number: str
    name: str
    domain: str
    tax_id: str
    contacts: list[str] = field(default_factory=list)
    on_hold: bool = False


WORDS = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Wonka",
    "Gringotts",
    "Oscorp",
    "Monarch",
)
SUFFIX = ("GmbH", "AG", "Ltd", "Inc", "BV", "SAS", "Oy")
FIRST = ("Ada", "Alan", "Grace", "Linus", "Edsger", "Barbara", "Ken", "Margaret", "Donald")
LAST = ("Lovelace", "Turing", "Hopper", "Torvalds", "Dijkstra", "Liskov", "Thompson", "Knuth")


def customer_row(acct: CompanyRecord, **changes: Any) -> dict[str, Any]:
    """The ERP customers row of an account (the ERP's view of the company)."""
    row = {
        "customer_number": acct.customer_number,
        "name": acct.name,
        "legal_name": acct.name,
        "tax_id": acct.tax_id,
        "payment_terms": "N30",
        "credit_limit_minor": 5_000_000,
        "credit_hold": False,
        "currency": "EUR",
        "web_domain": acct.domain,
        "phone": None,
        "crm_id": acct.company_id,
        "billing_line1": "Hauptstr. 1",
        "billing_city": "Berlin",
        "billing_postal_code": "10115",
        "billing_country": "DE",
        "shipping_line1": "Lagerweg 7",
        "shipping_city": "Berlin",
        "shipping_postal_code": "10117",
        "shipping_country": "DE",
        "updated_at": None,
    }
    row.update(changes)
    return row


def product_row(sku: str, price_minor: int) -> dict[str, Any]:
    """The ERP products row of an item (prices in minor units, as the ERP stores them)."""
    return {
        "sku": sku,
        "item_number": f"IT{sku[4:]}",
        "name": f"Part {sku}",
        "description": None,
        "unit_of_measure": "EA",
        "unit_price_minor": price_minor,
        "currency": "EUR",
        "active": True,
        "updated_at": None,
    }
