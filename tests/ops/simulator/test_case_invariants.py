"""The exception desk in a simulated run: the seeded decisions, and the invariants that hold
them to account (decided or open with a reason, no order for a rejection, once each)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from contracts.review import Case, case_id_for
from ops.simulator.desk import DeskDecision, choose
from ops.simulator.invariants import check_invariants
from ops.simulator.observed import CaseSeen, Observed
from ops.simulator.truth import CrmCall, ErpOrder, GroundTruth, Recorded

pytestmark = pytest.mark.unit


def _case(kind: str, n: int) -> Case:
    return Case(
        case_id=case_id_for(kind, f"q{n}|1"),  # type: ignore[arg-type]
        kind=kind,  # type: ignore[arg-type]
        reason="R",
        team="finance",
        opened_at=0,
        updated_at=0,
        sla_due=1,
        partition_key="a",
    )


def test_the_desk_decides_by_the_seed_alone() -> None:
    cases = [_case("policy", n) for n in range(200)]
    first = [choose(7, c) for c in cases]
    assert first == [choose(7, c) for c in cases]
    assert first != [choose(8, c) for c in cases]
    approved = sum(1 for action, _ in first if action == "approve")
    assert 100 < approved < 180  # mostly approved, some rejected
    assert all(reason for action, reason in first if action == "reject")


def test_the_desk_rejects_what_cannot_be_ordered_and_links_or_separates_matches() -> None:
    assert {choose(1, _case("validation", n))[0] for n in range(30)} == {"reject"}
    assert {choose(1, _case("account_match", n))[0] for n in range(30)} == {"link", "distinct"}


def _run() -> tuple[GroundTruth, Recorded, Observed]:
    """q1 ordered; q2 approved over policy and ordered; q3 rejected and told; q4 still open."""
    truth = GroundTruth(seed=1)
    for n in (1, 2, 3, 4):
        truth.add_expected_order(f"q{n}", 1, f"10{n}", "11", False)
    rec = Recorded()
    rec.erp_orders += [
        ErpOrder("SO-1", "k1", "q1", 1, "101", "C1"),
        ErpOrder("SO-2", "k2", "q2", 1, "102", "C1"),
    ]
    rec.crm_calls.append(
        CrmCall("PATCH", "deals", "103", {"status": "REJECTED", "status_reason": "no"}, "r3")
    )
    rec.review_decisions += [
        DeskDecision("c2", "policy", "approve", "fin", "q2", "102"),
        DeskDecision("c3", "policy", "reject", "fin", "q3", "103", "no", sent=2),
    ]
    observed = Observed(
        cases=[
            CaseSeen(
                "c2", "policy", "approved", "POLICY_LIMIT_EXCEEDED", "finance", "q2", "102", 1
            ),
            CaseSeen(
                "c3", "policy", "rejected", "POLICY_LIMIT_EXCEEDED", "finance", "q3", "103", 1
            ),
            CaseSeen("c4", "policy", "open", "POLICY_LIMIT_EXCEEDED", "finance", "q4", "104", 1),
        ]
    )
    return truth, rec, observed


def _failed(truth: GroundTruth, rec: Recorded, observed: Observed) -> list[str]:
    return [r.name for r in check_invariants(truth, rec, observed) if not r.passed]


def test_a_run_with_decided_and_open_cases_passes() -> None:
    assert _failed(*_run()) == []


def test_an_order_for_a_rejected_case_fails() -> None:
    truth, rec, observed = _run()
    rec.erp_orders.append(ErpOrder("SO-3", "k3", "q3", 1, "103", "C1"))
    assert "no_order_for_rejected_case" in _failed(truth, rec, observed)


def test_an_approval_ordered_twice_or_never_fails() -> None:
    truth, rec, observed = _run()
    twice = replace(rec, erp_orders=[*rec.erp_orders, ErpOrder("SO-9", "k9", "q2", 1, "102", "C")])
    assert "approved_overrides_ordered_once" in _failed(truth, twice, observed)
    never = replace(rec, erp_orders=rec.erp_orders[:1])
    assert "approved_overrides_ordered_once" in _failed(truth, never, observed)


def test_a_rejection_not_told_to_the_deal_fails() -> None:
    truth, rec, observed = _run()
    silent = replace(rec, crm_calls=[])
    assert _failed(truth, silent, observed) == ["rejections_written_back_once"]


def test_a_case_without_a_reason_or_a_decision_not_applied_fails() -> None:
    truth, rec, observed = _run()
    mute = replace(observed, cases=[*observed.cases[:2], replace(observed.cases[2], reason="")])
    assert _failed(truth, rec, mute) == ["cases_decided_or_open"]
    ignored = replace(observed, cases=[replace(observed.cases[0], status="open")])
    assert "desk_decisions_applied" in _failed(truth, rec, ignored)


def test_without_cases_a_held_quote_is_a_missing_order() -> None:
    truth, rec, _observed = _run()
    assert "orders_complete" in _failed(truth, rec, Observed())


def test_a_revision_rejected_after_the_ordered_one_is_neither_missing_nor_unexpected() -> None:
    truth, rec, observed = _run()
    truth.revise_expected_order("q2", 2)  # revision 2 accepted after revision 1 was approved
    rev2 = CaseSeen("c5", "policy", "rejected", "POLICY_LIMIT_EXCEEDED", "finance", "q2", "102", 2)
    rec.crm_calls.append(CrmCall("PATCH", "deals", "102", {"status": "REJECTED"}, "r5"))
    observed = replace(observed, cases=[*observed.cases, rev2])
    assert _failed(truth, rec, observed) == []


def test_two_rejected_revisions_of_one_deal_are_told_twice_and_a_third_time_fails() -> None:
    truth, rec, observed = _run()
    again = CaseSeen(
        "c3b", "policy", "rejected", "POLICY_LIMIT_EXCEEDED", "finance", "q3", "103", 2
    )
    observed = replace(observed, cases=[*observed.cases, again])
    told = CrmCall("PATCH", "deals", "103", {"status": "REJECTED", "status_reason": "no"}, "r3b")
    assert _failed(truth, rec, observed) == ["rejections_written_back_once"]
    rec = replace(rec, crm_calls=[*rec.crm_calls, told])
    assert _failed(truth, rec, observed) == []
    thrice = CrmCall("PATCH", "deals", "103", {"status": "REJECTED", "status_reason": "x"}, "r3c")
    rec = replace(rec, crm_calls=[*rec.crm_calls, thrice])
    assert _failed(truth, rec, observed) == ["rejections_written_back_once"]
