"""The exception desk's contract: cases that need a person, and the decisions people take.

A **case** is one situation the system must not decide alone (a doubtful account match, a quote
on credit hold, over the commercial policy, failing validation, or parked past its grace). Its
latest state lives on the compacted ``review.cases`` topic, keyed by case id, one record per
state change. A **decision** (approve, reject, assign, link, distinct) is an event on
``review.decisions``, keyed by the case's ``partition_key`` (the canonical account id) so the
worker partition that holds that account's state applies it. Ids are derived from their cause:
the same case always has the same id, and the same action on the same case the same decision id,
so a double click, a retry or a replay acts once. The worker writes each applied decision with
its outcome on ``audit.decisions``.

The operator side (CLI, console) and the worker side both build on exactly this module.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from contracts.errors import DecodeError
from contracts.ids import deterministic_event_id, event_id_after

__all__ = [
    "ACTIONS",
    "AUDIT_TOPIC",
    "CASES_TOPIC",
    "CASE_KINDS",
    "CLOSED_STATUSES",
    "DECISIONS_TOPIC",
    "OPEN_STATUSES",
    "SEVERITIES",
    "AccountField",
    "AccountsContext",
    "Action",
    "Case",
    "CaseContext",
    "CaseKind",
    "CaseStatus",
    "Decision",
    "DecisionNotAllowedError",
    "MatchCandidate",
    "MatchContext",
    "QuoteContext",
    "QuoteLineContext",
    "Severity",
    "case_id_for",
    "decision_for",
    "decision_id_for",
    "decode_case",
    "decode_decision",
    "encode_audit",
    "encode_case",
    "encode_decision",
]

CASES_TOPIC = "review.cases"
DECISIONS_TOPIC = "review.decisions"
AUDIT_TOPIC = "audit.decisions"

CaseKind = Literal["account_match", "credit_hold", "validation", "parked_timeout", "policy"]
CaseStatus = Literal["open", "escalated", "approved", "rejected", "linked", "distinct", "closed"]
Severity = Literal["low", "medium", "high", "critical"]
Action = Literal["approve", "reject", "assign", "link", "distinct"]

CASE_KINDS: tuple[CaseKind, ...] = (
    "account_match",
    "credit_hold",
    "validation",
    "parked_timeout",
    "policy",
)
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")
"""In rising order: escalation moves a case one step up."""
ACTIONS: tuple[Action, ...] = ("approve", "reject", "assign", "link", "distinct")
OPEN_STATUSES: frozenset[CaseStatus] = frozenset({"open", "escalated"})
"""A case in one of these waits for a person."""
CLOSED_STATUSES: frozenset[CaseStatus] = frozenset(
    {"approved", "rejected", "linked", "distinct", "closed"}
)
"""A decided case: only ``assign`` is still allowed on it."""

_MODEL = ConfigDict(extra="forbid")


class QuoteLineContext(BaseModel):
    """One quote line as the case page shows it."""

    model_config = _MODEL

    line_number: int
    sku: str
    name: str | None = None
    quantity: float
    unit_price: str
    discount_pct: float = 0.0


class QuoteContext(BaseModel):
    """The quote revision a case is about: what an operator weighs (lines and totals)."""

    model_config = _MODEL

    revision: int
    currency: str
    total: str
    discount_pct: float = 0.0
    lines: list[QuoteLineContext] = Field(default_factory=list)


class AccountField(BaseModel):
    """One account field from both systems, with the system that owns it."""

    model_config = _MODEL

    name: str
    crm: Any = None
    erp: Any = None
    owner: Literal["crm", "erp"] | None = None


class AccountsContext(BaseModel):
    """The account's fields side by side (CRM and ERP), ownership marked."""

    model_config = _MODEL

    fields: list[AccountField] = Field(default_factory=list)


class MatchCandidate(BaseModel):
    """An account the incoming one may be: its score and what matched (field -> why)."""

    model_config = _MODEL

    account_id: str
    name: str | None = None
    domain: str | None = None
    score: float
    evidence: dict[str, str] = Field(default_factory=dict)


class MatchContext(BaseModel):
    """The match evidence of an account-match case: the score against the threshold."""

    model_config = _MODEL

    score: float
    threshold: float
    candidates: list[MatchCandidate] = Field(default_factory=list)


class CaseContext(BaseModel):
    """What a person needs to decide; ``details`` holds kind-specific facts (limit vs actual)."""

    model_config = _MODEL

    quote: QuoteContext | None = None
    accounts: AccountsContext | None = None
    match: MatchContext | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Decision(BaseModel):
    """A person's decision on a case: an event with an id derived from case, action, target."""

    model_config = _MODEL

    decision_id: str
    case_id: str
    partition_key: str
    action: Action
    by: str
    at: float
    reason: str | None = None
    assignee: str | None = None
    target: str | None = None


class Case(BaseModel):
    """A situation that needs a person, in its latest state (one record per state change)."""

    model_config = _MODEL

    case_id: str
    kind: CaseKind
    reason: str
    status: CaseStatus = "open"
    team: str
    severity: Severity = "medium"
    opened_at: float
    updated_at: float
    sla_due: float
    assignee: str | None = None
    partition_key: str
    quote_id: str | None = None
    account_id: str | None = None
    deal_id: str | None = None
    correlation_id: str | None = None
    summary: str = ""
    context: CaseContext = Field(default_factory=CaseContext)
    decision: Decision | None = None
    version: int = 1

    @property
    def is_open(self) -> bool:
        """True while the case waits for a person (open or escalated)."""
        return self.status in OPEN_STATUSES


class DecisionNotAllowedError(ValueError):
    """An action that the case's kind or status does not allow; the message says which and why."""


