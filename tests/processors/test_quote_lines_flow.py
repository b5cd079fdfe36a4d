"""A quote whose lines arrive as events of their own (HubSpot line items) is ordered with them.

Line events fold into the quote's assembled lines (``lines`` table); the accepted quote, which
comes without lines, is ordered with the newest lines known for it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.processors.events import account_event, line_event, quote_event
from tests.processors.harness import PipelineHarness, worker_config

pytestmark = pytest.mark.unit

PRODUCT: dict[str, Any] = {"product_id": "P-1", "sku": "SKU-1", "unit_price": Decimal("10.00")}


def ordered_lines(h: PipelineHarness) -> list[tuple[int, Decimal | None, str | None]]:
    (order,) = h.commands(h.t.create_order)
    return [(line.line_number, line.quantity, line.sku) for line in order.payload.lines]


def test_line_events_are_assembled_into_the_accepted_quote_released_with_its_account() -> None:
    h = PipelineHarness(worker_config())
    h.send(h.t.quote, line_event("q-h", "acc-h", 2, quantity=Decimal("1"), **PRODUCT))
    h.send(h.t.quote, line_event("q-h", "acc-h", 1, quantity=Decimal("5"), **PRODUCT))
    h.send(h.t.quote, line_event("q-h", "acc-h", 2, quantity=Decimal("3")))  # one property
    line = h.tables.lines["q-h"]["lines"]["2"]  # the change kept the line's other fields
    assert (Decimal(line["quantity"]), line["sku"], Decimal(line["unit_price"])) == (
        Decimal("3"), "SKU-1", Decimal("10"),
    )  # fmt: skip
    h.send(h.t.quote, quote_event("q-h", "acc-h", lines=[]))  # accepted before its account
    h.send(h.t.quote, quote_event("q-none", "acc-h", lines=[]))  # no line events at all
    assert h.commands(h.t.create_order) == []  # line events order nothing by themselves
    assert set(h.tables.parked) == {"q:q-h", "q:q-none", "a:acc-h"}

    h.send(h.t.account, account_event("acc-h"))
    (order,) = h.commands(h.t.create_order)
    assert order.payload.quote_id == "q-h"
    assert ordered_lines(h) == [(1, Decimal("5"), "SKU-1"), (2, Decimal("3"), "SKU-1")]
    (rejected,) = h.decisions("rejected")
    assert rejected["ids"]["quote_id"] == "q-none"
    assert rejected["details"]["codes"] == ["QUOTE_NO_LINES"]
    (dead,) = h.dead_letters(h.t.quote)
    assert dict(dead.headers)["interlock.dlq.reason"] == b"VALIDATION_MISSING_FIELD"
    merged = [r for r in h.decisions("merged") if r["ids"].get("quote_id") == "q-h"]
    assert [r["details"]["lines"] for r in merged] == [[2], [1], [2]]
    assert h.tables.parked == {}


def test_a_deleted_line_is_not_ordered() -> None:
    h = PipelineHarness(worker_config())
    h.send(h.t.account, account_event("acc"))
    h.send(h.t.quote, line_event("q-1", "acc", 1, quantity=Decimal("5"), **PRODUCT))
    h.send(h.t.quote, line_event("q-1", "acc", 2, quantity=Decimal("1"), **PRODUCT))
    h.send(h.t.quote, line_event("q-1", "acc", 2, deleted=True))
    h.send(h.t.quote, quote_event("q-1", "acc", lines=[]))
    assert ordered_lines(h) == [(1, Decimal("5"), "SKU-1")]


def test_a_line_of_an_older_revision_or_a_redelivered_one_changes_nothing() -> None:
    h = PipelineHarness(worker_config())
    h.send(h.t.account, account_event("acc"))
    current = line_event("q-1", "acc", 1, revision=2, quantity=Decimal("4"), **PRODUCT)
    h.send(h.t.quote, current)
    h.send(h.t.quote, line_event("q-1", "acc", 1, revision=1, quantity=Decimal("9"), **PRODUCT))
    h.send(h.t.quote, current)
    assert h.tables.lines["q-1"]["revision"] == 2
    (ignored,) = h.decisions("ignored")
    assert ignored["details"] == {"lines": [1], "action": "unchanged"}
    assert [r["details"]["by"] for r in h.decisions("deduplicated")] == ["event_id"]
    h.send(h.t.quote, quote_event("q-1", "acc", revision=2, lines=[]))
    assert ordered_lines(h) == [(1, Decimal("4"), "SKU-1")]
