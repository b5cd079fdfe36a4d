"""The fake ERP and CRM carry out injected drift as people and flaky APIs would: an order
edited or deleted with its change data capture, one keyed in by hand, a write-back answered
and never applied, a deal deleted without a webhook; each recorded as it happened."""

from __future__ import annotations

from typing import Any

import pytest

from ops.simulator.actions import ChangeAction, WebhookAction
from ops.simulator.fake_crm import CrmDesk
from ops.simulator.fake_erp import ErpBook, ErpTimings
from ops.simulator.truth import DriftCase, Recorded

pytestmark = pytest.mark.unit


def _book() -> tuple[ErpBook, list[ChangeAction], Recorded, list[float]]:
    changes: list[ChangeAction] = []
    recorded = Recorded()
    now = [100.0]
    book = ErpBook(
        changes.append,
        recorded,
        timings=ErpTimings(unavailable=0.0, order_hold=0.0),
        clock=lambda: now[0],
        wall=lambda: 1_700_000_000.0 + now[0],
    )
    return book, changes, recorded, now


def _body(quote: str) -> dict[str, Any]:
    return {
        "quote_id": quote,
        "quote_revision": 1,
        "crm_record_id": "555",
        "erp_customer_number": "C000001",
        "currency": "EUR",
        "lines": [{"quantity": "4", "unit_price": "25.00"}],
    }


def _run(book: ErpBook, now: list[float], until: float) -> None:
    while now[0] < until:
        now[0] += 0.5
        book.advance()


def test_an_order_edited_by_hand_after_confirmation_is_captured_with_its_new_amounts() -> None:
    book, changes, recorded, now = _book()
    book.plan_drift(
        DriftCase("drift-1", "erp_order_edited", 3, "q-1", "555", change={"discount_pct": 20})
    )
    assert book.create("k1", _body("q-1"))[0] == 201
    _run(book, now, 110)
    rows = [(c.op, (c.after or {}).get("status"), (c.after or {}).get("subtotal_minor"))
            for c in changes if c.table == "sales_orders"]  # fmt: skip
    # confirmed at full price, then edited (20 % off) before it ships at the new price
    assert rows == [
        ("c", "OPEN", 10000),
        ("u", "CONFIRMED", 10000),
        ("u", "CONFIRMED", 8000),
        ("u", "SHIPPED", 8000),
        ("u", "INVOICED", 8000),
    ]
    edit = changes[2]
    assert edit.before is not None
    assert edit.before["total_minor"] == 11900
    assert edit.after is not None
    assert (edit.after["tax_minor"], edit.after["total_minor"]) == (1520, 9520)
    (case,) = recorded.drift_injected
    assert (case.case_id, case.kind, case.subject) == ("drift-1", "erp_order_edited", "q-1")
    assert case.at == 1_700_000_000.0 + 103.5  # between confirmation (2 s) and shipment (5 s)
    assert case.details["subtotal_minor"] == {"was": 10000, "now": 8000}


def test_an_order_deleted_by_hand_is_a_delete_and_nothing_more_happens_to_it() -> None:
    book, changes, recorded, now = _book()
    book.plan_drift(DriftCase("drift-2", "erp_order_deleted", 4, "q-2", "555"))
    book.create("k2", _body("q-2"))
    _run(book, now, 120)
    ops = [(c.op, (c.before or {}).get("status")) for c in changes if c.table == "sales_orders"]
    assert ops == [("c", None), ("u", "OPEN"), ("d", "CONFIRMED")]
    assert [c.table for c in changes] == ["sales_orders"] * 3  # never shipped nor invoiced
    assert not book.has_due()
    assert book.orders() == []
    assert book.order("SO-000001") is None
    assert book.amend("SO-000001", "k-amend", {"quote_revision": 2}, "amend")[0] == 404
    assert [s.status for s in recorded.erp_status_changes] == ["CONFIRMED"]  # what the CRM knows
    (case,) = recorded.drift_injected
    assert (case.kind, case.subject, case.details) == (
        "erp_order_deleted",
        "q-2",
        {"order_number": "SO-000001"},
    )
    book.create("k3", _body("q-3"))
    assert [o["order_number"] for o in book.orders()] == ["SO-000002"]  # the series goes on


