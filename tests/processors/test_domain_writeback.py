"""Write-back mapping, echo detection, dedup TTL, parked timeouts, co-partitioning decision."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from contracts import OrderEvent, decode, deterministic_event_id, encode
from processors.domain.copartition import copartition_problem
from processors.domain.housekeeping import (
    expired_event_ids,
    expired_writebacks,
    is_duplicate,
    overdue_parked,
)
from processors.domain.writeback import (
    ECHO_FIELDS,
    deal_shows,
    deal_update,
    deal_write_of,
    echo_reason,
    fold_written,
    written_values,
)
from tests.processors.events import erp_order_event, invoice_event, shipment_event

pytestmark = pytest.mark.unit

STATE: dict[str, Any] = {
    "quote_id": "q",
    "order_id": "o",
    "account_id": "a",
    "revision": 2,
    "deal_id": "deal-q",
    "correlation_id": "q",
}


def test_confirmed_order_maps_to_a_deal_update_at_the_erp_change_time() -> None:
    event = erp_order_event(
        "o", "a", "q", status="CONFIRMED", number="SO-1", promised_date="2026-04-01"
    )
    command = deal_update(event, STATE)
    assert command is not None
    assert command.payload.crm_record_id == "deal-q"
    assert command.payload.status == "CONFIRMED"
    assert str(command.payload.promised_date) == "2026-04-01"
    assert command.payload.credit_hold is False
    assert command.occurred_at == event.source.changed_at
    assert command.correlation_id == "q"
    assert command.causation_id == event.event_id
    assert command.event_id == deterministic_event_id("update-deal", event.event_id)
    assert command.origin == "interlock"


def test_a_deal_update_is_what_validating_the_same_fields_gives_and_encodes_alike() -> None:
    """The command is built without validation from validated parts: it must be the very
    model pydantic would build from its fields, encode to the same bytes, and record the same
    written values as a full JSON dump of its payload."""
    events = [
        erp_order_event(
            "o", "a", "q", status="CONFIRMED", number="SO-1", promised_date="2026-04-01"
        ),
        erp_order_event("o", "a", "q", status="ON_CREDIT_HOLD"),
        shipment_event("a", "o", "SO-1", "1Z9"),
        invoice_event("a", "o", "SO-1", "PAID"),
    ]
    for event in events:
        command = deal_update(event, STATE)
        assert command is not None
        validated = OrderEvent.model_validate(command.model_dump())
        assert validated == command
        assert decode(encode(command)) == validated
        dumped = command.payload.model_dump(mode="json")
        expected = {k: dumped[k] for k in ECHO_FIELDS if k in command.changed_fields}
        assert written_values(command) == expected


def test_credit_hold_shipment_and_invoice_map_to_deal_status() -> None:
    hold = deal_update(erp_order_event("o", "a", "q", status="ON_CREDIT_HOLD"), STATE)
    assert hold is not None
    assert hold.payload.credit_hold is True
    shipped = deal_update(shipment_event("a", "o", "SO-1", "1Z9"), STATE)
    assert shipped is not None
    assert shipped.payload.status == "SHIPPED"
    assert shipped.payload.status_reason == "shipped DHL 1Z9"
    paid = deal_update(invoice_event("a", "o", "SO-1", "PAID"), STATE)
    assert paid is not None
    assert paid.payload.status == "PAID"
    issued = deal_update(invoice_event("a", "o", "SO-1", "ISSUED"), STATE)
    assert issued is not None
    assert issued.payload.status == "INVOICED"
    assert deal_update(invoice_event("a", "o", "SO-1", "DRAFT"), STATE) is None
    assert deal_update(erp_order_event("o", "a", "q", status="REQUESTED"), STATE) is None


def test_echo_recognised_by_origin_or_by_the_values_we_wrote() -> None:
    written = deal_update(erp_order_event("o", "a", "q", status="CONFIRMED", number="SO-1"), STATE)
    assert isinstance(written, OrderEvent)
    last = written_values(written)
    crm = {"system": "crm", "crm_record_id": "deal-q", "number": "SO-1"}
    same = erp_order_event("o", "a", "q", status="CONFIRMED", version=2, **crm)
    assert echo_reason(same, last) == "values"
    changed = erp_order_event("o", "a", "q", status="SHIPPED", version=3, **crm)
    assert echo_reason(changed, last) is None
    assert echo_reason(erp_order_event("o", "a", "q", origin="interlock", **crm), None) == "origin"
    # the ERP's report of our own command is the confirmation, never an echo
    erp = erp_order_event("o", "a", "q", status="CONFIRMED", number="SO-1", origin="interlock")
    assert echo_reason(erp, last) is None


def test_a_write_adds_nothing_when_the_deal_shows_its_values_or_it_is_older() -> None:
    def update(version: int, status: str = "CONFIRMED", **fields: Any) -> OrderEvent:
        event = erp_order_event("o", "a", "q", status=status, version=version, **fields)
        command = deal_update(event, STATE)
        assert isinstance(command, OrderEvent)
        return command

    dated = update(1, promised_date="2026-04-01")
    assert deal_shows(None, deal_write_of(dated)) is None
    shown = fold_written(None, deal_write_of(dated))
    # a later report of the same status without the date (an amend's answer): PATCH keeps
    # the date, so the deal already shows everything it sends
    bare = update(2)
    assert deal_shows(shown, deal_write_of(bare)) == "same values"
    shown = fold_written(shown, deal_write_of(bare))
    assert shown["promised_date"] == "2026-04-01"
    assert deal_shows(shown, deal_write_of(update(3, promised_date="2026-04-01"))) == "same values"

    shipped = update(5, status="SHIPPED")
    assert deal_shows(shown, deal_write_of(shipped)) is None
    shown = fold_written(shown, deal_write_of(shipped))
    # a change from before the shipment, arriving late, would move the deal back
    late = deal_write_of(update(4, status="CONFIRMED", promised_date="2026-05-01"))
    assert deal_shows(shown, late) == "stale"
    # the written state keeps the newest change time, whatever order the folds come in
    assert fold_written(shown, deal_write_of(update(4)))["_at"] == shipped.occurred_at.isoformat()

    # the CRM's echo of the CONFIRMED write, arriving after SHIPPED was written, is still ours
    crm = {"system": "crm", "crm_record_id": "deal-q", "number": "SO-1"}
    late_echo = erp_order_event(
        "o", "a", "q", status="CONFIRMED", version=9, promised_date="2026-04-01", **crm
    )
    assert shown["status"] == "SHIPPED"
    assert echo_reason(late_echo, shown) == "values"
    someone = erp_order_event("o", "a", "q", status="CANCELLED", version=10, **crm)
    assert echo_reason(someone, shown) is None


def test_dedup_ttl() -> None:
    assert is_duplicate(100.0, 150.0, ttl_s=60)
    assert not is_duplicate(100.0, 161.0, ttl_s=60)
    assert not is_duplicate(None, 1.0, ttl_s=60)
    seen = [("e1", [0.0, 0]), ("e2", [95.0, 0]), ("e3", [0.0, 1])]
    assert expired_event_ids(seen, 0, now=100.0, ttl_s=10) == ["e1"]
    written = [
        ("d1", {"status": "SHIPPED", "_written_at": 0.0, "_partition": 0}),
        ("d2", {"status": "SHIPPED", "_written_at": 95.0, "_partition": 0}),
        ("d3", {"status": "SHIPPED", "_written_at": 0.0, "_partition": 1}),
        ("d4", {"status": "SHIPPED"}),  # kept before write times were: left alone
    ]
    assert expired_writebacks(written, 0, now=100.0, ttl_s=10) == ["d1"]


def test_overdue_parked_only_of_the_partition_and_after_grace() -> None:
    parked = [
        ("q:1", {"partition": 0, "parked_at": 0.0}),
        ("q:2", {"partition": 0, "parked_at": 9.0}),
        ("q:3", {"partition": 1, "parked_at": 0.0}),
    ]
    assert overdue_parked(parked, 0, now=10.0, grace_s=5) == ["q:1"]


def test_copartition_problem_names_the_topic() -> None:
    topics = ["canonical.account.v1", "canonical.quote.v1", "commands.erp.create-order"]
    assert copartition_problem(dict.fromkeys(topics, 3), topics) is None
    uneven = {**dict.fromkeys(topics, 3), "canonical.quote.v1": 6}
    problem = copartition_problem(uneven, topics)
    assert problem is not None
    assert "canonical.quote.v1 has 6 partitions" in problem
    missing = copartition_problem({"canonical.account.v1": 3}, topics)
    assert missing is not None
    assert "canonical.quote.v1 does not exist" in missing


def test_changes_of_one_instant_never_move_the_deal_back_along_the_lifecycle() -> None:
    """Shipped and invoiced in the same millisecond: the invoice's status written first, the
    order row's SHIPPED after it would show the deal shipped again (seen under load)."""
    invoiced = deal_update(invoice_event("a", "o", "SO-1", "ISSUED"), STATE)
    assert isinstance(invoiced, OrderEvent)
    shown = fold_written(None, deal_write_of(invoiced))
    same_instant = erp_order_event("o", "a", "q", status="SHIPPED", number="SO-1")
    shipped = deal_update(same_instant, STATE)
    assert isinstance(shipped, OrderEvent)
    shipped = shipped.model_copy(update={"occurred_at": invoiced.occurred_at})
    assert deal_shows(shown, deal_write_of(shipped)) == "stale"
    # a hold at the same instant is not on the lifecycle line: it is written
    held = shipped.model_copy(
        update={"payload": shipped.payload.model_copy(update={"status": "ON_CREDIT_HOLD"})}
    )
    assert deal_shows(shown, deal_write_of(held)) is None
    # and a later SHIPPED (a new shipment after the invoice) is written too
    later = shipped.model_copy(update={"occurred_at": invoiced.occurred_at + timedelta(seconds=1)})
    assert deal_shows(shown, deal_write_of(later)) is None
