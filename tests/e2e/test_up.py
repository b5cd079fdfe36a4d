"""``interlock up`` on the embedded broker: running, answering /metrics, stopping cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from interlock.collector import YOUNG_THRESHOLD
from tests.e2e.stack import child_pid, process_alive, start_up

pytestmark = pytest.mark.e2e


def _get(url: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def embedded_broker_pid(output: str) -> int:
    """The embedded broker's pid from the banner, which names Apache Kafka, its version, why."""
    found = re.search(
        r"embedded broker\s+│ Apache Kafka 4\.\d+\.\d+ \(KRaft\), pid (\d+), data in \S+; Java \d+",
        output,
    )
    assert found is not None, output
    return int(found.group(1))


def _wait_for_orders(metrics_url: str, at_least: int, timeout: float = 90.0) -> None:
    """Poll the worker's /metrics until it has produced ``at_least`` create-order commands."""
    deadline = time.monotonic() + timeout
    while True:
        made = sum(
            float(value)
            for value in re.findall(
                r"^interlock_events_produced_total\{[^}]*create-order[^}]*\} (\S+)$",
                _get(metrics_url),
                re.M,
            )
        )
        if made >= at_least:
            return
        assert time.monotonic() < deadline, f"{made:.0f} create-order commands in {timeout:.0f} s"
        time.sleep(0.5)


def assert_every_invariant_holds(out: str) -> None:
    """Every invariant of ``--check`` passes (at least the 12 of a plain run), and some orders
    were made, each exactly once."""
    rows = dict(re.findall(r"│ (\w+)\s+│[^│]*│[^│]*│ (pass|FAIL)\s+│", out))
    assert len(rows) >= 12, out
    assert set(rows.values()) == {"pass"}, out
    orders = re.search(r"│ orders_exactly_once\s+│ (\d+)\s+│ (\d+)", out)
    assert orders is not None, out
    assert int(orders.group(1)) == int(orders.group(2)) > 0


def test_up_runs_answers_metrics_and_stops_on_sigint(tmp_path: Path) -> None:
    proc, output = start_up(tmp_path)
    broker_pid = embedded_broker_pid(output)
    try:  # stop the stack whatever fails
        urls = re.findall(r"(http://127\.0\.0\.1:\d+/metrics)", output)
        assert len(urls) >= 6, output  # the supervisor's and every service's
        assert re.search(r"ready in [\d.]+ s: every consumer holds its partitions", output), output
        # on the embedded broker the tables are in memory: nothing of them outlives the broker
        assert re.search(r"worker tables\s+│ memory:// in \S*embedded", output), output
        assert not list(tmp_path.glob("**/*.db")), list(tmp_path.glob("**/*.db"))
        for url in urls:
            body = _get(url)
            assert "process_resident_memory_bytes" in body
        assert 'interlock_service_up{service="worker"} 1.0' in _get(urls[0])
        held = re.findall(
            r"^interlock_assigned_partitions\{group=\"([^\"]+)\"\} (\S+)$",
            "\n".join(_get(url) for url in urls),
            re.M,
        )
        # worker, webhook mapper, sinks and cdc each hold partitions before "ready" is said
        assert len({group for group, value in held if float(value) > 0}) >= 4, held
        # every long-running stage runs with its collector tuned (interlock.collector)
        tuned = dict(re.findall(r"(worker|webhooks|sinks|cdc) metrics\s+│ (http://\S+)", output))
        assert set(tuned) == {"worker", "webhooks", "sinks", "cdc"}, output
        for service, url in tuned.items():
            young = f'interlock_gc_threshold{{generation="0"}} {float(YOUNG_THRESHOLD)}'
            assert young in _get(url), service
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output + rest
    stopped = re.search(r"stopped: (.*)", rest)
    assert stopped is not None, rest
    codes = dict(item.split("=") for item in stopped.group(1).split(", "))
    assert set(codes) >= {"worker", "webhooks", "sinks", "cdc", "lag-exporter"}
    assert set(codes.values()) == {"0"}, rest
    assert not process_alive(broker_pid)


