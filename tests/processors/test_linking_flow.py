"""A CRM account is linked to its ERP customer by tax id; a vague match goes to a person.

In process: the links the pipeline publishes on the account topic come back through it, as
the canonical agent reads them in the worker.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.review import decode_case
from tests.processors.events import ADDRESS, account_event, quote_event
from tests.processors.harness import PipelineHarness, worker_config

pytestmark = pytest.mark.unit

GLOBEX_CRM = {"crm_record_id": "co-7", "name": "Globex", "web_domain": "globex.example",
              "tax_id": "NL 0077.01"}  # fmt: skip
GLOBEX_ERP = {"erp_customer_number": "C-77", "legal_name": "Globex B.V.", "tax_id": "NL007701",
              "currency": "EUR", "payment_terms": "NET60", "billing_address": ADDRESS,
              "credit_hold": False}  # fmt: skip


def reviews(h: PipelineHarness) -> list[dict[str, Any]]:
    return [json.loads(v) for t, _, v, _ in h.records if t == h.t.review]


def test_link_by_tax_id_releases_the_waiting_quote_with_the_erp_customers_terms() -> None:
    h = PipelineHarness(worker_config())
    h.send(h.t.account, account_event("crm-globex", "crm", **GLOBEX_CRM))
    h.send(h.t.quote, quote_event("q-g", "crm-globex", payment_terms=None))
    # known but not linked yet: the quote waits for the link
    assert h.tables.parked["q:q-g"]["waiting_for"] == "link"
    assert h.metric("interlock_parked_joins", kind="quote_waiting_for_account") == 1

    h.send(h.t.account, account_event("erp-globex", "erp", version=2, **GLOBEX_ERP))
    (order,) = h.commands(h.t.create_order)
    assert order.payload.erp_customer_number == "C-77"
    assert order.payload.payment_terms == "NET60"  # ERP terms reached the CRM-side account
    (linked,) = h.decisions("linked")
    assert linked["ids"] == {"account_id": "erp-globex", "candidate_id": "crm-globex"}
    assert linked["details"]["basis"]
    assert linked["details"]["confidence"] >= linked["details"]["threshold"]
    # each side learnt the other's id from an AccountLinked event keyed by that side
    crm, erp = h.tables.accounts["crm-globex"], h.tables.accounts["erp-globex"]
    assert (crm["linked_account_id"], crm["erp_customer_number"]) == ("erp-globex", "C-77")
    assert (erp["linked_account_id"], erp["crm_record_id"]) == ("crm-globex", "co-7")
    assert reviews(h) == []
    assert h.tables.parked == {}


def test_an_erp_change_of_a_linked_customer_reaches_the_crm_side() -> None:
    h = PipelineHarness(worker_config())
    h.send(h.t.account, account_event("crm-globex", "crm", **GLOBEX_CRM))
    h.send(h.t.account, account_event("erp-globex", "erp", version=2, **GLOBEX_ERP))
    terms = {**GLOBEX_ERP, "payment_terms": "NET90"}
    h.send(h.t.account, account_event("erp-globex", "erp", version=3, **terms))
    assert h.tables.accounts["crm-globex"]["payment_terms"] == "NET90"
    h.send(h.t.quote, quote_event("q-g", "crm-globex", payment_terms=None))
    (order,) = h.commands(h.t.create_order)
    assert order.payload.payment_terms == "NET90"


def test_a_vague_match_is_sent_to_review_once_and_links_nothing() -> None:
    h = PipelineHarness(worker_config())
    h.send(h.t.account, account_event("crm-initech", "crm", crm_record_id="co-8", name="Initech"))
    vague = {"erp_customer_number": "C-88", "legal_name": "Initech Ltd"}
    h.send(h.t.account, account_event("erp-initech", "erp", version=2, **vague))
    (request,) = reviews(h)
    assert (request["account_id"], request["candidate"]) == ("erp-initech", "crm-initech")
    assert request["confidence"] < request["threshold"] == 0.85
    (audit,) = h.decisions("review_requested")
    assert audit["ids"] == {"account_id": "erp-initech", "candidate_id": "crm-initech"}
    assert h.decisions("linked") == []
    assert "linked_account_id" not in h.tables.accounts["crm-initech"]
    assert "erp_customer_number" not in h.tables.accounts["crm-initech"]
    (case,) = [decode_case(v) for t, _, v, _ in h.records if t == h.t.cases]
    assert (case.kind, case.team) == ("account_match", "sales-ops")
    # the ERP customer changes again: the same candidate is not asked about twice
    h.send(h.t.account, account_event("erp-initech", "erp", version=3, phone="+31 10 1",
                                      **vague))  # fmt: skip
    assert len(reviews(h)) == 1
    assert len(h.decisions("review_requested")) == 1
