"""With the product check on, a quote line for a product not in the catalog is dead-lettered."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts import OrderEvent, Product, ProductEvent, Source, deterministic_event_id
from tests.processors.conftest import ProcessorsEnv
from tests.processors.events import account_event, quote_event

pytestmark = pytest.mark.integration


def product_event(product_id: str, sku: str) -> ProductEvent:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    return ProductEvent(
        event_id=deterministic_event_id("erp", "product", product_id),
        event_type="ProductChanged",
        source=Source(system="erp", vendor="pg-erp", record_id=product_id, changed_at=at),
        correlation_id=product_id,
        occurred_at=at,
        payload=Product(product_id=product_id, sku=sku, active=True),
    )


def test_unknown_product_is_dead_lettered_known_one_is_ordered(proc_env: ProcessorsEnv) -> None:
    t = proc_env.topics
    proc_env.send(t.product, product_event("P-1", "SKU-1"), key="P-1")
    worker = proc_env.start_worker(INTERLOCK_PROCESSORS__CHECK_PRODUCTS="true")
    assert worker.wait_metric("interlock_events_consumed_total", 1, topic=t.product) == 1
    proc_env.send(t.account, account_event("acc-x"))
    proc_env.send(t.quote, quote_event("q-known", "acc-x", lines=1))  # line 1: P-1
    proc_env.send(t.quote, quote_event("q-unknown", "acc-x", lines=2))  # line 2: P-2, unknown
    commands = proc_env.wait_for(t.create_order, lambda ev: len(ev) >= 1)
    assert [c.payload.quote_id for c in commands if isinstance(c, OrderEvent)] == ["q-known"]
    dead = proc_env.wait_for_raw(f"dlq.{t.quote}", lambda recs: len(recs) >= 1)
    headers = dict(dead[0].headers)
    assert headers["interlock.dlq.reason"] == b"VALIDATION_FAILED", worker.output()
    assert b"QUOTE_UNKNOWN_PRODUCT: line 2 product 'P-2'" in headers["interlock.dlq.error.message"]
