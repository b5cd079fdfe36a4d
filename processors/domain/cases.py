"""The exception desk's rules: open a case, escalate it past its SLA, apply a decision. Pure.

A case is opened once per situation (its id comes from its kind and subject); seen again while
open it is refreshed, seen again once decided it stays decided. A decision changes the case's
status and names the **effect** the worker must carry out (link the accounts, create the order
despite a limit, write a rejection back to the CRM deal, try the quote again), so the worker's
code is plumbing and every rule is testable here without Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from contracts.ids import deterministic_event_id
from contracts.models import Order, OrderEvent, Source
from contracts.policy import CommercialPolicy
from contracts.review import (
    CLOSED_STATUSES,
    Case,
    CaseContext,
    CaseKind,
    CaseStatus,
    Decision,
    case_id_for,
)
from processors.domain.quotes import order_id_for

__all__ = [
    "Applied",
    "Effect",
    "apply_decision",
    "escalate",
    "open_case",
    "refresh_case",
    "rejection_update",
]

Effect = Literal[
    "none",
    "link",
    "distinct",
    "create_override",
    "retry",
    "reject_writeback",
]
"""What the worker does for an applied decision (besides writing the case and the audit)."""

_APPROVED: dict[CaseKind, tuple[CaseStatus, Effect]] = {
    "account_match": ("linked", "link"),
    "policy": ("approved", "create_override"),
    "credit_hold": ("approved", "create_override"),
    "validation": ("approved", "retry"),
    "parked_timeout": ("approved", "retry"),
}
"""Approve, per kind: the status it leaves and what it does. An approved account match links
to the chosen (or best) candidate; a policy or credit-hold approval creates the order with the
override recorded; a validation or timeout approval tries the quote again as it is now."""


@dataclass(frozen=True, slots=True)
class Applied:
    """A decision's result: the case after it, what happened, and what the worker must do."""

    case: Case
    outcome: str
    effect: Effect
    target: str | None = None


def open_case(
    policy: CommercialPolicy,
    *,
    kind: CaseKind,
    subject: str,
    reason: str,
    now: float,
    partition_key: str,
    summary: str,
    context: CaseContext | None = None,
    total: Decimal | None = None,
    currency: str | None = None,
    route_by: tuple[str, ...] = (),
    quote_id: str | None = None,
    account_id: str | None = None,
    deal_id: str | None = None,
    correlation_id: str | None = None,
) -> Case:
    """A new case, routed to its team with a severity from its value and the SLA that goes
    with it. ``route_by`` are codes that may route it elsewhere (e.g. a validation code)."""
    severity = policy.severity_for(total, currency)
    return Case(
        case_id=case_id_for(kind, subject),
        kind=kind,
        reason=reason,
        status="open",
        team=policy.team_for(kind, reason, *route_by),
        severity=severity,
        opened_at=now,
        updated_at=now,
        sla_due=now + policy.sla_for(severity),
        partition_key=partition_key,
        quote_id=quote_id,
        account_id=account_id,
        deal_id=deal_id,
        correlation_id=correlation_id,
        summary=summary[:200],
        context=context or CaseContext(),
    )


def refresh_case(existing: Case | None, fresh: Case) -> Case | None:
    """The case to write when its situation is seen (again); None: nothing changed.

    New: ``fresh``. Open: the newer context, summary and ids, keeping who and since when.
    Decided: left alone (a redelivered cause does not reopen what a person decided).
    """
    if existing is None:
        return fresh
    if existing.status in CLOSED_STATUSES:
        return None
    update: dict[str, Any] = {
        "context": fresh.context,
        "summary": fresh.summary or existing.summary,
        "quote_id": fresh.quote_id or existing.quote_id,
        "deal_id": fresh.deal_id or existing.deal_id,
        "correlation_id": fresh.correlation_id or existing.correlation_id,
    }
    if all(getattr(existing, k) == v for k, v in update.items()):
        return None
    return existing.model_copy(
        update={**update, "updated_at": fresh.updated_at, "version": existing.version + 1}
    )


