"""The sinks' contract: the outcome an answer reports, and which answers are read at all."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pydantic
import pytest

from connectors.sinks.contract import REPORTED_KINDS, build_request, outcome_event
from contracts import Address, Order, OrderEvent, OrderLine, Source, decode, encode

pytestmark = pytest.mark.unit

_NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def _command(event_type: str = "CreateOrder", **order: Any) -> OrderEvent:
    """A command as the sink reads it: decoded from its Avro bytes."""
    address = Address(line1="Königstraße 1", city="München", country_code="DE")
    line = OrderLine(
        line_number=1, sku="SKU-1", quantity=Decimal("3"), unit_price=Decimal("19.990"),
        requested_date=date(2025, 5, 2),
    )  # fmt: skip
    command = OrderEvent(
        event_id="cmd-1",
        event_type=event_type,
        source=Source(system="crm", vendor="hubspot", record_id="q-1"),
        correlation_id="flow-1",
        occurred_at=_NOW,
        payload=Order(
            order_id="o-1", account_id="acct-1", quote_id="q-1", quote_revision=2,
            status="REQUESTED", lines=[line], total=Decimal("59.97"), currency="EUR",
            bill_to=address, ship_to=address, ordered_at=_NOW, **order,
        ),
    )  # fmt: skip
    decoded = decode(encode(command))
    assert isinstance(decoded, OrderEvent)
    return decoded


def _fully_validated(command: OrderEvent, number: Any, status: Any) -> Order:
    """The outcome's payload as a full validation of the updated order makes it."""
    changed = command.payload.model_copy(update={"erp_order_number": number, "status": status})
    return Order.model_validate(changed.model_dump())


@pytest.mark.parametrize(
    ("kind", "answer", "number", "status"),
    [
        ("create-order", {"order_number": "SO-1", "status": "CONFIRMED"}, "SO-1", "CONFIRMED"),
        ("create-order", {"order_number": "SO-2"}, "SO-2", "CONFIRMED"),
        ("create-order", None, None, "CONFIRMED"),
        ("cancel-order", {}, "SO-9", "CANCELLED"),
        ("amend-order", {"status": "ON_CREDIT_HOLD"}, "SO-9", "ON_CREDIT_HOLD"),
    ],
)
def test_the_outcome_is_the_command_with_the_targets_number_and_status(
    kind: Any, answer: Any, number: str | None, status: str
) -> None:
    command = _command(erp_order_number="SO-9" if kind != "create-order" else None)
    outcome = outcome_event(kind, command, answer, _NOW)
    assert outcome is not None
    assert outcome.payload == _fully_validated(command, number, status)
    assert outcome.payload.erp_order_number == number
    assert outcome.payload.status == status
    assert decode(encode(outcome)) == outcome  # encodes, and reads back the same


# dumping an order that holds a number as its order number warns before validation refuses it
@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")
@pytest.mark.parametrize(
    "answer",
    [
        {"order_number": "SO-1", "status": "MAYBE"},  # not a status
        {"order_number": 17, "status": "CONFIRMED"},  # not a string
        {"order_number": "SO-1", "status": ["CONFIRMED"]},  # not even hashable
    ],
)
def test_an_answer_the_order_cannot_hold_raises_the_models_own_error(answer: Any) -> None:
    command = _command()
    number = answer["order_number"]
    with pytest.raises(pydantic.ValidationError) as full:
        _fully_validated(command, number, answer["status"])
    with pytest.raises(pydantic.ValidationError) as raised:
        outcome_event("create-order", command, answer, _NOW)
    assert str(raised.value) == str(full.value)


def test_only_the_answers_that_an_outcome_reports_are_read() -> None:
    assert {"create-order", "cancel-order", "amend-order"} == REPORTED_KINDS
    command = _command("UpdateDeal", crm_record_id="deal-1")
    assert outcome_event("update-deal", command, {"anything": 1}, _NOW) is None
    call = build_request("update-deal", command)
    assert (call.target, call.method, call.path) == ("crm", "PATCH", "/deals/deal-1")
