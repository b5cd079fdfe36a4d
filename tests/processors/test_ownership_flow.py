"""ERP changes to CRM-owned account fields are stripped (or rejected), counted and audited.

Which system owns which field is ``contracts/ownership.yaml``: the account's name is the CRM's
(an ERP rename is stripped), its credit hold the ERP's (a CRM change of it refuses the change).
"""

from __future__ import annotations

import pytest

from tests.processors.events import ADDRESS, account_event, quote_event
from tests.processors.harness import PipelineHarness, worker_config

pytestmark = pytest.mark.unit

CRM = account_event("acc-o", "crm", version=1, name="Acme BV", crm_record_id="co-1")
# The ERP renames the account (CRM-owned: stripped) and sets what it owns (applied).
ERP = account_event(
    "acc-o", "erp", version=2, name="ACME HOLDING", erp_customer_number="C-9", currency="EUR",
    payment_terms="NET45", credit_hold=False, billing_address=ADDRESS,
)  # fmt: skip
# The CRM sets a credit hold (ERP-owned, on_conflict: reject): the whole change is refused.
HOLD = account_event(
    "acc-o", "crm", version=3, changed_fields=["credit_hold", "phone"], credit_hold=True,
    phone="+31 10 000",
)  # fmt: skip


def violations(h: PipelineHarness, field: str, system: str, action: str) -> float:
    return h.metric(
        "interlock_ownership_violations_total",
        entity="account", field=field, system=system, action=action,
    )  # fmt: skip


def test_an_erp_rename_is_stripped_and_the_rest_of_the_change_applies() -> None:
    h = PipelineHarness(worker_config())
    h.send(h.t.account, CRM)
    h.send(h.t.account, ERP)
    account = h.tables.accounts["acc-o"]
    assert account["name"] == "Acme BV"
    assert (account["payment_terms"], account["erp_customer_number"]) == ("NET45", "C-9")
    assert violations(h, "name", "erp", "strip") == 1
    (stripped,) = h.decisions("stripped")
    assert (stripped["event_id"], stripped["details"]["fields"]) == (ERP.event_id, ["name"])
    merged = next(r for r in h.decisions("merged") if r["event_id"] == ERP.event_id)
    assert "payment_terms" in merged["details"]["applied"]
    assert "name" not in merged["details"]["applied"]
    assert merged["details"]["stripped"] == ["name"]
    assert h.dead == []


def test_a_crm_credit_hold_is_rejected_whole_dead_lettered_and_the_quote_is_ordered() -> None:
    h = PipelineHarness(worker_config())
    for event in (CRM, ERP, HOLD):
        h.send(h.t.account, event)
    account = h.tables.accounts["acc-o"]
    assert account["credit_hold"] is False
    assert "phone" not in account  # the allowed field of a refused change is not applied
    assert violations(h, "credit_hold", "crm", "reject") == 1
    assert violations(h, "phone", "crm", "reject") == 0
    (rejected,) = h.decisions("rejected")
    assert (rejected["event_id"], rejected["details"]["fields"]) == (HOLD.event_id, ["credit_hold"])
    (dead,) = h.dead_letters(h.t.account)
    assert dict(dead.headers)["interlock.dlq.reason"] == b"OWNERSHIP_VIOLATION"
    assert dead.key == b"acc-o"
    # No payment terms on the quote: it can only be ordered with the ERP's NET45 applied, and
    # only because the CRM's credit hold was not.
    h.send(h.t.quote, quote_event("q-o", "acc-o", payment_terms=None))
    (order,) = h.commands(h.t.create_order)
    assert (order.payload.payment_terms, order.payload.erp_customer_number) == ("NET45", "C-9")