def escalate(case: Case, now: float, policy: CommercialPolicy) -> Case | None:
    """The case escalated when it is open past its SLA (severity one step up, a new SLA from
    now at that severity); None when it is not due. An escalated case is escalated again only
    once its new SLA passes too."""
    if not case.is_open or now < case.sla_due:
        return None
    severity = policy.escalated(case.severity)
    return case.model_copy(
        update={
            "status": "escalated",
            "severity": severity,
            "sla_due": now + policy.sla_for(severity),
            "updated_at": now,
            "version": case.version + 1,
        }
    )


def apply_decision(case: Case, decision: Decision, now: float) -> Applied:
    """Apply ``decision`` to ``case``: the new case state, the outcome and the worker's effect.

    Never raises for a decision that makes no sense now (a second action on a decided case, a
    link on a policy case): the outcome says ``refused: ...`` and the case is unchanged, so the
    audit trail shows the attempt and nothing happens twice.
    """
    if decision.case_id != case.case_id:
        return Applied(case, f"refused: decision is for case {decision.case_id}", "none")
    action = decision.action
    bump = {"updated_at": now, "version": case.version + 1, "decision": decision}
    if action == "assign":
        if not decision.assignee:
            return Applied(case, "refused: assign needs an assignee", "none")
        assigned = case.model_copy(update={**bump, "assignee": decision.assignee})
        return Applied(assigned, f"assigned to {decision.assignee}", "none")
    if case.status in CLOSED_STATUSES:
        return Applied(case, f"refused: case already {case.status}", "none")
    if action in ("link", "distinct") and case.kind != "account_match":
        return Applied(case, f"refused: {action} applies only to account matches", "none")
    if action == "reject" and not decision.reason:
        return Applied(case, "refused: reject needs a reason", "none")
    if action == "distinct" or (action == "reject" and case.kind == "account_match"):
        done = case.model_copy(update={**bump, "status": "distinct"})
        return Applied(done, "marked as different companies", "distinct")
    if action == "reject":
        done = case.model_copy(update={**bump, "status": "rejected"})
        return Applied(done, "rejected; reason written to the deal", "reject_writeback")
    if action == "link" or (action == "approve" and case.kind == "account_match"):
        target = decision.target or _best_candidate(case)
        if target is None:
            return Applied(case, "refused: no candidate to link to", "none")
        done = case.model_copy(update={**bump, "status": "linked"})
        return Applied(done, f"linked to {target}", "link", target)
    status, effect = _APPROVED[case.kind]
    done = case.model_copy(update={**bump, "status": status})
    outcome = (
        "approved; order created with the override"
        if effect == "create_override"
        else ("approved; quote tried again")
    )
    return Applied(done, outcome, effect)


def _best_candidate(case: Case) -> str | None:
    match = case.context.match
    if match is None or not match.candidates:
        return None
    return max(match.candidates, key=lambda c: c.score).account_id


def rejection_update(case: Case, decision: Decision, origin: str) -> OrderEvent | None:
    """The update-deal that tells the CRM deal why no order will come (None: no deal known).

    Status ``REJECTED`` and "rejected by NAME: REASON"; its id is derived from the decision, so
    the deal is told once however often the decision arrives.
    """
    if not case.deal_id or not case.quote_id or not case.account_id:
        return None
    revision = case.context.quote.revision if case.context.quote else None
    at = datetime.fromtimestamp(decision.at, UTC)
    return OrderEvent(
        event_id=deterministic_event_id("update-deal", decision.decision_id),
        event_type="DealStatusUpdateRequested",
        source=Source(system="crm", vendor="interlock", record_id=case.deal_id, changed_at=at),
        correlation_id=case.correlation_id or case.quote_id,
        causation_id=decision.decision_id,
        occurred_at=at,
        ingested_at=at,
        origin=origin,
        changed_fields=["status", "status_reason"],
        payload=Order(
            order_id=order_id_for(case.quote_id),
            account_id=case.account_id,
            quote_id=case.quote_id,
            quote_revision=revision,
            crm_record_id=case.deal_id,
            status="REJECTED",
            status_reason=f"rejected by {decision.by}: {decision.reason}"[:500],
        ),
    )
