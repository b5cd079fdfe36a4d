"""What the console's pages compute: the queue filter from a query, line amounts, actions."""

from __future__ import annotations

import pytest

from contracts.review import QuoteLineContext
from ops.review.console.security import SignInThrottle, safe_next
from ops.review.console.views import BadQueryError, case_view, line_amount, parse_queue_query
from ops.review.users import User
from tests.ops.review.samples import make_case

pytestmark = pytest.mark.unit

ALICE = User("alice", "operator", frozenset({"finance"}))


def test_the_queue_filter_defaults_to_my_teams_and_open_cases() -> None:
    query = parse_queue_query({}, ALICE)
    assert query.where.teams == {"finance"}
    assert query.where.statuses == {"open", "escalated"}
    everything = parse_queue_query({"team": "all", "status": "all", "severity": "high"}, ALICE)
    assert everything.where.teams == frozenset()
    assert everything.where.statuses == frozenset()
    assert everything.where.severities == {"high", "critical"}
    assert parse_queue_query({"age": "4h"}, ALICE).where.older_than_s == 4 * 3600
    assert parse_queue_query({"age": "overdue"}, ALICE).where.overdue


@pytest.mark.parametrize(
    "params",
    [{"severity": "urgent"}, {"age": "3h"}, {"status": "gone"}, {"team": "x" * 101}],
)
def test_a_query_outside_its_choices_is_refused(params: dict[str, str]) -> None:
    with pytest.raises(BadQueryError):
        parse_queue_query(params, ALICE)


def test_line_amounts_apply_the_line_discount_to_the_cent() -> None:
    line = QuoteLineContext(line_number=1, sku="S", quantity=3, unit_price="19.99", discount_pct=10)
    assert line_amount(line) == "53.97"
    bad = QuoteLineContext(line_number=2, sku="S", quantity=1, unit_price="n/a")
    assert line_amount(bad) == "-"


def test_actions_follow_the_case_kind_and_status() -> None:
    assert case_view(make_case("policy"), ALICE, 0, None).actions == ["approve", "reject", "assign"]
    match = make_case("account_match", team="finance")
    assert case_view(match, ALICE, 0, None).actions == ["link", "distinct", "reject", "assign"]
    done = make_case("policy", status="rejected")
    assert case_view(done, ALICE, 0, None).actions == ["assign"]
    assert not case_view(make_case("policy", team="sales-ops"), ALICE, 0, None).can_decide


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/cases/x", "/cases/x"),
        ("//evil.example/", "/queue"),
        ("https://evil.example/", "/queue"),
        ("/\\evil", "/queue"),
        (None, "/queue"),
    ],
)
def test_sign_in_goes_back_only_to_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_sign_in_is_throttled_per_name_after_repeated_wrong_passwords() -> None:
    now = [1000.0]
    throttle = SignInThrottle(max_failures=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.wait_s("alice") == 0
        throttle.failed("alice")
    assert throttle.wait_s("alice") == 60
    assert throttle.wait_s("bob") == 0  # per name
    now[0] += 45
    assert throttle.wait_s("alice") == 15
    now[0] += 15
    assert throttle.wait_s("alice") == 0
    throttle.failed("alice")
    throttle.succeeded("alice")
    assert throttle.wait_s("alice") == 0


def test_the_throttle_keeps_a_bounded_number_of_names() -> None:
    throttle = SignInThrottle(max_failures=1, window_s=60, clock=lambda: 0.0, max_names=2)
    for name in ("a", "b", "c"):
        throttle.failed(name)
    assert [throttle.wait_s(n) > 0 for n in ("a", "b", "c")] == [False, True, True]
