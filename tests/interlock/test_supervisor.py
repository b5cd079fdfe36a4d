"""The supervisor of ``interlock up``: restarts a child that dies, with a capped backoff, and
gives up only on a crash loop; real child processes, polled with a deadline."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from interlock.supervisor import ChildEvent, RestartPolicy, Supervisor, describe_exit

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def _until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


@pytest.mark.unit
def test_the_backoff_doubles_per_crash_is_capped_and_a_crash_loop_gives_up() -> None:
    policy = RestartPolicy(backoff_s=1.0, backoff_max_s=5.0, max_restarts=4, window_s=60.0)
    crashes: list[float] = []
    delays = []
    for at in (0.0, 1.0, 2.0, 3.0):
        crashes.append(at)
        delays.append(policy.delay(crashes, at))
    assert delays == [1.0, 2.0, 4.0, 5.0]
    assert policy.delay([*crashes, 4.0], 4.0) is None  # the 5th crash within a minute
    # crashes older than the window are forgiven: the next one starts the backoff again
    assert policy.delay([*crashes, 100.0], 100.0) == 1.0


@pytest.mark.unit
def test_an_exit_is_described_by_its_code_or_its_signal() -> None:
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"


def test_a_killed_child_is_restarted_and_the_event_says_which_how_and_how_often(
    tmp_path: Path,
) -> None:
    events: list[ChildEvent] = []
    supervisor = Supervisor(tmp_path, RestartPolicy(backoff_s=0.1), on_event=events.append)
    service = supervisor.start("worker", SLEEPER)
    supervisor.watch(interval=0.05)
    try:
        first = service.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        _until(lambda: service.pid != first and service.running)
        assert [e.kind for e in events] == ["died", "restarted"]
        died, restarted = events
        assert died.describe().startswith("worker killed by SIGKILL; restart 1 in 0.1 s")
        assert restarted.describe() == f"worker restarted (pid {service.pid}, restart 1)"
        assert supervisor.restarts("worker") == 1
        assert supervisor.failed is None
    finally:
        started = time.monotonic()
        codes = supervisor.stop_all(grace=10)
    assert codes == {"worker": 0}  # ended by the SIGTERM of the stop: a clean stop
    assert time.monotonic() - started < 5


def test_a_crash_loop_stops_the_restarts_and_says_why(tmp_path: Path) -> None:
    events: list[ChildEvent] = []
    policy = RestartPolicy(backoff_s=0.05, backoff_max_s=0.2, max_restarts=3, window_s=60.0)
    supervisor = Supervisor(tmp_path, policy, on_event=events.append)
    supervisor.start("sinks", [sys.executable, "-c", "import sys; sys.exit(3)"])
    steady = supervisor.start("webhooks", SLEEPER)
    supervisor.watch(interval=0.05)
    try:
        _until(lambda: supervisor.failed is not None)
        assert supervisor.failed == "sinks crashed 4 times within 60 s (last: exited with code 3)"
        assert [e.kind for e in events if e.name == "sinks"] == [
            *["died", "restarted"] * 3,
            "gave_up",
        ]
        assert [e.delay_s for e in events if e.kind == "died"] == [0.05, 0.1, 0.2]
        assert "crash loop: giving up after 3 restarts" in events[-1].describe()
        assert steady.running  # the others are left alone; ``up`` decides to stop
        assert not supervisor.all_running()
    finally:
        supervisor.stop_all(grace=10)
