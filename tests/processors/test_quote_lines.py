"""A quote whose lines arrive as events of their own (HubSpot line items) is ordered with them."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from contracts import OrderEvent, QuoteEvent, QuoteLine
from tests.processors.conftest import ProcessorsEnv
from tests.processors.events import account_event, quote_event

pytestmark = pytest.mark.integration


def line_event(quote_id: str, account_id: str, number: int, **fields: Any) -> QuoteEvent:
    """A line item's own event: the quote id, its revision and one line, no quote status."""
    event = quote_event(
        quote_id,
        account_id,
        status="SENT",
        lines=[QuoteLine(line_number=number, **fields)],
        version=10 + number + int(fields.get("quantity", 0)),
    )
    payload = event.payload.model_copy(update={"status": None, "ship_to": None})
    return event.model_copy(update={"event_type": "QuoteLineChanged", "payload": payload})


def test_line_events_are_assembled_into_the_accepted_quote(proc_env: ProcessorsEnv) -> None:
    t = proc_env.topics
    product = {"product_id": "P-1", "sku": "SKU-1", "unit_price": Decimal("10.00")}
    proc_env.send(
        t.quote,
        line_event("q-h", "acc-h", 2, quantity=Decimal("1"), **product),
        line_event("q-h", "acc-h", 1, quantity=Decimal("5"), **product),
        line_event("q-h", "acc-h", 2, quantity=Decimal("3")),  # one property changed
        quote_event("q-h", "acc-h", lines=[]),  # accepted before its account is known: parks
        quote_event("q-none", "acc-h", lines=[]),  # no line events at all
    )
    worker = proc_env.start_worker()
    proc_env.send(t.account, account_event("acc-h"))  # releases q-h
    commands = proc_env.wait_for(t.create_order, lambda ev: len(ev) >= 1)
    orders = [c.payload for c in commands if isinstance(c, OrderEvent)]
    assert [o.quote_id for o in orders] == ["q-h"], worker.output()
    assert [(line.line_number, line.quantity, line.sku) for line in orders[0].lines] == [
        (1, Decimal("5"), "SKU-1"),
        (2, Decimal("3"), "SKU-1"),
    ]
    deadline = time.monotonic() + 30
    records = proc_env.audit()
    while not any(r["decision"] == "rejected" for r in records):
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.5)
        records = proc_env.audit()
    assert [
        (r["ids"]["quote_id"], r["details"]["codes"])
        for r in records
        if r["decision"] == "rejected"
    ] == [("q-none", ["QUOTE_NO_LINES"])]
    assert (
        sum(r["decision"] == "merged" and r["ids"].get("quote_id") == "q-h" for r in records) == 3
    )