def test_an_order_keyed_in_by_hand_has_no_quote_no_deal_and_nothing_to_write_back() -> None:
    book, changes, recorded, now = _book()
    case = DriftCase("drift-3", "erp_order_by_hand", 5, customer_number="C000007",
                     change={"subtotal_minor": 12345})  # fmt: skip
    assert book.hand_made_order(case) == "SO-000001"
    _run(book, now, 120)
    created = changes[0]
    assert created.op == "c"
    assert created.after is not None
    assert (created.after["quote_id"], created.after["crm_deal_id"]) == (None, None)
    assert created.after["customer_number"] == "C000007"
    assert created.after["subtotal_minor"] == 12345
    assert {c.table for c in changes} == {"sales_orders", "shipments", "invoices"}  # it ships
    assert recorded.erp_orders == []  # not made through the API
    assert recorded.erp_status_changes == []  # no deal to tell
    (injected,) = recorded.drift_injected
    assert (injected.kind, injected.subject) == ("erp_order_by_hand", "SO-000001")


def _desk() -> tuple[CrmDesk, list[WebhookAction], Recorded]:
    echoes: list[WebhookAction] = []
    recorded = Recorded()
    desk = CrmDesk(recorded, echoes.append, "app", wall=lambda: 1_700_000_000.0)
    desk.know_deal("901", "11")
    desk.know_deal("902", "12")
    return desk, echoes, recorded


def test_a_lost_write_back_is_answered_recorded_as_delivered_and_never_applied() -> None:
    desk, echoes, recorded = _desk()
    desk.plan_drift(DriftCase("drift-4", "crm_writeback_lost", 6, "q-901", "901"))
    desk.patch("deals", "901", {"status": "SHIPPED", "status_reason": "shipped DHL"}, "s")
    answer = desk.patch("deals", "901", {"status": "INVOICED", "status_reason": "invoice"}, "i1")
    desk.patch("deals", "901", {"status": "INVOICED", "status_reason": "invoice 2"}, "i2")
    assert answer == {"id": "901", "updated": ["status", "status_reason"]}
    (deal,) = [d for d in desk.deals() if d["id"] == "901"]
    assert (deal["status"], deal["status_reason"]) == ("SHIPPED", "shipped DHL")
    assert [c.idempotency_key for c in recorded.crm_calls] == ["s", "i1", "i2"]
    assert len(echoes) == 1  # only the applied change is echoed
    (case,) = recorded.drift_injected
    assert (case.kind, case.subject, case.details) == (
        "crm_writeback_lost",
        "901",
        {"status": "INVOICED", "idempotency_key": "i1"},
    )


def test_a_deal_deleted_once_invoiced_stays_gone() -> None:
    desk, echoes, recorded = _desk()
    desk.plan_drift(DriftCase("drift-5", "crm_deal_deleted", 7, "q-902", "902"))
    desk.patch("deals", "902", {"status": "SHIPPED"}, "s")
    assert [d["id"] for d in desk.deals()] == ["901", "902"]
    desk.patch("deals", "902", {"status": "INVOICED"}, "i")
    assert [d["id"] for d in desk.deals()] == ["901"]
    desk.know_deal("902", "12")  # its creation webhook redelivered: no resurrection
    assert [d["id"] for d in desk.deals()] == ["901"]
    assert len(echoes) == 2  # the change was made (and echoed), then the deal deleted
    (case,) = recorded.drift_injected
    assert (case.kind, case.subject) == ("crm_deal_deleted", "902")


def test_drift_on_the_wrong_system_is_refused() -> None:
    desk, _, _ = _desk()
    with pytest.raises(ValueError, match="is not CRM drift"):
        desk.plan_drift(DriftCase("d", "erp_order_edited", 1, "q", "901"))
    book, _, _, _ = _book()
    with pytest.raises(ValueError, match="needs a quote"):
        book.plan_drift(DriftCase("d", "erp_order_deleted", 1))
