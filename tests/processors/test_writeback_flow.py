"""ERP status changes are written back to the CRM deal; the CRM's echo of that write is dropped.

Each ERP change of an ordered quote becomes one ``update-deal``, unless the deal already shows
its values (a repeat, even one whose predecessor is still in flight) or a newer status (a late
change). What the deal shows folds the updates together: it is what recognises the echoes.
"""

from __future__ import annotations

from typing import Any

import pytest

from contracts.models import OrderEvent
from processors.domain.quotes import order_id_for
from tests.processors.events import (
    account_event,
    erp_order_event,
    invoice_event,
    quote_event,
    shipment_event,
)
from tests.processors.harness import PipelineHarness, worker_config

pytestmark = pytest.mark.unit

ORDER = order_id_for("q-w")
CONFIRMED = {"status": "CONFIRMED", "number": "SO-7", "promised_date": "2026-04-01"}


def ordered() -> PipelineHarness:
    """One accepted quote turned into a create-order and read back."""
    h = PipelineHarness(worker_config())
    h.send(h.t.account, account_event("acc-w"))
    h.send(h.t.quote, quote_event("q-w", "acc-w"))
    return h


def erp(version: int = 1, **fields: Any) -> OrderEvent:
    return erp_order_event(ORDER, "acc-w", "q-w", version=version, **{**CONFIRMED, **fields})


def crm_deal(version: int, **fields: Any) -> OrderEvent:
    """The CRM reporting the deal (its ERP fields) as it now shows it."""
    return erp(version, system="crm", crm_record_id="deal-q-w", **fields)


def statuses(h: PipelineHarness) -> list[str | None]:
    return [u.payload.status for u in h.commands(h.t.update_deal)]


def echoes(h: PipelineHarness) -> float:
    return h.metric("interlock_echoes_suppressed_total", entity="order")


def test_an_erp_confirmation_is_written_back_to_the_deal() -> None:
    h = ordered()
    confirmed = erp()
    h.send(h.t.order, confirmed)
    (update,) = h.commands(h.t.update_deal)
    assert update.payload.crm_record_id == "deal-q-w"
    assert (update.payload.status, update.payload.erp_order_number) == ("CONFIRMED", "SO-7")
    assert str(update.payload.promised_date) == "2026-04-01"
    assert update.occurred_at == confirmed.source.changed_at
    assert (update.correlation_id, update.causation_id) == ("q-w", confirmed.event_id)
    shown = h.tables.writebacks["deal-q-w"]  # read back: what the deal shows
    assert (shown["status"], shown["erp_order_number"], shown["promised_date"]) == (
        "CONFIRMED", "SO-7", "2026-04-01",
    )  # fmt: skip
    h.send(h.t.order, confirmed)  # redelivered
    assert len(h.commands(h.t.update_deal)) == 1
    assert [r["details"]["by"] for r in h.decisions("deduplicated")] == ["event_id"]


def test_the_crms_echo_of_our_write_back_is_dropped_by_origin_or_by_values() -> None:
    h = ordered()
    h.send(h.t.order, erp())
    h.send(h.t.order, crm_deal(2))  # no origin: recognised by the values we wrote
    h.send(h.t.order, crm_deal(3, origin="interlock"))
    assert statuses(h) == ["CONFIRMED"]
    assert echoes(h) == 2
    echoed = h.decisions("echo_suppressed")
    assert [r["details"]["recognised_by"] for r in echoed] == ["values", "origin"]
    assert {r["correlation_id"] for r in echoed} == {"q-w"}  # on the quote's trace
    assert h.metric("interlock_events_consumed_total", service="processors", topic=h.t.order,
                    outcome="skipped") == 2  # fmt: skip
    assert h.dead == []
    assert h.decisions("rejected") == []


def test_an_echo_arriving_before_our_write_is_read_back_is_dropped_too() -> None:
    h = ordered()
    h.send(h.t.order, erp(), read_back=False)
    h.send(h.t.order, crm_deal(2))
    assert echoes(h) == 1
    assert statuses(h) == ["CONFIRMED"]


def test_a_person_changing_the_deals_erp_status_is_not_an_echo_and_is_refused() -> None:
    h = ordered()
    h.send(h.t.order, erp())
    h.send(h.t.order, crm_deal(2, status="SHIPPED"))
    assert echoes(h) == 0
    (dead,) = h.dead_letters(h.t.order)
    assert dict(dead.headers)["interlock.dlq.reason"] == b"OWNERSHIP_VIOLATION"
    assert h.metric("interlock_ownership_violations_total", entity="order", field="status",
                    system="crm", action="reject") == 1  # fmt: skip
    assert statuses(h) == ["CONFIRMED"]


def test_shipment_and_invoice_are_written_back_and_the_deal_keeps_what_they_do_not_set() -> None:
    h = ordered()
    h.send(h.t.order, erp())
    h.send(h.t.order, crm_deal(2))  # echo
    h.send(h.t.shipment, shipment_event("acc-w", ORDER, "SO-7", "1Z999"))
    h.send(h.t.invoice, invoice_event("acc-w", ORDER, "SO-7", "PAID"))
    assert statuses(h) == ["CONFIRMED", "SHIPPED", "PAID"]
    shipped, paid = h.commands(h.t.update_deal)[1:]
    assert shipped.payload.status_reason == "shipped DHL 1Z999"
    assert paid.payload.status_reason == "invoice INV-SO-7 PAID"
    assert {u.payload.erp_order_number for u in (shipped, paid)} == {"SO-7"}
    shown = h.tables.writebacks["deal-q-w"]
    assert (shown["status"], shown["promised_date"]) == ("PAID", "2026-04-01")
    # the echo of the shipment's write comes after the invoice's: still ours
    h.send(h.t.order, crm_deal(4, status="SHIPPED", status_reason="shipped DHL 1Z999"))
    assert echoes(h) == 2
    assert len(h.commands(h.t.update_deal)) == 3


def test_a_shipment_handled_after_the_newer_invoice_does_not_move_the_deal_back() -> None:
    h = ordered()
    h.send(h.t.order, erp())
    h.send(h.t.invoice, invoice_event("acc-w", ORDER, "SO-7", "PAID"))
    h.send(h.t.shipment, shipment_event("acc-w", ORDER, "SO-7", "1Z999"))  # changed earlier
    assert statuses(h) == ["CONFIRMED", "PAID"]
    (late,) = h.decisions("deduplicated")
    assert late["details"]["by"] == "deal already shows it (stale)"
    assert h.tables.writebacks["deal-q-w"]["status"] == "PAID"


def test_the_same_values_reported_twice_before_read_back_are_written_once() -> None:
    """The second arrives before the first command is read back (one batch): only the record
    of what is in flight can tell that the deal will already show these values."""
    h = ordered()
    first, again = erp(1), erp(2)
    held = erp(3, status="ON_CREDIT_HOLD")
    for event in (first, again, held):
        h.send(h.t.order, event, read_back=False)
    h.read_back()
    assert statuses(h) == ["CONFIRMED", "ON_CREDIT_HOLD"]
    assert h.commands(h.t.update_deal)[1].payload.credit_hold is True
    (repeat,) = h.decisions("deduplicated")
    assert repeat["event_id"] == again.event_id
    assert repeat["details"]["by"] == "deal already shows it (same values)"
    assert h.metric("interlock_duplicates_suppressed_total", service="processors",
                    stage="writeback") == 1  # fmt: skip
    assert h.tables.writebacks["deal-q-w"]["status"] == "ON_CREDIT_HOLD"