def test_up_for_a_bounded_time_exits_zero(tmp_path: Path) -> None:
    proc, output = start_up(tmp_path, "--for", "3")
    broker_pid = embedded_broker_pid(output)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output + rest
    assert not process_alive(broker_pid)


def assert_drift_found_exactly(out: str) -> None:
    """Both drift invariants pass; every kind was injected, each case found, nothing false."""
    rows = dict(re.findall(r"│ (drift_\w+)\s+│[^│]*│[^│]*│ (pass|FAIL)\s+│", out))
    assert rows == {"drift_found_by_worker": "pass", "drift_found_against_apis": "pass"}, out
    for name, kinds in (("drift_found_by_worker", 3), ("drift_found_against_apis", 5)):
        table = out.split(f"{name}: by kind", 1)[1].split(f"{name}: recall", 1)[0]
        counts = re.findall(r"│ (RECON_\w+)\s+│ (\d+)\s+│ (\d+)\s+│ (\d+)\s+│", table)
        assert len(counts) == kinds, out
        assert all(int(i) == int(f) > 0 and z == "0" for _, i, f, z in counts), out
        assert re.search(rf"{name}: recall 100% \(\d+/\d+ cases\), precision 100%", out), out


DESK_INVARIANTS = (
    "cases_decided_or_open",
    "no_order_for_rejected_case",
    "approved_overrides_ordered_once",
    "rejections_written_back_once",
    "desk_decisions_applied",
)


def assert_desk_decided(out: str) -> None:
    """The run made exception-desk cases and the seeded desk decided some: the path ran."""
    counts = {
        name: (int(expected), int(actual))
        for name, expected, actual in re.findall(r"│ (\w+)\s+│ (\d+)\s+│ (\d+)\s+│", out)
    }
    assert set(DESK_INVARIANTS) <= set(counts), out
    assert counts["cases_decided_or_open"][0] > 0, out
    assert counts["desk_decisions_applied"][0] > 0, out
    assert counts["approved_overrides_ordered_once"][0] > 0, out


def test_a_simulated_run_keeps_every_invariant(tmp_path: Path) -> None:
    """The main job end to end: simulated CRM and ERP, with reconciliation drift injected at
    seeded moments and the exception desk deciding its cases, then the invariant check (exit
    0): reconciliation found exactly the drift, every case was decided or is open."""
    proc, output = start_up(
        tmp_path, "--simulate", "30", "--for", "25", "--check", "--seed", "11", "--drift"
    )
    rest, _ = proc.communicate(timeout=400)
    out = output + rest
    assert proc.returncode == 0, out
    assert_every_invariant_holds(out)
    assert_drift_found_exactly(out)
    assert_desk_decided(out)
    # what every process used: memory at half of --for and at the end, CPU before and after
    assert re.search(r"Resources: memory at 1[23] s", out), out
    used = dict(re.findall(r"│ (worker|broker|webhooks)\s+│\s+(\d+) MiB", out))
    assert set(used) == {"worker", "broker", "webhooks"}, out
    assert all(int(mib) > 20 for mib in used.values()), out


def test_two_workers_keep_every_invariant(tmp_path: Path) -> None:
    """The same run on two workers in one group, a partition each: a company's CRM account and
    ERP customer, and so its quotes and the ERP's changes of its orders, are often held by
    different workers. Every quote is still ordered once, every ERP change reaches its deal,
    the drift is found and the desk's decisions apply (before the match index was partitioned
    by match key and ERP changes forwarded, about half the orders and write-backs were
    missing)."""
    proc, output = start_up(
        tmp_path, "--workers", "2", "--simulate", "30", "--for", "25", "--check", "--seed", "11",
        "--drift",
    )  # fmt: skip
    rest, _ = proc.communicate(timeout=400)
    out = output + rest
    assert proc.returncode == 0, out
    assert "worker-2 metrics" in out, out
    assert_every_invariant_holds(out)
    assert_drift_found_exactly(out)
    assert_desk_decided(out)


