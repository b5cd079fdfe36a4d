"""``interlock review`` against the real broker: list, show and decisions on review.decisions."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from confluent_kafka.admin import AdminClient
from rich.console import Console
from typer.testing import CliRunner, Result

from contracts.review import decision_id_for
from interlock.settings import Settings
from ops.review.cli import make_review_app
from tests.ops.review.conftest import read_decisions, review_settings, write_cases
from tests.ops.review.samples import make_case

pytestmark = pytest.mark.integration

Review = Callable[..., Result]


@pytest.fixture
def desk(settings: Settings, admin: AdminClient) -> Settings:
    """Settings with this test's own review topics."""
    return review_settings(settings, admin)


@pytest.fixture
def review(desk: Settings) -> Review:
    """Run ``interlock review ...`` in-process."""
    app = make_review_app(lambda: desk, Console(width=200))
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), env={"COLUMNS": "200"})


def test_list_shows_open_cases_of_a_team_oldest_first_and_show_the_context(
    desk: Settings, review: Review
) -> None:
    older = make_case("policy", opened_at=1000.0, summary="Discount [bold]18%[/bold] over limit")
    newer = make_case("policy", opened_at=2000.0)
    match = make_case("account_match")
    decided = make_case("policy", status="approved")
    write_cases(desk, newer, older, match, decided)
    # a later state of the same case replaces the earlier one (compacted topic, latest wins)
    write_cases(desk, newer.model_copy(update={"status": "escalated", "version": 2}))

    listed = review("list", "--team", "finance", "--format", "json")
    assert listed.exit_code == 0, listed.output
    docs = json.loads(listed.stdout)
    assert [d["case_id"] for d in docs] == [older.case_id, newer.case_id]
    assert docs[1]["status"] == "escalated"
    assert docs[0]["sla"].endswith("left") or docs[0]["sla"].startswith("overdue")

    table = review("list", "--status", "all")
    assert table.exit_code == 0, table.output
    assert "4 case(s) of 4" in table.stdout
    assert "[bold]18%[/bold]" in table.stdout  # CRM text is shown, not read as markup

    shown = review("show", match.case_id[:10])
    assert shown.exit_code == 0, shown.output
    for text in ("acct-acme-1", "same domain", "threshold 0.85", "SKU-100", "NET30", "erp"):
        assert text in shown.stdout

    assert review("list", "--severity", "urgent").exit_code == 2
    assert review("show", "0000ffff").exit_code == 1


def test_approve_reject_and_link_write_decisions_by_the_operator(
    desk: Settings, review: Review
) -> None:
    policy = make_case("policy")
    other = make_case("policy")
    match = make_case("account_match")
    write_cases(desk, policy, other, match)

    first = review("approve", policy.case_id, "--by", "alice")
    assert first.exit_code == 0, first.output
    again = review("approve", policy.case_id, "--by", "alice")  # a retry: the same decision
    assert again.exit_code == 0, again.output
    missing = review("reject", other.case_id, "--by", "alice")
    assert missing.exit_code == 2  # --reason is required
    rejected = review("reject", other.case_id, "--reason", "Margin too thin", "--by", "bob")
    assert rejected.exit_code == 0, rejected.output
    linked = review("link", match.case_id, "--to", "acct-acme-2", "--by", "carol")
    assert linked.exit_code == 0, linked.output
    refused = review("link", policy.case_id, "--by", "alice")
    assert refused.exit_code == 1
    assert "only to account-match" in refused.stdout
    dry = review("distinct", match.case_id, "--by", "carol", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "not sent" in dry.stdout

    # two partitions: the order holds per case (its account's partition), not across cases
    decisions = sorted(read_decisions(desk), key=lambda d: (d.action, d.at))
    assert [(d.case_id, d.action, d.by) for d in decisions] == [
        (policy.case_id, "approve", "alice"),
        (policy.case_id, "approve", "alice"),
        (match.case_id, "link", "carol"),
        (other.case_id, "reject", "bob"),
    ]
    assert decisions[0].decision_id == decisions[1].decision_id
    assert decisions[0].decision_id == decision_id_for(policy.case_id, "approve")
    assert decisions[3].reason == "Margin too thin"
    assert decisions[2].target == "acct-acme-2"
    cases = [policy, policy, match, other]
    assert [d.partition_key for d in decisions] == [c.partition_key for c in cases]


def test_a_decided_case_takes_only_assign(desk: Settings, review: Review) -> None:
    done = make_case("policy", status="rejected")
    write_cases(desk, done)
    refused = review("approve", done.case_id, "--by", "alice")
    assert refused.exit_code == 1
    assert "already rejected" in refused.stdout
    assigned = review("assign", done.case_id, "--to", "dave", "--by", "alice")
    assert assigned.exit_code == 0, assigned.output
    (decision,) = read_decisions(desk)
    assert (decision.action, decision.assignee) == ("assign", "dave")
