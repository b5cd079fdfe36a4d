"""Ownership merge and the CRM ↔ ERP linking confidence gate."""

from __future__ import annotations

import pytest

from contracts import load_ownership
from processors.domain.accounts import (
    decide_link,
    match_confidence,
    match_keys,
    merge_account,
    normalise_domain,
    normalise_name,
)
from tests.processors.events import account_event

pytestmark = pytest.mark.unit

POLICY = load_ownership()


def test_erp_change_to_crm_owned_field_is_stripped_and_the_rest_applies() -> None:
    state = merge_account(None, account_event("a", "crm", name="Acme"), POLICY).state
    change = account_event("a", "erp", version=2, name="ACME HOLDING", payment_terms="NET45")
    result = merge_account(state, change, POLICY)
    assert not result.rejected
    assert result.state["name"] == "Acme"
    assert result.state["payment_terms"] == "NET45"
    assert [(v.field, v.action) for v in result.violations] == [("name", "strip")]
    assert result.applied == {"payment_terms": "NET45"}


def test_change_touching_a_reject_field_is_refused_whole() -> None:
    state = merge_account(None, account_event("a", "erp", credit_hold=False), POLICY).state
    change = account_event(
        "a", "crm", version=2, changed_fields=["credit_hold", "phone"], credit_hold=True, phone="1"
    )
    result = merge_account(state, change, POLICY)
    assert result.rejected
    assert result.state == state
    assert [(v.field, v.action) for v in result.violations] == [("credit_hold", "reject")]


def test_changed_fields_limit_the_change_and_allow_clearing_a_field() -> None:
    state = merge_account(None, account_event("a", "crm", name="Acme", phone="1"), POLICY).state
    change = account_event("a", "crm", version=2, changed_fields=["phone"], name="Ignored")
    result = merge_account(state, change, POLICY)
    assert result.state["phone"] is None
    assert result.state["name"] == "Acme"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("ACME B.V.", "acme"), ("Acme, Inc.", "acme"), ("Müller & Co GmbH", "m ller"), (None, "")],
)
def test_normalise_name(raw: str | None, expected: str) -> None:
    assert normalise_name(raw) == expected


def test_normalise_domain() -> None:
    assert normalise_domain("https://www.Acme.example:443/about") == "acme.example"


def test_match_confidence_tax_id_decides() -> None:
    assert match_confidence({"tax_id": "NL 123.456"}, {"tax_id": "nl123456"}) == (1.0, "tax_id")
    assert match_confidence({"tax_id": "NL1", "name": "A"}, {"tax_id": "NL2", "name": "A"})[0] == 0


def test_match_confidence_name_and_domain() -> None:
    crm = {"name": "Acme BV", "web_domain": "acme.example"}
    assert (
        match_confidence(crm, {"legal_name": "ACME B.V.", "web_domain": "www.acme.example"})[0] == 1
    )
    assert match_confidence(crm, {"legal_name": "Acme B.V."})[0] == 0.7  # name alone: capped


def test_confidence_gate_links_above_and_sends_to_review_below_threshold() -> None:
    crm = {"account_id": "c", "crm_record_id": "co-1", "name": "Acme", "web_domain": "acme.example"}
    sure = {
        "account_id": "e1",
        "erp_customer_number": "C1",
        "name": "Acme",
        "web_domain": "acme.example",
    }
    vague = {"account_id": "e2", "erp_customer_number": "C2", "name": "Acme"}
    assert decide_link(crm, [vague, sure], 0.85).action == "link"
    assert decide_link(crm, [vague, sure], 0.85).candidate_id == "e1"
    review = decide_link(crm, [vague], 0.85)
    assert (review.action, review.candidate_id, review.confidence) == ("review", "e2", 0.7)
    # same-side accounts are never candidates
    assert (
        decide_link(crm, [{"account_id": "c2", "crm_record_id": "x", "name": "Acme"}], 0.5).action
        == "none"
    )


def test_match_keys() -> None:
    keys = match_keys({"tax_id": "nl 1", "name": "Acme BV", "web_domain": "acme.example"})
    assert keys == ["tax:NL1", "name:acme", "domain:acme.example"]
