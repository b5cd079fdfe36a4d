"""``bench.capacity``: the rate search, the pass rule, the window's latency, and its section."""

from __future__ import annotations

import os
from typing import Any

import pytest

from bench.capacity.processes import cpu_by_service, machine_times, service_name
from bench.capacity.run import first_rate, next_rate, passed
from bench.capacity.stack import window_quantiles
from bench.sections import capacity_section, quix_section

pytestmark = pytest.mark.unit


def test_search_doubles_while_passing_then_bisects_until_the_gap_is_small() -> None:
    assert next_rate([1000], []) == 2000
    assert next_rate([1000], [2000]) == 1500
    assert next_rate([1000, 1500], [2000]) == 1750
    assert next_rate([1000, 1750], [2000]) is None  # within the search's resolution
    assert next_rate([], [1000]) == 500
    assert next_rate([], [60]) is None  # below the lowest rate worth a run


def _run(**kw: Any) -> dict[str, Any]:
    return {"offered_per_s": 1000.0, "sent_per_s": 990.0, "handoff": {"p99": 0.4},
            "lag_grew": False, **kw}  # fmt: skip


def test_a_rate_passes_only_when_sent_fast_handed_off_in_time_and_lag_stable() -> None:
    assert passed(_run()) == (True, "kept up")
    assert passed(_run(sent_per_s=900.0))[1] == "simulator sent 900/s of 1,000/s"
    assert passed(_run(handoff={"p99": 1.0}))[1] == "handoff p99 1.00 s"
    assert passed(_run(handoff={}))[1] == "no handoff recorded in the window"
    assert passed(_run(lag_grew=True))[1] == "lag grew"
    assert not passed(_run(error="exit 1"))[0]


def test_window_latency_counts_only_what_was_observed_after_the_window_started() -> None:
    start = {"quote": [(0.5, 100.0), (1.0, 100.0), (float("inf"), 100.0)]}
    end = {"quote": [(0.5, 100.0), (1.0, 200.0), (float("inf"), 200.0)]}
    overall, flows = window_quantiles(start, end)
    p99 = overall["p99"]
    assert p99 is not None
    assert 0.5 < p99 <= 1.0
    assert flows["quote"] == overall


def test_processes_are_named_by_service_and_timed_from_proc() -> None:
    assert service_name(["/v/bin/python", "-m", "interlock.cli", "worker"]) == "worker"
    assert service_name(["/usr/bin/java", "-Xmx512m"]) == "broker"
    assert service_name(["/x/tansu", "broker"]) == "broker"
    mine = cpu_by_service(os.getpid())
    assert mine["up"] > 0  # the root itself
    times = machine_times()
    assert times.busy_s > 0
    assert times.idle_s >= 0


def _search(broker: str, best: float | None, runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"broker": broker, "runs": runs, "best_offered_per_s": best, "best_sent_per_s": best,
            "lowest_fail_per_s": None}  # fmt: skip


def _measured(rate: float, ok: bool, us: float) -> dict[str, Any]:
    cpu = {"worker": {"cpu_s": 1.0, "cores": 0.5, "us_per_action": us}}
    return {**_run(offered_per_s=rate, sent_per_s=rate), "passed": ok, "verdict": "kept up",
            "cpu": cpu, "cores": {"stack": 1.5, "rest_of_machine": 0.1, "idle": 0.4}}  # fmt: skip


def test_capacity_section_shows_both_targets_and_cpu_per_action_beside_tansu() -> None:
    doc = {"duration_s": 20, "searches": [
        _search("kafka", 1200.0, [_measured(1200.0, True, 500.0)]),
        _search("tansu", 600.0, [_measured(600.0, True, 700.0), _measured(1200, False, 800.0)]),
    ]}  # fmt: skip
    md = capacity_section(doc).markdown()
    assert "| Apache Kafka: highest rate kept up (handoff p99 < 1 s, lag stable) | 1,200 " in md
    assert "| Tansu, same search | 600 actions/s | 2.00x | Kafka ≥ 1.5x Tansu | met |" in md
    assert (
        "| CPU per action: worker (Apache Kafka @ 1,200/s) | 500 µs | Tansu @ 600/s | 700 µs" in md
    )


def test_capacity_section_reports_a_search_where_nothing_kept_up_as_a_miss() -> None:
    doc = {"searches": [_search("kafka", None, [_measured(1000.0, False, 900.0)])]}
    md = capacity_section(doc).markdown()
    assert "**missed** by 1,000 actions/s (100% short)" in md
    assert "no rate tried kept up (lowest 1,000/s)" in md


def test_quix_section_compares_the_faust_worker_with_quix_and_lists_what_quix_omits() -> None:
    doc = {"status": "ok", "quixstreams": "3.0", "quotes": 1000, "accounts": 200, "store": "rocksdb://",
           "quix_streams": {"events_per_s": 4000, "latency_p99_s": 1.0, "audit_records": 1200},
           "faust_worker": {"events_per_s": 3000, "latency_p99_s": 2.0},
           "plain_confluent_loop": {"events_per_s": 8000},
           "quix_omits": ["the read-back of its own commands"]}  # fmt: skip
    md = quix_section(doc).markdown()
    assert "| Faust worker on rocksdb://, 1 process | 3,000 events/s | Quix Streams 3.0 |" in md
    assert "Faust worker ≥ 1.0x Quix Streams | **missed** by 0.25x (25% short) |" in md
    assert "| Quix Streams 3.0: audit records | 1,200 records |" in md
    assert "- the Quix app omits the read-back of its own commands" in md


def test_the_second_broker_starts_at_the_first_ones_best_divided_by_the_ratio_target() -> None:
    assert first_rate([], 1000.0) == 1000.0
    assert first_rate([{"best_offered_per_s": 1500.0}], 1000.0) == 1000.0
    assert first_rate([{"best_offered_per_s": None}], 1000.0) == 1000.0
    assert first_rate([{"best_offered_per_s": 1000.0}], 1000.0) == 670.0


def test_quix_section_says_when_the_faust_run_failed() -> None:
    doc = {"status": "ok", "quixstreams": "3.0", "faust_error": "TimeoutError: faust ready",
           "quix_streams": {"events_per_s": 4000},
           "plain_confluent_loop": {"events_per_s": 8000}}  # fmt: skip
    md = quix_section(doc).markdown()
    assert "| Faust worker, 1 process | - | Quix Streams 3.0 |" in md
    assert "not measured" in md
    assert "**the Faust worker's run failed**: TimeoutError: faust ready" in md
