"""Quote validation reason codes, the quote decision, compensation, and the order state fold."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from contracts import QuoteLine, Reason, deterministic_event_id
from processors.domain.quotes import decide_quote, fold_order_state, validate_quote
from tests.processors.events import ACCOUNT_STATE, ADDRESS, quote_event

pytestmark = pytest.mark.unit

ACCOUNT = ACCOUNT_STATE


def codes(event: Any, account: dict[str, Any] = ACCOUNT, known: Any = None) -> list[str]:
    return [i.code for i in validate_quote(event, account, known)]


def test_valid_quote_has_no_issues() -> None:
    assert codes(quote_event("q", "a")) == []


@pytest.mark.parametrize(
    ("fields", "account", "code", "reason"),
    [
        ({"ship_to": None}, ACCOUNT, "QUOTE_MISSING_SHIP_TO", Reason.VALIDATION_MISSING_FIELD),
        ({"payment_terms": None}, {**ACCOUNT, "payment_terms": None}, "QUOTE_MISSING_PAYMENT_TERMS",
         Reason.VALIDATION_MISSING_FIELD),
        ({"lines": []}, ACCOUNT, "QUOTE_NO_LINES", Reason.VALIDATION_MISSING_FIELD),
        ({"lines": [QuoteLine(line_number=1, sku="S", quantity=Decimal(0))]}, ACCOUNT,
         "QUOTE_BAD_QUANTITY", Reason.VALIDATION_FAILED),
        ({"lines": [QuoteLine(line_number=1, quantity=Decimal(1))]}, ACCOUNT,
         "QUOTE_UNKNOWN_PRODUCT", Reason.VALIDATION_FAILED),
        ({"currency": "USD"}, ACCOUNT, "QUOTE_CURRENCY_MISMATCH", Reason.VALIDATION_FAILED),
        ({}, {**ACCOUNT, "erp_customer_number": None}, "QUOTE_ACCOUNT_NOT_LINKED",
         Reason.VALIDATION_FAILED),
        ({}, {**ACCOUNT, "credit_hold": True}, "QUOTE_ACCOUNT_CREDIT_HOLD",
         Reason.VALIDATION_FAILED),
    ],
)  # fmt: skip
def test_validation_reason_codes(
    fields: dict[str, Any], account: dict[str, Any], code: str, reason: Reason
) -> None:
    issues = validate_quote(quote_event("q", "a", **fields), account)
    assert [(i.code, i.reason) for i in issues] == [(code, reason)]


def test_ship_to_and_terms_may_come_from_the_account() -> None:
    event = quote_event("q", "a", ship_to=None, payment_terms=None)
    assert codes(event, {**ACCOUNT, "shipping_address": ADDRESS.model_dump()}) == []


def test_unknown_product_checked_against_the_catalog_when_given() -> None:
    assert codes(quote_event("q", "a"), known=lambda p: p == "P-1") == ["QUOTE_UNKNOWN_PRODUCT"]


def test_accepted_quote_creates_an_order_with_ids_derived_from_the_quote() -> None:
    event = quote_event("q-1", "a", revision=3)
    decision = decide_quote(event, None, ACCOUNT)
    assert decision.action == "create"
    command = decision.command
    assert command is not None
    assert command.event_id == deterministic_event_id("create-order", "q-1", "3")
    assert command.correlation_id == "q-1"
    assert command.causation_id == event.event_id
    assert command.occurred_at == event.payload.accepted_at
    assert command.payload.erp_customer_number == "C1"
    assert decide_quote(event, None, ACCOUNT).command == command  # deterministic


def test_same_revision_is_a_duplicate_older_is_stale() -> None:
    event = quote_event("q", "a", revision=2)
    state = fold_order_state(None, decide_quote(event, None, ACCOUNT).command)  # type: ignore[arg-type]
    assert decide_quote(event, state, ACCOUNT).action == "duplicate"
    assert decide_quote(quote_event("q", "a", revision=1), state, ACCOUNT).action == "stale"


def test_unknown_or_unlinked_account_parks_the_quote() -> None:
    assert decide_quote(quote_event("q", "a"), None, None).action == "park"
    unlinked = decide_quote(quote_event("q", "a"), None, {**ACCOUNT, "erp_customer_number": None})
    assert (unlinked.action, [i.code for i in unlinked.issues]) == (
        "park",
        ["QUOTE_ACCOUNT_NOT_LINKED"],
    )


def test_invalid_quote_reports_every_issue() -> None:
    decision = decide_quote(quote_event("q", "a", lines=[], currency="USD"), None, ACCOUNT)
    assert decision.action == "invalid"
    assert [i.code for i in decision.issues] == ["QUOTE_NO_LINES", "QUOTE_CURRENCY_MISMATCH"]


def test_withdrawn_after_order_requested_compensates_with_cancel() -> None:
    state = fold_order_state(None, decide_quote(quote_event("q", "a"), None, ACCOUNT).command)  # type: ignore[arg-type]
    withdrawn = decide_quote(quote_event("q", "a", status="WITHDRAWN"), state, ACCOUNT)
    assert withdrawn.action == "cancel"
    assert withdrawn.kind == "cancel-order"
    assert withdrawn.command is not None
    assert withdrawn.command.payload.status == "CANCELLED"
    cancelled = fold_order_state(state, withdrawn.command)
    assert (
        decide_quote(quote_event("q", "a", status="WITHDRAWN"), cancelled, ACCOUNT).action
        == "ignore"
    )
    # withdrawn before anything was ordered: nothing to compensate
    assert decide_quote(quote_event("q", "a", status="WITHDRAWN"), None, ACCOUNT).action == "ignore"


def test_new_revision_after_order_requested_compensates_with_amend() -> None:
    state = fold_order_state(None, decide_quote(quote_event("q", "a"), None, ACCOUNT).command)  # type: ignore[arg-type]
    draft = decide_quote(quote_event("q", "a", revision=2, status="DRAFT"), state, ACCOUNT)
    assert draft.action == "pending_revision"
    amend = decide_quote(quote_event("q", "a", revision=2), state, ACCOUNT)
    assert amend.action == "amend"
    assert amend.command is not None
    assert amend.command.event_id == deterministic_event_id("amend-order", "q", "2")
    assert amend.command.payload.order_id == state["order_id"]  # the same order, amended


def test_fold_order_state_is_order_independent() -> None:
    create = decide_quote(quote_event("q", "a"), None, ACCOUNT).command
    state1 = fold_order_state(None, create)  # type: ignore[arg-type]
    amend = decide_quote(quote_event("q", "a", revision=2), state1, ACCOUNT).command
    assert amend is not None
    assert create is not None
    forward = fold_order_state(fold_order_state(None, create), amend)
    backward = fold_order_state(fold_order_state(None, amend), create)
    assert forward == backward
    assert forward["revision"] == 2
    assert forward["status"] == "requested"
