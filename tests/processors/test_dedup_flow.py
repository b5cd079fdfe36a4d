"""One create-order per quote whatever is redelivered or replayed; amend and cancel compensate.

A redelivered event id is known (in flight, then from ``seen``); another event of a revision
already ordered is known by the order state. A new revision amends the order, a withdrawal
cancels it; either waits for the ERP order's number when the ERP has not answered yet.
"""

from __future__ import annotations

import pytest

from processors.domain.quotes import order_id_for
from tests.processors.events import account_event, erp_order_event, quote_event
from tests.processors.harness import PipelineHarness, worker_config

pytestmark = pytest.mark.unit


def ordered(*quote_ids: str) -> PipelineHarness:
    h = PipelineHarness(worker_config())
    h.send(h.t.account, account_event("acc-1"))
    for quote_id in quote_ids:
        h.send(h.t.quote, quote_event(quote_id, "acc-1"))
    return h


def duplicates(h: PipelineHarness) -> list[str]:
    return [r["details"]["by"] for r in h.decisions("deduplicated")]


def test_a_redelivered_quote_gives_one_create_order_carrying_the_quotes_ids_and_time() -> None:
    h = PipelineHarness(worker_config())
    h.send(h.t.account, account_event("acc-1"))
    quote = quote_event("q-1", "acc-1")
    h.send(h.t.quote, quote)
    h.send(h.t.quote, quote)
    (order,) = h.commands(h.t.create_order)
    assert order.causation_id == quote.event_id
    assert order.correlation_id == "q-1"
    assert order.occurred_at == quote.payload.accepted_at
    assert (order.payload.order_id, order.payload.quote_revision) == (order_id_for("q-1"), 1)
    assert order.payload.erp_customer_number == "C-acc-1"
    assert duplicates(h) == ["event_id"]
    assert h.metric("interlock_duplicates_suppressed_total", service="processors",
                    stage="quote") == 1  # fmt: skip
    assert h.metric("interlock_events_consumed_total", service="processors", topic=h.t.quote,
                    outcome="duplicate") == 1  # fmt: skip
    assert h.tables.orders["q-1"]["status"] == "requested"
    assert quote.event_id in h.tables.seen


def test_a_redelivery_while_the_first_command_is_in_flight_gives_no_second_order() -> None:
    h = PipelineHarness(worker_config())
    h.send(h.t.account, account_event("acc-1"))
    quote = quote_event("q-1", "acc-1")
    h.send(h.t.quote, quote, read_back=False)
    h.send(h.t.quote, quote, read_back=False)  # same batch: nothing is durable yet
    assert "q-1" not in h.tables.orders
    h.read_back()
    assert len(h.commands(h.t.create_order)) == 1
    assert duplicates(h) == ["event_id"]


def test_a_replay_of_the_revision_under_another_event_id_gives_no_second_order() -> None:
    h = ordered("q-1")
    h.send(h.t.quote, quote_event("q-1", "acc-1", version=2))  # re-emitted: new id, same revision
    assert len(h.commands(h.t.create_order)) == 1
    assert duplicates(h) == ["quote_id+revision (duplicate)"]


def test_amend_and_cancel_sent_before_the_erp_answered_wait_for_its_order_numbers() -> None:
    h = ordered("q-1", "q-2")
    creates = h.commands(h.t.create_order)
    h.send(h.t.quote, quote_event("q-1", "acc-1", revision=2, lines=3))
    h.send(h.t.quote, quote_event("q-2", "acc-1", status="WITHDRAWN"))
    assert h.commands(h.t.amend_order) == []
    assert h.commands(h.t.cancel_order) == []
    held = [(r["ids"]["quote_id"], r["details"]["command"]) for r in h.decisions("held")]
    assert held == [("q-1", "amend-order"), ("q-2", "cancel-order")]
    for create, number in zip(creates, ("SO-1", "SO-2"), strict=True):
        order = create.payload
        h.send(h.t.order, erp_order_event(order.order_id, "acc-1", order.quote_id, number=number))
    (amend,) = h.commands(h.t.amend_order)
    assert (amend.payload.quote_id, amend.payload.quote_revision, len(amend.payload.lines),
            amend.payload.erp_order_number) == ("q-1", 2, 3, "SO-1")  # fmt: skip
    assert amend.payload.order_id == order_id_for("q-1")
    (cancel,) = h.commands(h.t.cancel_order)
    assert (cancel.payload.quote_id, cancel.payload.status, cancel.payload.erp_order_number) == (
        "q-2", "CANCELLED", "SO-2",
    )  # fmt: skip
    assert len(h.commands(h.t.create_order)) == 2  # compensation, never a second order
    assert h.tables.orders["q-1"]["revision"] == 2
    assert h.tables.orders["q-2"]["status"] == "cancelled"
    assert "h:q-1" not in h.tables.correlation


def test_a_compensation_after_the_erp_answered_goes_out_at_once_and_only_once() -> None:
    h = ordered("q-1")
    (create,) = h.commands(h.t.create_order)
    h.send(h.t.order, erp_order_event(create.payload.order_id, "acc-1", "q-1", number="SO-1"))
    revised = quote_event("q-1", "acc-1", revision=2)
    h.send(h.t.quote, revised)
    h.send(h.t.quote, revised)  # redelivered
    h.send(h.t.quote, quote_event("q-1", "acc-1", revision=1, version=3))  # an older revision
    (amend,) = h.commands(h.t.amend_order)
    assert (amend.payload.quote_revision, amend.payload.erp_order_number) == (2, "SO-1")
    assert duplicates(h) == ["event_id", "quote_id+revision (stale)"]
    h.send(h.t.quote, quote_event("q-1", "acc-1", revision=2, status="EXPIRED"))
    (cancel,) = h.commands(h.t.cancel_order)
    assert (cancel.payload.quote_revision, cancel.payload.erp_order_number) == (2, "SO-1")
    assert len(h.commands(h.t.create_order)) == 1
