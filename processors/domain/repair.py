"""The commands that repair a reconciliation finding (``processors.domain.reconcile``).

A missing ERP order is repaired by producing its create-order again (``reconcile repair``
reads it from its topic); a deal not told of what the ERP did gets the update-deal command
built here, carried on the finding's record so that a repair re-drives exactly it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from contracts.models import Order, OrderEvent, Source
from processors.domain.reconcile import STOPPED, Finding

__all__ = ["writeback_repair"]


def writeback_repair(
    entry: Mapping[str, Any], finding: Finding, origin: str, now: float
) -> OrderEvent:
    """The update-deal command that tells the deal what a write-back finding says it misses.

    Its id comes from the finding, so re-driving it twice is one write at the CRM.
    """
    erp = entry["erp"]
    status = str(finding.details["erp_status"])
    number = erp.get("number")
    fields: dict[str, Any] = {"status": status, "erp_order_number": number}
    if status in STOPPED:
        fields["credit_hold"] = status == "ON_CREDIT_HOLD"
    at = datetime.fromisoformat(str(erp.get("status_at"))) if erp.get("status_at") else None
    occurred = at or datetime.fromtimestamp(now, UTC)
    payload = Order(
        order_id=str(entry.get("order_id") or entry["quote_id"]),
        account_id=str(entry["account_id"]),
        quote_id=str(entry["quote_id"]),
        quote_revision=(entry.get("promise") or {}).get("revision"),
        crm_record_id=str(entry["deal_id"]),
        status_reason=f"reconciliation {finding.finding_id}",
        **{k: v for k, v in fields.items() if v is not None},
    )
    assert finding.repair is not None
    return OrderEvent(
        event_id=str(finding.repair["event_id"]),
        event_type="DealStatusUpdateRequested",
        source=Source(system="erp", vendor="interlock-reconcile", record_id=str(number or "")),
        correlation_id=str(entry.get("correlation_id") or entry["quote_id"]),
        causation_id=finding.finding_id,
        occurred_at=occurred,
        origin=origin,
        changed_fields=sorted([*(k for k, v in fields.items() if v is not None), "status_reason"]),
        payload=payload,
    )
