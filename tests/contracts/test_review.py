"""The exception desk's contract: ids derived from their cause, decisions refused when they make
no sense, and records that survive the wire (and fail it with a named field)."""

from __future__ import annotations

import orjson
import pytest

from contracts.errors import DecodeError
from contracts.review import (
    Case,
    CaseContext,
    DecisionNotAllowedError,
    MatchCandidate,
    MatchContext,
    case_id_for,
    decision_for,
    decode_case,
    decode_decision,
    encode_audit,
    encode_case,
    encode_decision,
)

pytestmark = pytest.mark.unit


def a_case(kind: str = "policy", status: str = "open", **fields: object) -> Case:
    values: dict[str, object] = {
        "case_id": case_id_for(kind, "q-1|1"),  # type: ignore[arg-type]
        "kind": kind,
        "reason": "POLICY_LIMIT_EXCEEDED",
        "status": status,
        "team": "finance",
        "opened_at": 100.0,
        "updated_at": 100.0,
        "sla_due": 200.0,
        "partition_key": "acct-1",
        "quote_id": "q-1",
        **fields,
    }
    return Case.model_validate(values)


def match_case() -> Case:
    match = MatchContext(
        score=0.7,
        threshold=0.85,
        candidates=[
            MatchCandidate(account_id="erp-1", score=0.7, evidence={"name": "similar"}),
            MatchCandidate(account_id="erp-2", score=0.4),
        ],
    )
    return a_case("account_match", reason="MATCH_BELOW_THRESHOLD", context=CaseContext(match=match))


def test_the_same_action_twice_is_the_same_decision() -> None:
    case = a_case()
    first = decision_for(case, "approve", "alice", 1.0)
    again = decision_for(case, "approve", "bob", 2.0)  # a second click, another operator
    assert first.decision_id == again.decision_id
    assert decision_for(case, "reject", "alice", 1.0, reason="no").decision_id != (
        first.decision_id
    )


def test_reassigning_to_someone_else_or_back_later_is_a_new_decision() -> None:
    case = a_case()
    to_ann = decision_for(case, "assign", "lead", 1.0, assignee="ann")
    again = decision_for(case, "assign", "lead", 2.0, assignee="ann")  # a retry: same view
    assert to_ann.decision_id == again.decision_id
    to_bo = decision_for(case, "assign", "lead", 1.0, assignee="bo")
    assert to_ann.decision_id != to_bo.decision_id
    later = case.model_copy(update={"version": case.version + 2})  # ann, then bo, then ann
    assert decision_for(later, "assign", "lead", 3.0, assignee="ann").decision_id != (
        to_ann.decision_id
    )


def test_the_decision_is_keyed_by_the_cases_account() -> None:
    key, value = encode_decision(decision_for(a_case(), "approve", "alice", 1.0))
    assert key == b"acct-1"
    assert decode_decision(value).by == "alice"


@pytest.mark.parametrize(
    ("case", "action", "kwargs", "message"),
    [
        (a_case(), "link", {}, "only to account-match"),
        (a_case(), "distinct", {}, "only to account-match"),
        (a_case(), "reject", {}, "reject needs a reason"),
        (a_case(), "reject", {"reason": "   "}, "reject needs a reason"),
        (a_case(), "assign", {}, "needs an assignee"),
        (a_case(status="rejected"), "approve", {}, "already rejected"),
        (a_case(), "delete", {}, "unknown action"),
        (match_case(), "link", {"target": "erp-9"}, "not a candidate"),
    ],
)
def test_a_decision_that_makes_no_sense_is_refused(
    case: Case, action: str, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(DecisionNotAllowedError, match=message):
        decision_for(case, action, "alice", 1.0, **kwargs)


def test_refusals_are_value_errors() -> None:
    assert issubclass(DecisionNotAllowedError, ValueError)


def test_a_decided_case_can_still_be_assigned() -> None:
    decision = decision_for(a_case(status="approved"), "assign", "lead", 1.0, assignee="ann")
    assert decision.assignee == "ann"


def test_link_without_target_takes_the_best_candidate() -> None:
    assert decision_for(match_case(), "link", "alice", 1.0).target == "erp-1"
    assert decision_for(match_case(), "link", "alice", 1.0, target="erp-2").target == "erp-2"


def test_case_round_trips_and_is_keyed_by_its_id() -> None:
    case = match_case()
    key, value = encode_case(case)
    assert key == case.case_id.encode()
    assert decode_case(value) == case


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"", "empty"),
        (b"{not json", "not JSON"),
        (orjson.dumps({"case_id": "x"}), "kind"),
    ],
)
def test_a_bad_case_record_names_what_is_wrong(value: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_case(value)


def test_audit_record_reads_like_every_decision_record() -> None:
    case = a_case(correlation_id="q-1", deal_id="d-1")
    decision = decision_for(case, "reject", "alice", 1_700_000_000.0, reason="too cheap")
    key, value = encode_audit(decision, "rejected", case)
    record = orjson.loads(value)
    assert key == case.case_id.encode()
    assert record["decision"] == "case_reject"
    assert record["correlation_id"] == "q-1"
    assert record["details"]["by"] == "alice"
    assert record["details"]["reason"] == "too cheap"
    assert record["case_decision"]["decision_id"] == decision.decision_id
    assert record["at"].startswith("2023-11-14T22:13:20")
