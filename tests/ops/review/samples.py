"""Sample cases, as the worker raises them: for the tests and for the docs' screenshots."""

from __future__ import annotations

import time
import uuid
from typing import Any

from contracts.review import (
    AccountField,
    AccountsContext,
    Case,
    CaseContext,
    MatchCandidate,
    MatchContext,
    QuoteContext,
    QuoteLineContext,
    case_id_for,
)

__all__ = ["make_case"]


def make_case(kind: str = "policy", **overrides: Any) -> Case:
    """A case as the worker would raise it, with a quote, both systems' account fields and,
    for an account match, two candidates."""
    now = time.time()
    subject = uuid.uuid4().hex[:10]
    context = CaseContext(
        quote=QuoteContext(
            revision=2,
            currency="EUR",
            total="10980.00",
            discount_pct=18.0,
            lines=[
                QuoteLineContext(
                    line_number=1, sku="SKU-100", name="Pump", quantity=4, unit_price="2500.00"
                ),
                QuoteLineContext(
                    line_number=2,
                    sku="SKU-200",
                    name="Valve",
                    quantity=10,
                    unit_price="98.00",
                    discount_pct=0,
                ),
            ],
        ),
        accounts=AccountsContext(
            fields=[
                AccountField(name="name", crm="Acme GmbH", erp="ACME GmbH", owner="crm"),
                AccountField(name="payment_terms", crm=None, erp="NET30", owner="erp"),
                AccountField(name="credit_limit", crm=None, erp="50000", owner="erp"),
            ]
        ),
        match=MatchContext(
            score=0.71,
            threshold=0.85,
            candidates=[
                MatchCandidate(
                    account_id="acct-acme-1",
                    name="Acme GmbH",
                    domain="acme.example",
                    score=0.71,
                    evidence={"domain": "same domain", "name": "case-insensitive match"},
                ),
                MatchCandidate(
                    account_id="acct-acme-2",
                    name="Acme Holding",
                    domain="acme-holding.example",
                    score=0.55,
                    evidence={"name": "shares a word"},
                ),
            ],
        )
        if kind == "account_match"
        else None,
        details={"limit": "15%", "actual": "18%"} if kind == "policy" else {},
    )
    fields: dict[str, Any] = {
        "case_id": case_id_for(kind, subject),  # type: ignore[arg-type]
        "kind": kind,
        "reason": "POLICY_LIMIT_EXCEEDED" if kind == "policy" else "MATCH_BELOW_THRESHOLD",
        "team": "finance" if kind == "policy" else "sales-ops",
        "severity": "high",
        "opened_at": now - 3600,
        "updated_at": now - 3600,
        "sla_due": now + 3600,
        "partition_key": f"acct-{subject}",
        "quote_id": f"q-{subject}",
        "account_id": f"acct-{subject}",
        "deal_id": f"deal-{subject}",
        "summary": f"Discount 18% over the 15% limit on quote q-{subject}",
        "context": context,
        **overrides,
    }
    return Case(**fields)
