"""The queue's pure logic: filters, order, SLA countdown, case lookup, decision state."""

from __future__ import annotations

import pytest

from contracts.review import decision_for
from ops.review.queue import (
    AmbiguousCaseError,
    CaseNotFoundError,
    QueueFilter,
    decision_state,
    find_case,
    format_age,
    format_sla,
    parse_duration,
    select_cases,
)
from tests.ops.review.samples import make_case

pytestmark = pytest.mark.unit

NOW = 1_900_000_000.0


def test_the_queue_is_oldest_first_and_filters_by_team_severity_status_and_age() -> None:
    old = make_case(opened_at=NOW - 7200, team="finance", severity="critical")
    new = make_case(opened_at=NOW - 60, team="finance", severity="low")
    other = make_case(opened_at=NOW - 9000, team="sales-ops", severity="high")
    done = make_case(opened_at=NOW - 99999, team="finance", status="approved")
    cases = [new, done, old, other]

    assert select_cases(cases, QueueFilter(), NOW) == [other, old, new]
    finance = QueueFilter(teams=frozenset({"finance"}))
    assert select_cases(cases, finance, NOW) == [old, new]
    assert select_cases(cases, QueueFilter(severities=frozenset({"low"})), NOW) == [new]
    assert select_cases(cases, QueueFilter(older_than_s=3600), NOW) == [other, old]
    assert select_cases(cases, QueueFilter(statuses=frozenset()), NOW)[0] == done


def test_overdue_keeps_only_cases_past_their_sla() -> None:
    late = make_case(sla_due=NOW - 1)
    fine = make_case(sla_due=NOW + 600)
    assert select_cases([late, fine], QueueFilter(overdue=True), NOW) == [late]


def test_sla_countdown_and_age_read_as_a_person_reads_them() -> None:
    case = make_case(opened_at=NOW - 3 * 3600 - 300, sla_due=NOW + 2 * 3600 + 5 * 60)
    assert format_age(case, NOW) == "3h 05m"
    assert format_sla(case, NOW) == "2h 05m left"
    assert format_sla(make_case(sla_due=NOW - 15 * 60), NOW) == "overdue 15m"
    assert format_sla(make_case(sla_due=NOW + 2 * 86400 + 3600), NOW) == "2d 1h left"


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("4h", 14400), ("2d", 172800)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "4", "h", "-1h", "1w", "1h30m"])
def test_a_bad_duration_says_what_it_wants(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration like 30m"):
        parse_duration(text)


def test_a_case_is_found_by_id_or_unique_prefix() -> None:
    a = make_case(case_id="abcd1111-0000")
    b = make_case(case_id="abcd2222-0000")
    cases = {a.case_id: a, b.case_id: b}
    assert find_case(cases, "abcd1111-0000") is a
    assert find_case(cases, "abcd2") is b
    with pytest.raises(AmbiguousCaseError, match="names 2 cases"):
        find_case(cases, "abcd")
    with pytest.raises(CaseNotFoundError):
        find_case(cases, "abc")  # too short to be a prefix
    with pytest.raises(CaseNotFoundError):
        find_case(cases, "ffff")


def test_a_sent_decision_is_pending_until_the_case_carries_it() -> None:
    case = make_case()
    sent = decision_for(case, "approve", "alice", NOW)
    assert decision_state(case, None) is None
    assert decision_state(case, sent) == "pending"
    applied = case.model_copy(update={"status": "approved", "decision": sent, "version": 2})
    assert decision_state(applied, sent) == "applied"
    other = make_case()
    assert decision_state(other, sent) is None
