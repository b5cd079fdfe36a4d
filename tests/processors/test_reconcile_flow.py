"""Reconciliation inside the pipeline: dict tables, a fake clock, the records it writes.

The pipeline handles canonical events and reads its own commands back as in the worker; the
ledger follows, and findings open and resolve on ``audit.reconciliation`` exactly once.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts import encode
from contracts.models import OrderEvent
from contracts.ownership import load_ownership
from processors.pipeline import PipelineConfig
from processors.topic_names import ProcessorTopics
from tests.processors.events import (
    account_event,
    erp_order_event,
    quote_event,
    shipment_event,
)
from tests.processors.harness import PipelineHarness

pytestmark = pytest.mark.unit

ORDER_SLA, WRITEBACK_SLA, INTERVAL = 60.0, 30.0, 5.0


class Harness(PipelineHarness):
    """The pipeline with reconciliation on short SLAs."""

    def __init__(self) -> None:
        super().__init__(
            PipelineConfig(
                ProcessorTopics("t."),
                load_ownership(),
                300.0,
                3600.0,
                0.85,
                reconcile_order_sla_s=ORDER_SLA,
                reconcile_writeback_sla_s=WRITEBACK_SLA,
                reconcile_interval_s=INTERVAL,
            )
        )

    def findings(self) -> list[dict[str, Any]]:
        return [json.loads(v) for t, _, v, _ in self.records if t == self.topics.reconciliation]

    def drift(self, kind: str) -> float | None:
        return self.registry.get_sample_value("interlock_reconciliation_drift", {"kind": kind})


def _ordered() -> Harness:
    h = Harness()
    h.send(h.topics.account, account_event("a"))
    h.send(h.topics.quote, quote_event("q1", "a"))
    return h


def test_a_quote_ordered_and_answered_in_time_raises_nothing() -> None:
    h = _ordered()
    h.send(h.topics.order, erp_order_event("o", "a", "q1", status="CONFIRMED", number="SO-1"))
    h.tick(ORDER_SLA + WRITEBACK_SLA + INTERVAL)
    assert h.findings() == []
    assert h.drift("RECON_ORDER_MISSING") == 0


def test_a_missing_erp_order_is_found_once_and_resolved_once() -> None:
    h = _ordered()
    (create,) = h.commands(h.topics.create_order)
    h.tick(ORDER_SLA / 2)
    assert h.findings() == []
    h.tick(ORDER_SLA / 2 + INTERVAL)
    h.tick(INTERVAL)  # found again: the same finding, not written again
    (found,) = h.findings()
    assert found["record"] == "finding"
    assert found["kind"] == "RECON_ORDER_MISSING"
    assert found["subject"] == "q1"
    assert found["repair"] == {"command": "create-order", "event_id": create.event_id}
    assert h.drift("RECON_ORDER_MISSING") == 1
    h.send(h.topics.order, erp_order_event("o", "a", "q1", status="CONFIRMED", number="SO-1"))
    opened, resolved = h.findings()
    assert resolved["record"] == "resolved"
    assert resolved["finding_id"] == opened["finding_id"]
    assert h.drift("RECON_ORDER_MISSING") == 0
    counted = h.registry.get_sample_value(
        "interlock_reconciliation_findings_total",
        {"kind": "RECON_ORDER_MISSING", "state": "resolved"},
    )
    assert counted == 1


def test_an_erp_order_nobody_quoted_is_found_after_the_order_sla() -> None:
    h = Harness()
    h.send(h.topics.order, erp_order_event("o9", "a", None, status="CONFIRMED", number="SO-9"))
    h.tick(ORDER_SLA + INTERVAL)
    (found,) = h.findings()
    assert (found["kind"], found["subject"]) == ("RECON_ORDER_WITHOUT_QUOTE", "SO-9")


def test_a_shipment_seen_before_its_order_was_known_is_a_missing_writeback_and_repairable() -> None:
    h = _ordered()
    # the ERP reports the shipment before the sinks' answer names the order: nothing correlates
    h.send(h.topics.shipment, shipment_event("a", "erp-o", "SO-1", "T1"))
    h.send(h.topics.order, erp_order_event("o", "a", "q1", status="CONFIRMED", number="SO-1"))
    h.tick(WRITEBACK_SLA + INTERVAL)
    (found,) = h.findings()
    assert found["kind"] == "RECON_FULFILMENT_NOT_REPORTED"
    assert found["details"]["erp_status"] == "SHIPPED"
    repair = OrderEvent.model_validate(found["repair"]["value"])
    assert repair.event_id == found["repair"]["event_id"]
    assert repair.payload.status == "SHIPPED"
    assert repair.payload.crm_record_id == "deal-q1"
    # what `interlock reconcile repair` does: the command on its topic, read back by the worker
    h.records.append((h.topics.update_deal, b"a", encode(repair), None))
    h.read_back()
    assert [r["record"] for r in h.findings()] == ["finding", "resolved"]


def test_a_hold_written_back_in_time_is_no_drift_and_a_deal_edited_in_the_crm_is() -> None:
    h = _ordered()
    h.send(h.topics.order, erp_order_event("o", "a", "q1", status="ON_CREDIT_HOLD", number="S1"))
    assert len(h.commands(h.topics.update_deal)) == 1
    h.tick(WRITEBACK_SLA + INTERVAL)
    assert h.findings() == []
    crm = erp_order_event("o", "a", "q1", status="CONFIRMED", number="S1", system="crm",
                          crm_record_id="deal-q1", version=7)  # fmt: skip
    h.send(h.topics.order, crm)  # a person set the deal's ERP status by hand: rejected
    (found,) = h.findings()
    assert found["kind"] == "RECON_CRM_VALUE_OVERWRITTEN"
    assert found["details"]["crm"] == "CONFIRMED"
    assert found["details"]["written"] == "ON_CREDIT_HOLD"
