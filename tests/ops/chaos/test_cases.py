"""The fault suite's schedule, its measure of recovery and its report (pure parts)."""

from __future__ import annotations

import pytest

from ops.chaos.cases import CASES, QUICK, plan, select
from ops.chaos.report import markdown
from ops.chaos.runner import Outcome, recovered_at, total_lag

pytestmark = pytest.mark.unit


def test_every_fault_the_suite_promises_is_a_case() -> None:
    names = {c.name for c in CASES}
    kills = {f"kill-{s}" for s in ("worker", "webhooks", "sinks", "cdc", "lag-exporter")}
    assert kills | {"stall-broker", "kill-broker", "erp-down", "crm-outage"} <= names
    assert {"restart-postgres", "kill-cluster-node"} <= names
    assert next(c for c in CASES if c.name == "kill-cluster-node").cluster_nodes == 3
    assert set(QUICK) <= names


def test_the_same_seed_plans_the_same_moments_inside_the_load() -> None:
    first, again, other = plan(CASES, 7), plan(CASES, 7), plan(CASES, 8)
    assert [p.at_s for p in first] == [p.at_s for p in again]
    assert [p.at_s for p in first] != [p.at_s for p in other]
    for p in first:
        # the load goes on for at least 30 s after the fault ends
        assert 10 <= p.at_s <= p.case.run_s - p.case.fault_s - 30 + 1e-9 or p.at_s == 10


def test_api_cases_become_back_to_back_outages_of_the_simulator() -> None:
    erp = next(p for p in plan(select(["erp-down"]), 7))
    first, second = erp.outage_specs()
    assert first == f"erp:500:30@{erp.at_s:g}"
    assert second == f"erp:429:30@{erp.at_s + 30:g}"
    assert next(p for p in plan(select(["kill-worker"]), 7)).outage_specs() == []


def test_an_unknown_case_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="no fault case kill-everything"):
        select(["kill-everything"])


def test_recovery_is_when_lag_is_back_to_its_level_twice_in_a_row() -> None:
    samples: list[tuple[float, float | None]] = [
        (0, 10), (1, 12), (2, 8),  # before: level 10, limit 120
        (3, None), (4, 900), (5, 2000),  # fault 3..5
        (6, 1500), (7, 100), (8, 400), (9, 90), (10, 60),
    ]  # fmt: skip
    assert recovered_at(samples, fault_start=3, fault_end=5) == 9
    assert recovered_at(samples[:9], fault_start=3, fault_end=5) is None


def test_total_lag_sums_every_group_and_partition() -> None:
    text = (
        "# HELP interlock_consumer_lag_messages lag\n"
        "# TYPE interlock_consumer_lag_messages gauge\n"
        'interlock_consumer_lag_messages{group="a",topic="t",partition="0"} 5.0\n'
        'interlock_consumer_lag_messages{group="b",topic="t",partition="1"} 7.0\n'
        'interlock_consumer_lag_seconds{group="b",topic="t",partition="1"} 99.0\n'
    )
    assert total_lag(text) == 12.0


def test_the_report_says_what_failed_and_what_held() -> None:
    ok = Outcome("kill-worker", "SIGKILL of the worker", 20.0, 0.0, 0)
    ok.invariants = [{"name": "orders_complete", "passed": True, "expected": 3, "actual": 3}]
    bad = Outcome("kill-broker", "SIGKILL of the broker", 30.0, 0.0, 1, orders_lost=2)
    bad.invariants = [
        {
            "name": "orders_complete",
            "passed": False,
            "expected": 5,
            "actual": 3,
            "examples": ["no order for quote q1"],
        }
    ]
    page = markdown([ok, bad], seed=7, rate=100)
    assert "1 of 2 cases held every invariant" in page
    assert "| kill-worker |" in page
    assert "| held |" in page
    assert "## kill-broker" in page
    assert "no order for quote q1" in page
    assert ok.held
    assert not bad.held
