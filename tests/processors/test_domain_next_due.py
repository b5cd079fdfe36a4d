"""When a ledger entry is next due: the earliest moment its drift can change, or it can be
forgotten, with no event touching it (``processors.domain.reconcile.next_due``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from contracts.errors import Reason
from processors.domain.housekeeping import due_at
from processors.domain.reconcile import drift, fold_erp, next_due, transitions
from tests.processors.events import erp_order_event, invoice_event, shipment_event
from tests.processors.test_domain_reconcile import SLAS, _erp, _promised

pytestmark = pytest.mark.unit

TTL = 3600.0


def _settled(entry: dict[str, Any], now: float) -> dict[str, Any]:
    """The entry as the worker stores it after comparing it at ``now``: with what is open."""
    change = transitions(entry.get("open"), drift(entry, now, SLAS), now)
    return {**entry, "open": change.open, "updated_at": entry.get("updated_at", now)}


def _kinds(entry: dict[str, Any], at: float) -> list[Reason]:
    return [finding.kind for finding in drift(entry, at, SLAS)]


def _due_and_then(entry: dict[str, Any], now: float) -> tuple[float | None, list[Reason]]:
    """(next due time, the kinds found at it), checked to be what is found until then."""
    settled = _settled(entry, now)
    due = next_due(settled, now, SLAS, TTL)
    if due is None:
        return None, _kinds(settled, now)
    for before in (now, (now + due) / 2, due - 0.001):
        assert _kinds(settled, before) == _kinds(settled, now), before
    return due, _kinds(settled, due)


def test_a_requested_order_not_in_the_erp_is_due_at_its_order_sla() -> None:
    entry = _promised(now=100.0)
    assert _due_and_then(entry, 100.0) == (160.0, [Reason.RECON_ORDER_MISSING])
    assert _due_and_then(entry, 130.0) == (160.0, [Reason.RECON_ORDER_MISSING])
    # found: it stays open until an event, and an entry with a finding open is never forgotten
    assert _due_and_then(entry, 160.0) == (None, [Reason.RECON_ORDER_MISSING])


def test_an_order_deleted_in_the_erp_is_due_at_the_order_sla_of_the_request() -> None:
    entry = _erp(_promised(now=100.0), erp_order_event("o", "a", "q1", number="SO-1"))
    deleted = erp_order_event("o", "a", "q1", number="SO-1", version=2)
    deleted = deleted.model_copy(update={"event_type": "OrderDeleted"})
    assert _due_and_then(_erp(entry, deleted), 120.0) == (160.0, [Reason.RECON_ORDER_MISSING])


def test_an_entry_that_agrees_is_due_when_it_may_be_forgotten() -> None:
    entry = _erp(_promised(now=100.0), erp_order_event("o", "a", "q1", number="SO-1"))
    entry["updated_at"] = 100.0
    assert _due_and_then(entry, 100.0) == (100.0 + TTL, [])
    untimed = {k: v for k, v in _settled(entry, 100.0).items() if k != "updated_at"}
    assert next_due(untimed, 100.0, SLAS, TTL) is None  # never touched: never forgotten


def test_an_erp_order_of_an_older_revision_is_due_only_if_it_differs() -> None:
    entry = _promised(now=100.0, total=Decimal("40.00"), revision=2)
    older = _erp(entry, erp_order_event("o", "a", "q1", total=Decimal("20"), quote_revision=1))
    assert _due_and_then(older, 100.0) == (160.0, [Reason.RECON_ORDER_MISMATCH])
    same = _erp(entry, erp_order_event("o", "a", "q1", total=Decimal("40"), quote_revision=1))
    assert drift(same, 1000.0, SLAS) == []
    same["updated_at"] = 100.0
    assert _due_and_then(same, 100.0) == (100.0 + TTL, [])  # the SLA passes and nothing differs


def test_an_erp_order_nobody_quoted_is_due_at_the_order_sla_of_its_first_sight() -> None:
    orphan = {"number": "SO-9", "erp": fold_erp(None, {"number": "SO-9", "at": "x"}, 10.0)}
    assert _due_and_then(orphan, 10.0) == (70.0, [Reason.RECON_ORDER_WITHOUT_QUOTE])
    assert _due_and_then(orphan, 70.0) == (None, [Reason.RECON_ORDER_WITHOUT_QUOTE])


def test_a_hold_is_due_at_the_writeback_sla_unless_the_deal_was_told() -> None:
    entry = _erp(_promised(), erp_order_event("o", "a", "q1", number="SO-1"), now=0.0)
    held = _erp(entry, erp_order_event("o", "a", "q1", status="ON_CREDIT_HOLD", version=2),
                now=10.0)  # fmt: skip
    held["updated_at"] = 10.0
    assert _due_and_then(held, 10.0) == (40.0, [Reason.RECON_DEAL_STILL_OPEN])
    told = {**held, "told": {"last": "ON_CREDIT_HOLD", "at": {"ON_CREDIT_HOLD": 12.0}}}
    assert _due_and_then(told, 12.0) == (10.0 + TTL, [])


def test_a_fulfilment_step_is_due_from_the_first_step_learned_unless_reported() -> None:
    entry = _erp(_promised(), erp_order_event("o", "a", "q1", number="SO-1"), now=0.0)
    shipped = _erp(entry, shipment_event("a", "o", "SO-1", "T1"), now=5.0)
    invoiced = _erp(shipped, invoice_event("a", "o", "SO-1", "ISSUED"), now=20.0)
    assert _due_and_then(invoiced, 20.0) == (35.0, [Reason.RECON_FULFILMENT_NOT_REPORTED])
    shipped_told = {**invoiced, "told": {"last": "SHIPPED", "at": {"SHIPPED": 6.0}},
                    "updated_at": 20.0}  # fmt: skip
    assert _due_and_then(shipped_told, 20.0) == (35.0, [Reason.RECON_FULFILMENT_NOT_REPORTED])
    reported = {**invoiced, "told": {"last": "INVOICED", "at": {"INVOICED": 21.0}},
                "updated_at": 21.0}  # fmt: skip
    assert _due_and_then(reported, 21.0) == (21.0 + TTL, [])


def test_the_earliest_of_several_deadlines_comes_first() -> None:
    entry = _erp(_promised(now=100.0), erp_order_event("o", "a", "q1", number="SO-1"))
    held = _erp(entry, erp_order_event("o", "a", "q1", status="CANCELLED", version=2), now=50.0)
    deleted = erp_order_event("o", "a", "q1", number="SO-1", version=3)
    both = _erp(held, deleted.model_copy(update={"event_type": "OrderDeleted"}), now=50.0)
    # the cancellation (learned at 50) is owed to the deal at 80, the order missing at 160
    assert next_due(_settled(both, 60.0), 60.0, SLAS, TTL) == 80.0
    assert next_due(_settled(both, 80.0), 80.0, SLAS, TTL) == 160.0  # one found, one ahead


def test_a_value_overwritten_in_the_crm_never_falls_due_by_time() -> None:
    entry = _erp(_promised(), erp_order_event("o", "a", "q1", number="SO-1"), now=0.0)
    edited = {**entry, "told": {"values": {"status": "ON_CREDIT_HOLD"}},
              "crm_shows": {"status": "CONFIRMED"}, "updated_at": 0.0}  # fmt: skip
    assert _due_and_then(edited, 0.0) == (None, [Reason.RECON_CRM_VALUE_OVERWRITTEN])


def test_the_due_time_is_read_from_a_stored_entry() -> None:
    assert due_at({"due_at": 160.0}) == 160.0
    assert due_at({"quote_id": "q1"}) is None  # written before due times were kept
    assert due_at("q1") is None  # a deal's quote id: no entry
