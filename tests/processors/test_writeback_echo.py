"""ERP status changes are written back to the CRM deal; the CRM's echo of that write is dropped."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from contracts import OrderEvent
from processors.domain.quotes import order_id_for
from tests.processors.conftest import ROOT, ProcessorsEnv, Worker
from tests.processors.events import (
    account_event,
    erp_order_event,
    invoice_event,
    quote_event,
    shipment_event,
)

pytestmark = pytest.mark.integration


def _worker_with_order(proc_env: ProcessorsEnv, quote_id: str, account_id: str) -> Worker:
    """A worker that has turned one accepted quote into a create-order and read it back."""
    t = proc_env.topics
    proc_env.send(t.account, account_event(account_id))
    proc_env.send(t.quote, quote_event(quote_id, account_id))
    worker = proc_env.start_worker()
    proc_env.wait_for(t.create_order, lambda ev: len(ev) >= 1)
    worker.wait_metric("interlock_events_consumed_total", 1, topic=t.create_order, outcome="ok")
    return worker


def test_write_back_then_echo_produces_no_second_command(proc_env: ProcessorsEnv) -> None:
    t = proc_env.topics
    worker = _worker_with_order(proc_env, "q-w", "acc-w")

    order_id = order_id_for("q-w")
    confirmed = erp_order_event(
        order_id, "acc-w", "q-w", status="CONFIRMED", number="SO-7", promised_date="2026-04-01"
    )
    proc_env.send(t.order, confirmed)
    updates = proc_env.wait_for(t.update_deal, lambda ev: len(ev) >= 1)
    assert len(updates) == 1, worker.output()
    update = updates[0]
    assert isinstance(update, OrderEvent)
    assert update.payload.crm_record_id == "deal-q-w"
    assert update.payload.status == "CONFIRMED"
    assert update.payload.erp_order_number == "SO-7"
    assert update.occurred_at == confirmed.source.changed_at
    assert update.correlation_id == "q-w"
    worker.wait_metric("interlock_events_consumed_total", 1, topic=t.update_deal, outcome="ok")

    # The CRM reports the deal change we made: once without origin (recognised by the values we
    # wrote), once carrying our origin marker.
    echo_values = erp_order_event(
        order_id, "acc-w", "q-w", status="CONFIRMED", number="SO-7", system="crm",
        crm_record_id="deal-q-w", promised_date="2026-04-01", version=2,
    )  # fmt: skip
    echo_origin = erp_order_event(
        order_id, "acc-w", "q-w", status="CONFIRMED", number="SO-7", system="crm",
        crm_record_id="deal-q-w", origin="interlock", version=3,
    )  # fmt: skip
    proc_env.send(t.order, echo_values, echo_origin)
    # then the ERP ships, and later invoices: two more write-backs. One after the other: they
    # are on different topics, and a shipment handled after the (newer) invoice would be
    # skipped as stale, since it would move the deal back from PAID to SHIPPED.
    proc_env.send(t.shipment, shipment_event("acc-w", order_id, "SO-7", "1Z999"))
    proc_env.wait_for(t.update_deal, lambda ev: len(ev) >= 2)
    proc_env.send(t.invoice, invoice_event("acc-w", order_id, "SO-7", "PAID"))
    updates = proc_env.wait_for(t.update_deal, lambda ev: len(ev) >= 3)
    assert worker.wait_metric("interlock_echoes_suppressed_total", 2, entity="order") == 2
    statuses = sorted(u.payload.status for u in updates if isinstance(u, OrderEvent))
    assert statuses == ["CONFIRMED", "PAID", "SHIPPED"], worker.output()
    shipped = next(
        u for u in updates if isinstance(u, OrderEvent) and u.payload.status == "SHIPPED"
    )
    assert "1Z999" in (shipped.payload.status_reason or "")
    echoes = [r for r in proc_env.audit() if r["decision"] == "echo_suppressed"]
    assert sorted(r["details"]["recognised_by"] for r in echoes) == ["origin", "values"]

    # The whole journey of the quote, in order, from the trace command.
    trace = subprocess.run(
        [sys.executable, "-m", "interlock.cli", "trace", "q-w", "--prefix", t.prefix],
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": proc_env.settings.kafka.bootstrap_servers or "",
            "COLUMNS": "300",
        },
        cwd=proc_env.tmp,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert trace.returncode == 0, trace.stderr
    lines = trace.stdout.splitlines()

    def first(text: str) -> int:
        return next(i for i, line in enumerate(lines) if text in line)

    assert (
        first(t.quote) < first(t.create_order) < first("OrderStatusChanged") < first(t.update_deal)
    ), trace.stdout
    assert "decision: echo_suppressed" in trace.stdout


def test_same_values_reported_twice_before_read_back_write_once(proc_env: ProcessorsEnv) -> None:
    """Two ERP changes showing the deal the same values, back to back: one update-deal.

    The second arrives before the first command is read back (same batch), so only the
    in-flight record of what was written can tell the deal will already show these values.
    """
    t = proc_env.topics
    worker = _worker_with_order(proc_env, "q-d", "acc-d")

    order_id = order_id_for("q-d")
    same = {"status": "CONFIRMED", "number": "SO-9", "promised_date": "2026-04-01"}
    first = erp_order_event(order_id, "acc-d", "q-d", version=1, **same)
    again = erp_order_event(order_id, "acc-d", "q-d", version=2, **same)
    held = erp_order_event(
        order_id, "acc-d", "q-d", version=3, **{**same, "status": "ON_CREDIT_HOLD"}
    )
    proc_env.send(t.order, first, again, held)
    worker.wait_metric("interlock_events_consumed_total", 2, topic=t.update_deal, outcome="ok")
    worker.wait_metric("interlock_events_consumed_total", 3, topic=t.order)
    updates = proc_env.wait_for(t.update_deal, lambda ev: len(ev) >= 2)
    statuses = [u.payload.status for u in updates if isinstance(u, OrderEvent)]
    assert statuses == ["CONFIRMED", "ON_CREDIT_HOLD"], worker.output()
    skipped = [
        r for r in proc_env.audit()
        if r["decision"] == "deduplicated" and r.get("event_id") == again.event_id
    ]  # fmt: skip
    assert skipped, "the repeat is audited as a duplicate write-back"
