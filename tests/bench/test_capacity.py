"""``bench.capacity``: the rate search, the pass rule, the window's latency, and its section."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from bench.capacity import run as capacity_run
from bench.capacity.criteria import backlog_grew, floor_rise, lag_by_group, passed
from bench.capacity.processes import cpu_by_service, machine_times, service_name
from bench.capacity.run import Search, first_rate, next_rate, pick, time_left, width
from bench.capacity.stack import broker_slices, settled_lag, window_quantiles
from bench.harness import host_speed_caveat, speed_probe
from bench.sections.stack import capacity_section
from bench.sections.worker import quix_section
from ops.simulator.live import MetricSample, lag_grew

pytestmark = pytest.mark.unit


def test_search_doubles_while_passing_then_bisects_until_the_gap_is_small() -> None:
    assert next_rate([1000], []) == 2000
    assert next_rate([1000], [2000]) == 1500
    assert next_rate([1000, 1500], [2000]) == 1750
    assert next_rate([1000, 1750], [2000]) is None  # within the search's resolution
    assert next_rate([], [1000]) == 500
    assert next_rate([], [40]) is None  # below the lowest rate worth a run


def test_search_keeps_halving_to_the_floor_while_every_rate_fails_then_bisects_up() -> None:
    fails: list[float] = []
    rate = next_rate([], [200.0])
    tried = []
    while rate is not None:
        tried.append(rate)
        fails.append(rate)
        rate = next_rate([], [200.0, *fails])
    assert tried == [100.0, 50.0, 25.0]  # the floor is tried, nothing below it
    assert next_rate([50.0], [200.0, 100.0]) == 80.0  # a pass under a fail: bisect


def test_a_bracket_is_as_wide_as_its_lowest_fail_over_its_highest_pass() -> None:
    assert width([400.0], [800.0]) == 1.0
    assert width([400.0, 600.0], [800.0, 1600.0]) == pytest.approx(1 / 3)
    assert width([400.0], []) == float("inf")  # still doubling
    assert width([], [200.0]) == float("inf")  # still halving


def _searched(broker: str, rates: list[tuple[float, bool]]) -> Search:
    found = Search(broker, 200.0, 6)  # type: ignore[arg-type]
    found.done = [{"offered_per_s": rate, "passed": ok} for rate, ok in rates]
    return found


def test_the_next_run_goes_to_the_widest_bracket_then_the_fewest_runs_then_the_first() -> None:
    kafka = _searched("kafka", [(200.0, True), (400.0, True), (800.0, False)])
    tansu = _searched("tansu", [(270.0, True), (540.0, False)])
    assert pick([kafka, tansu]) is tansu  # both 1.0 wide: Tansu has had fewer runs
    tansu.done.append({"offered_per_s": 400.0, "passed": True})
    assert pick([kafka, tansu]) is kafka  # Tansu's is now 0.35 wide
    kafka.done.append({"offered_per_s": 600.0, "passed": True})
    assert pick([kafka, tansu]) is tansu  # Kafka's is now a third wide
    doubling = [_searched("kafka", [(200.0, True)]), _searched("tansu", [(130.0, True)])]
    assert pick(doubling) is doubling[0]  # both still doubling, as many runs: the first
    doubling[0].done.append({"offered_per_s": 400.0, "passed": True})
    assert pick(doubling) is doubling[1]  # both still doubling: the one with fewer runs
    assert pick([_searched("kafka", []), _searched("tansu", [])]).broker == "kafka"  # type: ignore[union-attr]
    assert pick([_searched("kafka", [(200.0, True), (220.0, False)])]) is None  # resolved


def test_the_searches_take_turns_so_both_capacities_are_known_alike(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    capacity = {"kafka": 650.0, "tansu": 500.0}
    clock = [0.0]
    order: list[tuple[str, float]] = []

    def fake_run(broker: str, rate: float, *_: Any, **__: Any) -> dict[str, Any]:
        order.append((broker, rate))
        clock[0] += 100.0
        return {"offered_per_s": rate, "sent_per_s": rate, "wall_s": 100.0,
                "ok": rate <= capacity[broker]}  # fmt: skip

    monkeypatch.setattr(capacity_run, "run_stack", fake_run)
    monkeypatch.setattr(capacity_run, "passed", lambda r: (r["ok"], "stub"))
    kafka, tansu = capacity_run.search(
        ["kafka", "tansu"], 200.0, 6, 660.0, 50.0, 15.0, 3.0, clock=lambda: clock[0],
        quiet=lambda: {"settle_s": 2.0, "busy_share": 0.04, "probe_ms": 8.5},
    )  # fmt: skip
    # Tansu from Kafka's best so far / 1.5; the two take turns while both are doubling, then
    # the wider bracket goes first (on a tie, the one with fewer runs; then the first broker);
    # a 7th run of 100 s would not fit in 660 s
    assert order == [("kafka", 200.0), ("tansu", 130.0), ("kafka", 400.0), ("tansu", 260.0),
                     ("kafka", 800.0), ("tansu", 520.0)]  # fmt: skip
    assert (kafka["best_offered_per_s"], kafka["lowest_fail_per_s"]) == (400.0, 800.0)
    assert (tansu["best_offered_per_s"], tansu["lowest_fail_per_s"]) == (260.0, 520.0)
    assert (kafka["seconds"], tansu["seconds"]) == (300.0, 300.0)
    # each run waited for quiet cores, then probed the host's speed
    assert {r["probe_ms"] for r in kafka["runs"] + tansu["runs"]} == {8.5}
    assert {r["settled"]["settle_s"] for r in kafka["runs"] + tansu["runs"]} == {2.0}


def test_a_broker_runs_again_only_while_its_longest_run_fits_in_its_share() -> None:
    assert time_left(200.0, [100.0, 100.0], 330.0)
    assert not time_left(240.0, [100.0, 120.0], 330.0)  # the longest run is the estimate
    assert time_left(0.0, [], 10.0)


def _run(**kw: Any) -> dict[str, Any]:
    return {"offered_per_s": 1000.0, "sent_per_s": 990.0, "handoff": {"p99": 0.4},
            "lag_grew": False, **kw}  # fmt: skip


def test_a_rate_passes_only_when_sent_fast_handed_off_in_time_and_lag_stable() -> None:
    assert passed(_run()) == (True, "kept up")
    assert passed(_run(sent_per_s=900.0))[1] == "simulator sent 900/s of 1,000/s"
    assert passed(_run(handoff={"p99": 1.0}))[1] == "handoff p99 1.00 s"
    assert passed(_run(handoff={}))[1] == "no handoff recorded in the window"
    assert passed(_run(lag_grew=True))[1] == "lag grew"
    assert passed(_run(lag_grew=True, lag_floor_rise=450.0))[1] == "lag grew (floor +450 msgs)"
    assert passed(_run(lag_grew=None))[1] == "lag trend unknown"
    left = _run(lag_settled=2500.0, lag_backlog_limit=800)
    assert passed(left)[1] == "2,500 msgs of lag left after the drain"
    assert passed(_run(lag_settled=300.0, lag_backlog_limit=800)) == (True, "kept up")
    assert not passed(_run(error="exit 1"))[0]


def _sawtooth(t: float, rate: float, every: float, phase: float = 0.0) -> float:
    """Committed-offset lag of a caught-up group that commits every ``every`` seconds."""
    return rate * ((t + phase) % every)


def test_a_committing_stage_is_not_a_backlog_but_a_rising_floor_is() -> None:
    times = [float(t) for t in range(16)]  # a 15 s window, sampled every second
    caught_up = [
        (t, {"mapper": _sawtooth(t, 100.0, 5.0), "sinks": _sawtooth(t, 60.0, 5.0, 2.0)})
        for t in times
    ]
    assert backlog_grew(caught_up, consumed_per_s=300.0) is False
    falling_behind = [(t, {"mapper": _sawtooth(t, 100.0, 5.0) + 60.0 * t}) for t in times]
    rise = floor_rise(falling_behind)
    assert rise is not None
    assert rise > 300.0
    assert backlog_grew(falling_behind, consumed_per_s=300.0) is True
    assert backlog_grew(caught_up[:3], consumed_per_s=300.0) is None  # too few samples


def test_a_line_fitted_through_a_short_sawtooth_can_read_as_growth() -> None:
    """Why the floor: the fitted trend (``lag_grew``) is fooled by where a window cuts the teeth."""
    cut = [(float(t), 300.0 + _sawtooth(t, 100.0, 5.0)) for t in range(15)]
    assert lag_grew(cut, window_s=14.0) is True
    assert backlog_grew([(t, {"mapper": v}) for t, v in cut], consumed_per_s=300.0) is False
    # an exporter sampling every 5.5 s a sawtooth of 5 s aliases it into a slow staircase
    aliased = [(float(t), 500.0 + _sawtooth(t // 5.5 * 5.5, 100.0, 5.0)) for t in range(2, 19)]
    assert lag_grew(aliased, window_s=16.0) is True
    assert backlog_grew([(t, {"m": v}) for t, v in aliased], consumed_per_s=300.0) is False


def test_the_lag_left_after_the_drain_is_each_groups_floor_over_the_last_seconds() -> None:
    tail = [(float(t), {"mapper": _sawtooth(t, 100.0, 5.0), "worker": 900.0 - t})
            for t in range(20)]  # fmt: skip
    assert settled_lag(tail) == 881.0  # the mapper commits back to 0, the worker is behind
    assert settled_lag([]) == 0.0


def test_lag_is_summed_per_group_over_topics_and_partitions() -> None:
    lag = "interlock_consumer_lag_messages"
    samples = [MetricSample(lag, {"group": "a", "topic": "x", "partition": "0"}, 5.0),
               MetricSample(lag, {"group": "a", "topic": "y", "partition": "0"}, 7.0),
               MetricSample(lag, {"group": "b", "topic": "x", "partition": "0"}, 1.0),
               MetricSample("interlock_events_consumed_total", {"group": "a"}, 99.0)]  # fmt: skip
    assert lag_by_group(samples) == {"a": 12.0, "b": 1.0}


def test_the_brokers_cores_are_reported_slice_by_slice_from_ready() -> None:
    slices = broker_slices([(0.0, 1.0), (10.0, 8.0), (20.0, 11.0)])
    assert slices == [{"from_s": 0, "to_s": 10, "cores": 0.7},
                      {"from_s": 10, "to_s": 20, "cores": 0.3}]  # fmt: skip


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
    assert times.steal_s >= 0


def test_a_service_is_charged_for_the_children_it_has_waited_for() -> None:
    # the simulator's running snapshots are written by short-lived forked children
    code = (
        "import resource, subprocess, sys\n"
        "subprocess.run([sys.executable, '-c', 'sum(range(3 * 10**7))'], check=True)\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(u.ru_utime + u.ru_stime, flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        children_s = float(proc.stdout.readline())
        assert children_s > 0.1
        assert cpu_by_service(proc.pid)["up"] >= children_s - 0.02
    finally:
        proc.communicate("")


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


def test_capacity_section_shows_each_runs_backlog_floor_and_the_brokers_warm_up() -> None:
    run = {
        **_measured(200.0, False, 900.0),
        "verdict": "lag grew (floor +450 msgs)",
        "lag_floor_rise": 450.0,
        "lag_backlog_limit": 300,
        "lag_end": 900.0,
        "lag_fit_rose": False,
        "broker_cores_by_slice": [
            {"from_s": 0, "to_s": 10, "cores": 0.71},
            {"from_s": 10, "to_s": 20, "cores": 0.3},
        ],
    }
    doc = {"warmup_s": 50, "window_s": 15, "start_per_s": 200, "floor_per_s": 25,
           "searches": [{**_search("kafka", None, [run]), "floor_per_s": 25}]}  # fmt: skip
    md = capacity_section(doc).markdown()
    assert "lag floor +450 msgs (a backlog past 300), at end 900 msgs, fit flat" in md
    assert "broker cores by 10 s from `ready`: 0.71, 0.30" in md
    assert "50 s of warm-up, then a 15 s window" in md
    assert "halving while none is (down to 25/s)" in md


def test_capacity_section_gives_the_ratios_range_and_flags_other_work_on_the_machine() -> None:
    kafka = {**_search("kafka", 100.0, [_measured(100.0, True, 500.0)]), "lowest_fail_per_s": 200}
    tansu = {**_search("tansu", 70.0, [_measured(70.0, True, 700.0)]), "lowest_fail_per_s": 100}
    md = capacity_section({"searches": [kafka, tansu]}).markdown()
    assert "the capacities' ratio lies between 1.00x" in md
    assert "and 2.86x" in md
    assert "**other work shared the machine**: 0.10 to 0.10 cores outside the stack" in md
    assert "Apache Kafka @ 100/s: **kept up**; lag" in md
    assert "the host took cores" not in md  # no steal recorded
    assert "and stolen (" not in md


def test_capacity_section_flags_cores_the_host_took() -> None:
    def stolen(rate: float, share: float) -> dict[str, Any]:
        run = _measured(rate, True, 500.0)
        return {**run, "cores": {**run["cores"], "stolen": share}}

    kafka = _search("kafka", 100.0, [stolen(100.0, 0.45)])
    tansu = _search("tansu", 70.0, [stolen(70.0, 0.05)])
    md = capacity_section({"searches": [kafka, tansu]}).markdown()
    assert "**the host took cores from this machine**: 0.05 to 0.45 cores stolen" in md
    assert "stolen by the host 0.45" in md
    assert "and stolen (time the virtual machine's host ran something else" in md
    calm = capacity_section(
        {"searches": [_search("kafka", 100.0, [stolen(100.0, 0.02)])]}
    ).markdown()
    assert "the host took cores" not in calm
    assert "stolen by the host 0.02" in calm


def test_capacity_section_says_when_the_search_reached_its_floor() -> None:
    runs = [_measured(rate, False, 900.0) for rate in (200.0, 100.0, 50.0, 25.0)]
    doc = {"searches": [{**_search("tansu", None, runs), "floor_per_s": 25.0}]}
    assert "Tansu: no rate tried kept up (lowest 25/s, the search's floor)" in (
        capacity_section(doc).markdown()
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


def test_quix_section_lists_the_abba_runs_and_compares_cpu_per_quote() -> None:
    doc = {"status": "ok", "quixstreams": "3.0", "quotes": 1000, "accounts": 200, "rounds": 2,
           "order": ["faust", "quix", "plain", "plain", "quix", "faust"],
           "quix_streams": {"events_per_s": 4000, "cpu_us_per_quote": 200,
                            "runs": [{"position": 2, "events_per_s": 4100},
                                     {"position": 5, "events_per_s": 3900}]},
           "faust_worker": {"events_per_s": 3000, "cpu_us_per_quote": 300,
                            "runs": [{"position": 1, "events_per_s": 2900},
                                     {"position": 6, "events_per_s": 3100,
                                      "settled": {"settle_s": 14.0, "busy_share": 0.08}}]},
           "plain_confluent_loop": {"events_per_s": 8000,
                                    "runs": [{"position": 3, "events_per_s": 8000},
                                             {"position": 4, "events_per_s": 8000}]}}  # fmt: skip
    md = quix_section(doc).markdown()
    assert "| Faust worker: CPU per quote | 300 µs | Quix Streams 3.0 | 200 µs | 1.50x |" in md
    assert "2 runs of each in this order: faust, quix, plain, plain, quix, faust (ABBA" in md
    assert ("each run: #1 Faust 2,900/s, #2 Quix 4,100/s, #3 plain loop 8,000/s, "
            "#4 plain loop 8,000/s, #5 Quix 3,900/s, #6 Faust 3,100/s (waited 14 s, 8% busy); "
            "each run started once the machine's cores had been busy under 10% over a second "
            "(waiting at most 60 s)") in md  # fmt: skip


def test_capacity_section_lists_each_runs_speed_probe_and_flags_a_host_that_slowed() -> None:
    def probed(rate: float, probe: float) -> dict[str, Any]:
        return {**_measured(rate, True, 500.0), "probe_ms": probe}

    kafka = _search("kafka", 100.0, [probed(100.0, 8.0)])
    tansu = _search("tansu", 70.0, [probed(70.0, 12.4)])
    md = capacity_section({"searches": [kafka, tansu]}).markdown()
    assert "; speed probe 8.0 ms" in md
    assert "; speed probe 12.4 ms" in md
    assert "**the host's speed varied during the run**" in md
    assert "took 8.0 to 12.4 ms, 1.55x" in md
    settled = {**probed(100.0, 8.0), "settled": {"settle_s": 3.0, "busy_share": 0.06}}
    md_settled = capacity_section({"searches": [_search("kafka", 100.0, [settled])]}).markdown()
    assert "; started after 3 s, once the cores were 6% busy; speed probe 8.0 ms" in md_settled
    alike = _search("tansu", 70.0, [probed(70.0, 9.6)])  # 20% slower: within the spread
    md = capacity_section({"searches": [kafka, alike]}).markdown()
    assert "host's speed varied" not in md


def test_the_speed_probe_times_a_fixed_loop_in_milliseconds() -> None:
    probe = speed_probe(tries=2, loops=1_000)
    assert 0 < probe < 1_000
    assert host_speed_caveat([8.0, None, 8.1]) is None  # a run without a probe is left out
    assert host_speed_caveat([8.0]) is None
