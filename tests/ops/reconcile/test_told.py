"""``reconcile check --against-apis`` compares a deal's ERP-owned fields with what the CRM was
told: a write-back the CRM answered and never applied (no event says so) is found, with the
worker's finding id; a write-back still on its way is not drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.errors import Reason
from contracts.models import InvoiceEvent, OrderEvent, ShipmentEvent
from contracts.reconciliation import finding_id
from ops.reconcile.apis import check_apis, told_of
from processors.domain.writeback import deal_update
from tests.processors.events import erp_order_event, invoice_event, shipment_event

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
STATE: dict[str, Any] = {
    "quote_id": "q-1",
    "order_id": "o-1",
    "account_id": "a",
    "revision": 1,
    "deal_id": "901",
    "correlation_id": "q-1",
    "erp_order_number": "SO-1",
}


def _told(*, age: timedelta = timedelta(minutes=30)) -> dict[str, Any]:
    events: list[OrderEvent | ShipmentEvent | InvoiceEvent] = [
        erp_order_event("o-1", "a", "q-1", status="CONFIRMED", promised_date="2026-04-01"),
        shipment_event("a", "o-1", "SO-1", "JD1"),
        invoice_event("a", "o-1", "SO-1", "ISSUED"),
    ]
    commands = [deal_update(e, STATE) for e in events]
    at = NOW - age
    return told_of([(c, at + timedelta(seconds=i)) for i, c in enumerate(commands) if c])


def _deal(**fields: Any) -> dict[str, Any]:
    return {"id": "901", "company_id": "11", **fields}


APPLIED = {
    "status": "INVOICED",
    "status_reason": "invoice INV-SO-1 ISSUED",
    "erp_order_number": "SO-1",
    "promised_date": "2026-04-01",
    "credit_hold": False,
}


def test_what_the_crm_was_told_is_folded_field_by_field() -> None:
    told = _told()["901"]
    assert told.quote_id == "q-1"
    assert dict(told.values) == APPLIED  # each write-back sets only what it changes
    assert told.at == NOW - timedelta(minutes=30) + timedelta(seconds=2)
    assert told_of([(c, NOW) for c in ("not a command", None)]) == {}


def test_a_deal_showing_what_it_was_told_agrees() -> None:
    assert check_apis({}, [], [_deal(**APPLIED)], NOW, told=_told()) == []


def test_a_write_back_answered_but_never_applied_is_found() -> None:
    lost = {**APPLIED, "status": "SHIPPED", "status_reason": "shipped DHL JD1"}
    found = check_apis({}, [], [_deal(**lost)], NOW, told=_told())
    kind = Reason.RECON_CRM_VALUE_OVERWRITTEN
    assert [(f.kind, f.subject, f.finding_id) for f in found] == [
        (str(kind), "901", finding_id(kind, "901", "status")),  # the worker's id for it
        (str(kind), "901", finding_id(kind, "901", "status_reason")),
    ]
    assert found[0].details == {
        "field": "status", "crm": "SHIPPED", "written": "INVOICED", "quote": "q-1",
    }  # fmt: skip


def test_a_write_back_younger_than_its_sla_is_not_judged_yet() -> None:
    stale = [_deal(status="SHIPPED")]
    recent = _told(age=timedelta(seconds=30))
    assert check_apis({}, [], stale, NOW, told=recent, writeback_sla=timedelta(minutes=1)) == []
    assert check_apis({}, [], stale, NOW, told=recent, writeback_sla=timedelta(seconds=20))


def test_a_deal_that_is_gone_is_not_compared_field_by_field() -> None:
    assert check_apis({}, [], [], NOW, told=_told()) == []
