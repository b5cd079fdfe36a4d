"""The exception desk's rules, pure: open once, refresh while open, escalate past the SLA,
and what each decision does (and refuses to do) on each kind of case."""

from __future__ import annotations

from decimal import Decimal

import pytest

from contracts.policy import load_policy
from contracts.review import (
    Case,
    CaseContext,
    Decision,
    MatchCandidate,
    MatchContext,
    decision_for,
)
from processors.domain.cases import apply_decision, escalate, open_case, refresh_case

pytestmark = pytest.mark.unit

POLICY = load_policy()


def new(kind: str = "policy", **kwargs: object) -> Case:
    values: dict[str, object] = {
        "kind": kind,
        "subject": "q-1|1",
        "reason": "POLICY_LIMIT_EXCEEDED",
        "now": 1000.0,
        "partition_key": "acct-1",
        "summary": "quote q-1 over the discount limit",
        "quote_id": "q-1",
        **kwargs,
    }
    return open_case(POLICY, **values)  # type: ignore[arg-type]


def match() -> Case:
    context = CaseContext(
        match=MatchContext(
            score=0.6,
            threshold=0.85,
            candidates=[
                MatchCandidate(account_id="erp-2", score=0.3),
                MatchCandidate(account_id="erp-1", score=0.6),
            ],
        )
    )
    return new("account_match", reason="MATCH_BELOW_THRESHOLD", context=context)


def decide(case: Case, action: str, **kwargs: str) -> Decision:
    return decision_for(case, action, "alice", 2000.0, **kwargs)


def test_a_case_is_routed_and_gets_severity_and_sla_from_its_value() -> None:
    case = new(total=Decimal("60000"), currency="EUR")
    assert (case.team, case.severity, case.status) == ("finance", "high", "open")
    assert case.sla_due == 1000.0 + POLICY.sla_for("high")


def test_the_same_situation_is_the_same_case() -> None:
    assert new().case_id == new(now=5000.0).case_id
    assert new().case_id != new(subject="q-1|2").case_id


def test_refresh_keeps_an_open_case_and_leaves_a_decided_one() -> None:
    case = new()
    assert refresh_case(None, case) == case
    assert refresh_case(case, new(now=1500.0)) is None  # nothing new
    richer = refresh_case(case, new(now=1500.0, deal_id="d-1"))
    assert richer is not None
    assert (richer.deal_id, richer.opened_at, richer.version) == ("d-1", 1000.0, 2)
    decided = apply_decision(case, decide(case, "approve"), 1200.0).case
    assert refresh_case(decided, new(now=1500.0, deal_id="d-1")) is None


def test_a_case_past_its_sla_is_escalated_once_per_sla() -> None:
    case = new(total=Decimal("100"), currency="EUR")  # low
    assert escalate(case, case.sla_due - 1, POLICY) is None
    up = escalate(case, case.sla_due, POLICY)
    assert up is not None
    assert (up.status, up.severity) == ("escalated", "medium")
    assert escalate(up, case.sla_due + 1, POLICY) is None  # its new SLA has not passed
    again = escalate(up, up.sla_due, POLICY)
    assert again is not None
    assert again.severity == "high"


def test_a_decided_case_is_never_escalated() -> None:
    case = new()
    decided = apply_decision(case, decide(case, "approve"), 1100.0).case
    assert escalate(decided, decided.sla_due + 10, POLICY) is None


@pytest.mark.parametrize(
    ("kind", "status", "effect"),
    [
        ("policy", "approved", "create_override"),
        ("credit_hold", "approved", "create_override"),
        ("validation", "approved", "retry"),
        ("parked_timeout", "approved", "retry"),
    ],
)
def test_approve_per_kind(kind: str, status: str, effect: str) -> None:
    case = new(kind)
    applied = apply_decision(case, decide(case, "approve"), 2000.0)
    assert (applied.case.status, applied.effect) == (status, effect)
    assert applied.case.decision is not None
    assert applied.case.decision.by == "alice"
    assert applied.case.version == case.version + 1


def test_reject_writes_the_reason_back() -> None:
    case = new()
    applied = apply_decision(case, decide(case, "reject", reason="margin too low"), 2000.0)
    assert (applied.case.status, applied.effect) == ("rejected", "reject_writeback")


def test_approving_a_match_links_to_the_best_candidate_and_link_to_the_chosen_one() -> None:
    case = match()
    assert apply_decision(case, decide(case, "approve"), 2000.0).target == "erp-1"
    chosen = apply_decision(case, decide(case, "link", target="erp-2"), 2000.0)
    assert (chosen.case.status, chosen.effect, chosen.target) == ("linked", "link", "erp-2")


def test_these_are_different_closes_the_match_without_linking() -> None:
    case = match()
    applied = apply_decision(case, decide(case, "distinct"), 2000.0)
    assert (applied.case.status, applied.effect) == ("distinct", "distinct")


def test_a_second_decision_on_a_decided_case_does_nothing() -> None:
    case = new()
    approved = apply_decision(case, decide(case, "approve"), 2000.0).case
    rejected = Decision.model_validate(
        {**decide(case, "reject", reason="late").model_dump(), "case_id": case.case_id}
    )
    again = apply_decision(approved, rejected, 2100.0)
    assert (again.effect, again.case) == ("none", approved)
    assert again.outcome.startswith("refused: case already approved")


def test_assign_is_allowed_on_any_case_and_changes_only_the_assignee() -> None:
    case = new()
    approved = apply_decision(case, decide(case, "approve"), 2000.0).case
    applied = apply_decision(approved, decide(approved, "assign", assignee="ann"), 2100.0)
    assert (applied.case.assignee, applied.case.status, applied.effect) == (
        "ann",
        "approved",
        "none",
    )


def test_link_on_a_policy_case_arriving_on_the_wire_is_refused_not_applied() -> None:
    case = new()
    forged = Decision(
        decision_id="x", case_id=case.case_id, partition_key="acct-1", action="link",
        by="mallory", at=1.0, target="erp-1",
    )  # fmt: skip
    applied = apply_decision(case, forged, 2000.0)
    assert (applied.effect, applied.case) == ("none", case)
