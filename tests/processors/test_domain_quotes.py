"""Quote validation reason codes, the quote decision, compensation, and the order state fold."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from contracts import QuoteLine, Reason, deterministic_event_id
from processors.domain.quotes import (
    decide_quote,
    fold_lines,
    fold_order_state,
    validate_quote,
    with_assembled_lines,
)
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


def _line_event(number: int, revision: int = 1, deleted: bool = False, **fields: Any) -> Any:
    event = quote_event(
        "q-l",
        "a",
        revision=revision,
        status="SENT",
        lines=[QuoteLine(line_number=number, **fields)],
    )
    kind = "QuoteLineDeleted" if deleted else "QuoteLineChanged"
    return event.model_copy(update={"event_type": kind})


def test_line_events_assemble_a_quote_field_by_field() -> None:
    state = fold_lines(None, _line_event(2, sku="B", quantity=Decimal("1")))
    state = fold_lines(
        state, _line_event(1, sku="A", quantity=Decimal("3"), unit_price=Decimal("9.50"))
    )
    state = fold_lines(state, _line_event(2, quantity=Decimal("4")))  # one property changed
    assert state == {
        "revision": 1,
        "lines": {
            "1": {"line_number": 1, "sku": "A", "quantity": "3", "unit_price": "9.50"},
            "2": {"line_number": 2, "sku": "B", "quantity": "4"},
        },
    }
    assert fold_lines(state, _line_event(2, quantity=Decimal("4"))) is None  # no change
    deleted = fold_lines(state, _line_event(1, deleted=True))
    assert deleted is not None
    assert list(deleted["lines"]) == ["2"]
    revised = fold_lines(state, _line_event(1, revision=2, quantity=Decimal("5")))
    assert revised is not None
    assert revised["revision"] == 2
    assert revised["lines"]["1"]["quantity"] == "5"
    assert "2" in revised["lines"]
    assert fold_lines(revised, _line_event(1, revision=1, quantity=Decimal("7"))) is None  # stale


def test_an_accepted_quote_without_lines_is_completed_with_its_assembled_lines() -> None:
    state = fold_lines(None, _line_event(2, sku="SKU-2", product_id="P-2", quantity=Decimal("1")))
    state = fold_lines(state, _line_event(1, sku="SKU-1", product_id="P-1", quantity=Decimal("2")))
    bare = quote_event("q-l", "a", lines=[])
    assert codes(bare) == ["QUOTE_NO_LINES"]
    completed = with_assembled_lines(bare, state)
    assert [(line.line_number, line.quantity) for line in completed.payload.lines] == [
        (1, Decimal("2")),
        (2, Decimal("1")),
    ]
    assert codes(completed) == []
    assert completed.event_id == bare.event_id  # the same event, not a new one
    own = quote_event("q-l", "a", lines=1)
    assert with_assembled_lines(own, state) is own  # lines of its own win
    assert with_assembled_lines(bare, None) is bare  # nothing assembled: still no lines
    bad = fold_lines(state, _line_event(1, quantity=Decimal("-1")))
    assert codes(with_assembled_lines(bare, bad)) == ["QUOTE_BAD_QUANTITY"]
