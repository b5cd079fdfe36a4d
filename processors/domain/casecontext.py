"""What a case shows a person, built from the worker's state: pure, no Kafka.

The quote's lines and totals, the account's fields from both systems side by side with the
system that owns each, and for a match which identity fields agree or differ. Values are made
JSON-plain (an address becomes one line); the console escapes whatever it renders.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from contracts.models import QuoteEvent
from contracts.ownership import OwnershipPolicy
from contracts.policy import quote_discount_pct
from contracts.review import (
    AccountField,
    AccountsContext,
    Case,
    QuoteContext,
    QuoteLineContext,
)
from processors.domain.accounts import normalise_domain, normalise_name, normalise_tax_id

__all__ = [
    "ACCOUNT_FIELDS",
    "accounts_context",
    "match_evidence",
    "quote_context",
    "with_quote",
]

ACCOUNT_FIELDS = (
    "name", "legal_name", "web_domain", "tax_id", "crm_record_id", "erp_customer_number",
    "currency", "payment_terms", "credit_limit", "credit_hold", "owner", "billing_address",
)  # fmt: skip
"""Account fields a case shows, in this order (those neither system has are left out)."""


def quote_context(event: QuoteEvent) -> QuoteContext:
    """The quote's lines and totals as a case shows them."""
    quote = event.payload
    return QuoteContext(
        revision=quote.revision,
        currency=quote.currency or "",
        total=str(quote.total if quote.total is not None else _sum_lines(event)),
        discount_pct=float(quote_discount_pct(quote)),
        lines=[
            QuoteLineContext(
                line_number=line.line_number,
                sku=line.sku or line.product_id or "",
                name=line.description,
                quantity=float(line.quantity or 0),
                unit_price=str(line.unit_price if line.unit_price is not None else ""),
                discount_pct=float(line.discount_percent or 0),
            )
            for line in quote.lines
        ],
    )


def accounts_context(
    crm: Mapping[str, Any], erp: Mapping[str, Any], ownership: OwnershipPolicy
) -> AccountsContext:
    """The CRM side's and the ERP side's fields side by side, each with its owning system."""
    return AccountsContext(
        fields=[
            AccountField(
                name=name,
                crm=_plain(crm.get(name)),
                erp=_plain(erp.get(name)),
                owner=ownership.owner_of("account", name),
            )
            for name in ACCOUNT_FIELDS
            if crm.get(name) is not None or erp.get(name) is not None
        ]
    )


def match_evidence(
    state: Mapping[str, Any], other: Mapping[str, Any], basis: str | None
) -> dict[str, str]:
    """Which identity fields agree, differ or are on one side only, field by field."""
    out: dict[str, str] = {}
    for name, norm in (
        ("name", normalise_name),
        ("web_domain", normalise_domain),
        ("tax_id", normalise_tax_id),
    ):
        a, b = norm(_identity(state, name)), norm(_identity(other, name))
        if a and b:
            out[name] = "equal" if a == b else f"differs ({a} / {b})"
        elif a or b:
            out[name] = "only on one side"
    if basis:
        out["basis"] = basis
    return out


def _identity(state: Mapping[str, Any], name: str) -> Any:
    """An identity field of an account, or the copy kept as match evidence."""
    evidence = state.get("match") or {}
    value = state.get(name) or evidence.get(name)
    if not value and name == "name":
        value = state.get("legal_name") or evidence.get("legal_name")
    return value


def _sum_lines(event: QuoteEvent) -> Decimal:
    lines = event.payload.lines
    zero = Decimal(0)
    return sum(((ln.quantity or zero) * (ln.unit_price or zero) for ln in lines), zero)


def _plain(value: Any) -> Any:
    """A JSON-plain value for the side-by-side view (an address as one line)."""
    if isinstance(value, dict):
        return ", ".join(str(v) for v in value.values() if v not in (None, ""))
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def with_quote(case: Case, event: QuoteEvent) -> Case:
    """``case`` (an account match) with the quote that waits for it: its ids and its context,
    so the audit and the trace tie the decision to the quote."""
    return case.model_copy(
        update={
            "quote_id": event.payload.quote_id,
            "deal_id": event.payload.crm_deal_id,
            "correlation_id": event.correlation_id or event.payload.quote_id,
            "context": case.context.model_copy(update={"quote": quote_context(event)}),
        }
    )
