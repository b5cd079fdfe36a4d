"""ERP changes to CRM-owned account fields are stripped (or rejected), counted and audited."""

from __future__ import annotations

import pytest

from contracts import OrderEvent
from tests.processors.conftest import ProcessorsEnv
from tests.processors.events import ADDRESS, account_event, quote_event

pytestmark = pytest.mark.integration


def test_non_owner_changes_are_stripped_or_rejected_and_the_rest_applies(
    proc_env: ProcessorsEnv,
) -> None:
    t = proc_env.topics
    crm = account_event("acc-o", "crm", version=1, name="Acme BV", crm_record_id="co-1")
    # The ERP renames the account (CRM-owned: stripped) and sets what it owns (applied).
    erp = account_event(
        "acc-o",
        "erp",
        version=2,
        name="ACME HOLDING",
        erp_customer_number="C-9",
        currency="EUR",
        payment_terms="NET45",
        credit_hold=False,
        billing_address=ADDRESS,
    )
    # The CRM sets a credit hold (ERP-owned, policy reject): the whole change is refused.
    hold = account_event(
        "acc-o", "crm", version=3, changed_fields=["credit_hold", "phone"], credit_hold=True,
        phone="+31 10 000",
    )  # fmt: skip
    proc_env.send(t.account, crm, erp, hold)
    # No payment terms on the quote: it can only be ordered with the ERP's NET45 applied.
    proc_env.send(t.quote, quote_event("q-o", "acc-o", payment_terms=None))
    worker = proc_env.start_worker()

    commands = proc_env.wait_for(t.create_order, lambda ev: len(ev) >= 1)
    assert len(commands) == 1, worker.output()
    order = commands[0]
    assert isinstance(order, OrderEvent)
    assert order.payload.payment_terms == "NET45"
    assert order.payload.erp_customer_number == "C-9"  # the credit hold was not applied either

    stripped = worker.wait_metric(
        "interlock_ownership_violations_total", 1, entity="account", field="name", system="erp",
        action="strip",
    )  # fmt: skip
    assert stripped == 1
    assert (
        worker.metric(
            "interlock_ownership_violations_total",
            entity="account",
            field="credit_hold",
            system="crm",
            action="reject",
        )
        == 1
    )
    audit = proc_env.audit()
    by_decision = {(r["decision"], r["event_id"]): r for r in audit}
    assert by_decision[("stripped", erp.event_id)]["details"]["fields"] == ["name"]
    merged = by_decision[("merged", erp.event_id)]["details"]
    assert "payment_terms" in merged["applied"]
    assert "name" not in merged["applied"]
    assert by_decision[("rejected", hold.event_id)]["details"]["fields"] == ["credit_hold"]
    dead = proc_env.read_records(f"dlq.{t.account}")
    assert [dict(r.headers)["interlock.dlq.reason"] for r in dead] == [b"OWNERSHIP_VIOLATION"]
