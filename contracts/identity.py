"""How CRM records become canonical ids, so every event of one company lands on one partition.

Canonical topics are keyed (and co-partitioned) by the canonical account id. A CRM company is
named by its natural key ``crm:<vendor>:<record id>`` (e.g. ``crm:hubspot:4711``); the canonical
id is a uuid5 of that key (:func:`contracts.deterministic_event_id`), so the same company always
gets the same id, on every instance and after every replay. Contacts and quotes carry the
account id of the company they belong to. The portal / tenant is deliberately not part of the
key: one Interlock deployment integrates one CRM instance.
"""

from __future__ import annotations

from contracts import deterministic_event_id

__all__ = [
    "UNASSIGNED_ACCOUNT",
    "crm_account_id",
    "crm_contact_id",
    "crm_event_id",
    "crm_natural_key",
    "crm_quote_id",
]

#: Account id of a contact whose company is not known yet (HubSpot does not send associations).
UNASSIGNED_ACCOUNT = "unassigned"


def crm_natural_key(vendor: str, kind: str, record_id: str) -> str:
    """``crm:<vendor>:<record id>`` for companies, ``crm:<vendor>:<kind>:<record id>`` else."""
    if kind == "company":
        return f"crm:{vendor}:{record_id}"
    return f"crm:{vendor}:{kind}:{record_id}"


def crm_account_id(vendor: str, company_id: str) -> str:
    """The canonical account id of a CRM company."""
    return deterministic_event_id("account", crm_natural_key(vendor, "company", company_id))


def crm_contact_id(vendor: str, contact_id: str) -> str:
    """The canonical contact id of a CRM contact."""
    return deterministic_event_id("contact", crm_natural_key(vendor, "contact", contact_id))


def crm_quote_id(vendor: str, deal_id: str) -> str:
    """The canonical quote id of a CRM deal: the deal is the quote of record."""
    return deterministic_event_id("quote", crm_natural_key(vendor, "deal", deal_id))


def crm_event_id(vendor: str, source: str, event_id: str) -> str:
    """The canonical event id of a webhook event: the same delivery id gives the same id."""
    return deterministic_event_id("crm", vendor, source, event_id)
