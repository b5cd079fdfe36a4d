"""What a case shows a person: the quote, both systems' fields with their owner, the evidence."""

from __future__ import annotations

from decimal import Decimal

import pytest

from contracts.ownership import load_ownership
from processors.domain.casecontext import accounts_context, match_evidence, quote_context
from tests.processors.events import quote_event

pytestmark = pytest.mark.unit


def test_a_quote_without_a_total_shows_the_sum_of_its_lines() -> None:
    context = quote_context(quote_event("q", "a"))  # two lines of 2 x 10.00
    assert (context.total, context.currency, len(context.lines)) == ("40.00", "EUR", 2)
    assert context.lines[0].sku == "SKU-1"


def test_fields_side_by_side_with_their_owner_and_untrusted_text_kept_as_data() -> None:
    crm = {"name": "<script>alert(1)</script>", "crm_record_id": "co-1"}
    erp = {"legal_name": "Acme B.V.", "credit_limit": Decimal("5000"),
           "billing_address": {"line1": "1 Way", "city": "Delft"}}  # fmt: skip
    fields = {f.name: f for f in accounts_context(crm, erp, load_ownership()).fields}
    assert fields["name"].crm == "<script>alert(1)</script>"  # escaping is the renderer's job
    assert (fields["name"].owner, fields["credit_limit"].owner) == ("crm", "erp")
    assert fields["credit_limit"].erp == "5000"
    assert fields["billing_address"].erp == "1 Way, Delft"
    assert "tax_id" not in fields  # neither system has it


def test_match_evidence_says_what_agrees_and_what_differs() -> None:
    crm = {"name": "Initech", "web_domain": "initech.example"}
    erp = {"legal_name": "Initech Ltd", "match": {"web_domain": "initech.com"}, "tax_id": "NL1"}
    assert match_evidence(crm, erp, "name") == {
        "name": "equal",
        "web_domain": "differs (initech.example / initech.com)",
        "tax_id": "only on one side",
        "basis": "name",
    }