def _case_ids(kind: str) -> Any:
    """``subject -> deterministic_event_id("case", kind, subject)``, the head hashed once."""
    return event_id_after("case", kind)


def case_id_for(kind: CaseKind, subject: str) -> str:
    """The id of the case of ``kind`` about ``subject`` (e.g. a quote id and revision)."""
    return _case_ids(kind)(subject)


def decision_id_for(case_id: str, action: Action, target: str | None = None) -> str:
    """The same action on the same case (and target) always gets the same id: acts once."""
    return deterministic_event_id("decision", case_id, action, target or "")


def decision_for(
    case: Case,
    action: str,
    by: str,
    at: float,
    reason: str | None = None,
    assignee: str | None = None,
    target: str | None = None,
) -> Decision:
    """A decision on ``case``, refused with :class:`DecisionNotAllowedError` when it makes no sense.

    Rules: ``link``/``distinct`` only on account matches (``link`` names one of the candidates
    when the case has any); ``reject`` needs a reason; ``assign`` needs an assignee; a decided
    case takes only ``assign``; ``approve`` on an account match means "link to the best one".
    """
    if action not in ACTIONS:
        raise DecisionNotAllowedError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if not by or not by.strip():
        raise DecisionNotAllowedError("a decision needs the name of who takes it")
    reason = reason.strip() if reason and reason.strip() else None
    assignee = assignee.strip() if assignee and assignee.strip() else None
    target = target.strip() if target and target.strip() else None
    if action != "assign" and case.status in CLOSED_STATUSES:
        raise DecisionNotAllowedError(
            f"case {case.case_id} is already {case.status}; only assign is allowed on it"
        )
    if action in ("link", "distinct") and case.kind != "account_match":
        raise DecisionNotAllowedError(
            f"{action} applies only to account-match cases, not {case.kind}"
        )
    if action == "reject" and reason is None:
        raise DecisionNotAllowedError("reject needs a reason (it is written back to the CRM deal)")
    if action == "assign" and assignee is None:
        raise DecisionNotAllowedError("assign needs an assignee")
    if action == "link":
        candidates = case.context.match.candidates if case.context.match else []
        if target is None and candidates:
            target = max(candidates, key=lambda c: c.score).account_id
        if target is None:
            raise DecisionNotAllowedError("link needs the account to link to (target)")
        if candidates and target not in {c.account_id for c in candidates}:
            raise DecisionNotAllowedError(f"{target} is not a candidate of case {case.case_id}")
    if action != "link":
        target = None
    chosen: Action = action
    # The same assign twice (from the same view of the case) is one decision; assigning to
    # someone else, or back again later, is another.
    discriminator = f"{assignee}@{case.version}" if chosen == "assign" else target
    return Decision(
        decision_id=decision_id_for(case.case_id, chosen, discriminator),
        case_id=case.case_id,
        partition_key=case.partition_key,
        action=chosen,
        by=by.strip(),
        at=at,
        reason=reason,
        assignee=assignee if action == "assign" else None,
        target=target,
    )


def _dumps(model: BaseModel) -> bytes:
    return orjson.dumps(model.model_dump(mode="json"))


def encode_case(case: Case) -> tuple[bytes, bytes]:
    """Key (case id) and JSON value of a ``review.cases`` record."""
    return case.case_id.encode(), _dumps(case)


def encode_decision(decision: Decision) -> tuple[bytes, bytes]:
    """Key (partition key: the account id) and JSON value of a ``review.decisions`` record."""
    return decision.partition_key.encode(), _dumps(decision)


def encode_audit(
    decision: Decision, outcome: str, case: Case | None, **detail: Any
) -> tuple[bytes, bytes]:
    """Key (case id) and JSON value of an ``audit.decisions`` record: who, when, what, why.

    The record has the shape of every ``audit.decisions`` record (``decision``, ``ids``,
    ``correlation_id``, ``at``, ``details``), so ``interlock trace`` shows it in the quote's
    journey, plus the applied ``case_decision`` and its ``outcome``.
    """
    record = {
        "decision": f"case_{decision.action}",
        "entity": "case",
        "ids": {
            "case_id": decision.case_id,
            "quote_id": case.quote_id if case else None,
            "account_id": case.account_id if case else None,
            "deal_id": case.deal_id if case else None,
        },
        "correlation_id": case.correlation_id if case else None,
        "causation_id": decision.decision_id,
        "event_id": decision.decision_id,
        "at": datetime.fromtimestamp(decision.at, UTC).isoformat(),
        "details": {
            "by": decision.by,
            "action": decision.action,
            "outcome": outcome,
            "reason": decision.reason,
            "assignee": decision.assignee,
            "target": decision.target,
            "kind": case.kind if case else None,
            "status": case.status if case else None,
            **detail,
        },
        "case_decision": decision.model_dump(mode="json"),
        "outcome": outcome,
    }
    return decision.case_id.encode(), orjson.dumps(record, default=str)


def _decode(value: bytes | None, model: type[BaseModel], what: str) -> Any:
    if not value:
        raise DecodeError(f"empty {what} record (a tombstone?)", raw=value)
    try:
        return model.model_validate(orjson.loads(value))
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"{what} record is not JSON: {exc}", raw=value) from exc
    except PydanticValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise DecodeError(f"{what} record does not fit the contract ({fields})", raw=value) from exc


def decode_case(value: bytes | None) -> Case:
    """A case from its ``review.cases`` value; :class:`DecodeError` names the bad fields."""
    case: Case = _decode(value, Case, "case")
    return case


def decode_decision(value: bytes | None) -> Decision:
    """A decision from its ``review.decisions`` value; :class:`DecodeError` names the fields."""
    decision: Decision = _decode(value, Decision, "decision")
    return decision
