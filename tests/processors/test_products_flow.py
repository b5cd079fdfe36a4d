"""With the product check on, a quote line for a product not in the catalog is dead-lettered.

The worker answers ``known_product`` from its products table; here a set stands in for it.
"""

from __future__ import annotations

import pytest

from contracts import encode
from contracts.review import decode_case
from tests.processors.events import account_event, quote_event
from tests.processors.harness import PipelineHarness, worker_config

pytestmark = pytest.mark.unit

CATALOG = {"P-1", "SKU-1"}


def checked() -> PipelineHarness:
    h = PipelineHarness(worker_config(), known_product=CATALOG.__contains__)
    h.send(h.t.account, account_event("acc-x"))
    return h


def test_unknown_product_is_dead_lettered_and_a_known_one_is_ordered() -> None:
    h = checked()
    h.send(h.t.quote, quote_event("q-known", "acc-x", lines=1))  # line 1: P-1
    unknown = quote_event("q-unknown", "acc-x", lines=2)  # line 2: P-2, not in the catalog
    h.send(h.t.quote, unknown)
    assert [c.payload.quote_id for c in h.commands(h.t.create_order)] == ["q-known"]
    (dead,) = h.dead_letters(h.t.quote)
    headers = dict(dead.headers)
    assert headers["interlock.dlq.reason"] == b"VALIDATION_FAILED"
    assert headers["interlock.dlq.error.message"] == b"QUOTE_UNKNOWN_PRODUCT: line 2 product 'P-2'"
    assert dead.value == encode(unknown)
    (rejected,) = h.decisions("rejected")
    assert rejected["details"]["codes"] == ["QUOTE_UNKNOWN_PRODUCT"]
    (case,) = [decode_case(v) for t, _, v, _ in h.records if t == h.t.cases]
    assert (case.kind, case.quote_id) == ("validation", "q-unknown")
    assert case.context.details["codes"] == ["QUOTE_UNKNOWN_PRODUCT"]


def test_without_the_product_check_the_same_quote_is_ordered() -> None:
    h = PipelineHarness(worker_config())
    h.send(h.t.account, account_event("acc-x"))
    h.send(h.t.quote, quote_event("q-unknown", "acc-x", lines=2))
    (order,) = h.commands(h.t.create_order)
    assert [line.product_id for line in order.payload.lines] == ["P-1", "P-2"]
    assert h.dead == []
