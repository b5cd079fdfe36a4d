"""One create-order per quote across duplicates and a restart; amend and cancel compensate."""

from __future__ import annotations

import pytest

from contracts import OrderEvent
from tests.processors.conftest import ProcessorsEnv
from tests.processors.events import account_event, erp_order_event, quote_event

pytestmark = pytest.mark.integration


def test_duplicate_quote_and_redelivery_after_restart_yield_one_order(
    proc_env: ProcessorsEnv,
) -> None:
    t = proc_env.topics
    proc_env.send(t.account, account_event("acc-1"))
    quote = quote_event("q-1", "acc-1")
    proc_env.send(t.quote, quote, quote)
    worker = proc_env.start_worker()
    commands = proc_env.wait_for(t.create_order, lambda ev: len(ev) >= 1)
    # the command was read back into the order state before we stop
    worker.wait_metric("interlock_events_consumed_total", 1, topic=t.create_order, outcome="ok")
    assert len(commands) == 1, worker.output()
    order = commands[0]
    assert isinstance(order, OrderEvent)
    assert order.causation_id == quote.event_id
    assert order.correlation_id == "q-1"
    assert order.occurred_at == quote.payload.accepted_at
    assert order.payload.erp_customer_number == "C-acc-1"
    assert worker.stop() == 0, worker.output()

    proc_env.send(t.quote, quote)  # redelivered after a graceful restart
    proc_env.send(t.quote, quote_event("q-2", "acc-1"))  # proves the new worker is processing
    worker = proc_env.start_worker()
    commands = proc_env.wait_for(t.create_order, lambda ev: len(ev) >= 2)
    # q-1's redelivery is before q-2 in the same partition: a duplicate would already be here
    by_quote = sorted(c.payload.quote_id for c in commands if isinstance(c, OrderEvent))
    assert by_quote == ["q-1", "q-2"], worker.output()

    # A new accepted revision of q-1 amends its order; withdrawing q-2 cancels its order.
    # Both arrive before the ERP has answered the create-orders: the compensations wait for
    # the ERP order numbers, then address those orders.
    proc_env.send(t.quote, quote_event("q-1", "acc-1", revision=2, lines=3))
    proc_env.send(t.quote, quote_event("q-2", "acc-1", status="WITHDRAWN"))
    for command, number in zip(
        sorted(commands, key=lambda c: c.payload.quote_id), ("SO-1", "SO-2"), strict=True
    ):
        order = command.payload
        created = erp_order_event(order.order_id, "acc-1", order.quote_id, number=number)
        proc_env.send(t.order, created)
    amends = proc_env.wait_for(t.amend_order, lambda ev: len(ev) >= 1)
    cancels = proc_env.wait_for(t.cancel_order, lambda ev: len(ev) >= 1)
    assert [(a.payload.quote_id, a.payload.quote_revision, len(a.payload.lines),
             a.payload.erp_order_number) for a in amends
            if isinstance(a, OrderEvent)] == [("q-1", 2, 3, "SO-1")]  # fmt: skip
    assert [
        (c.payload.quote_id, c.payload.status, c.payload.erp_order_number)
        for c in cancels
        if isinstance(c, OrderEvent)
    ] == [("q-2", "CANCELLED", "SO-2")]
    assert len(proc_env.events(t.create_order)) == 2  # compensation, never a second order