def test_a_broker_killed_mid_run_is_restarted_and_nothing_is_lost_or_doubled(
    tmp_path: Path,
) -> None:
    """SIGKILL of the embedded Apache Kafka under load: ``up`` restarts it on the same data
    directory and port, every service reconnects by itself, and every invariant holds."""
    proc, output = start_up(tmp_path, "--simulate", "40", "--for", "45", "--check", "--seed", "5")
    try:
        broker_pid = embedded_broker_pid(output)
        worker_metrics = re.search(r"worker metrics\s+│ (http://\S+/metrics)", output)
        assert worker_metrics is not None, output
        _wait_for_orders(worker_metrics.group(1), at_least=50)  # under load, orders in flight
        os.kill(broker_pid, signal.SIGKILL)
        rest, _ = proc.communicate(timeout=480)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = output + rest
    assert "broker killed by SIGKILL; restart 1 in 1.0 s" in out, out
    assert re.search(r"broker restarted \(pid \d+, restart 1\)", out), out
    assert re.search(r"embedded broker back on 127\.0\.0\.1:\d+", out), out
    assert proc.returncode == 0, out
    assert_every_invariant_holds(out)


FREE_PORTS = {"INTERLOCK_METRICS__PORT": "0", "INTERLOCK_WEBHOOKS__PORT": "0"}


def _restarts(up_metrics: str, service: str, at_least: int, timeout: float = 60.0) -> None:
    """Poll ``up``'s /metrics until ``service`` was restarted ``at_least`` times."""
    deadline = time.monotonic() + timeout
    pattern = rf'^interlock_service_restarts_total\{{service="{service}"\}} (\S+)$'
    while True:
        found = re.search(pattern, _get(up_metrics), re.M)
        if found is not None and float(found.group(1)) >= at_least:
            return
        assert time.monotonic() < deadline, f"{service} not restarted {at_least}x in {timeout} s"
        time.sleep(0.5)


def _kill_child(up: subprocess.Popen[str], subcommand: str) -> int:
    pid = child_pid(up.pid, subcommand)
    assert pid is not None, f"no {subcommand} child of interlock up"
    os.kill(pid, signal.SIGKILL)
    return pid


def test_a_crash_loop_stops_the_stack_without_checking_a_partial_run(tmp_path: Path) -> None:
    """One restart allowed: the sinks killed twice are a crash loop; ``up`` stops the stack,
    says why, does not run ``--check`` on what is left, and exits 1."""
    env = {
        **FREE_PORTS,
        "INTERLOCK_SUPERVISION__CRASH_LOOP_RESTARTS": "1",
        "INTERLOCK_SUPERVISION__RESTART_BACKOFF_S": "0.5",
    }
    proc, output = start_up(
        tmp_path, "--simulate", "20", "--for", "60", "--check", "--seed", "9", env=env
    )
    try:
        up_metrics = re.search(r"│ metrics\s+│ (http://\S+/metrics)", output)
        assert up_metrics is not None, output
        first = _kill_child(proc, "sinks")
        _restarts(up_metrics.group(1), "sinks", 1)
        deadline = time.monotonic() + 30
        while child_pid(proc.pid, "sinks") in (None, first):
            assert time.monotonic() < deadline, "the sinks did not come back"
            time.sleep(0.2)
        _kill_child(proc, "sinks")
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = output + rest
    assert proc.returncode == 1, out
    assert "sinks killed by SIGKILL, crash loop: giving up after 1 restarts" in out, out
    assert "stopping the stack: sinks crashed 2 times within 300 s" in out, out
    assert "not checked: the stack fell apart" in out, out
    assert "Invariants" not in out, out
    assert "messages behind" not in out, out
