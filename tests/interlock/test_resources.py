"""Per-process resources of a run: real processes read from /proc, and the summary's verdicts."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from rich.console import Console

from interlock.broker import broker_growth_line
from interlock.resources import (
    Usage,
    cpu_share,
    grown_cpu,
    peak_rss_bytes,
    resources_table,
    sample,
    usage,
)

pytestmark = pytest.mark.unit

READY = "import time\nprint('ready', flush=True)\n"
BURN = READY + "end = time.monotonic() + 30\nwhile time.monotonic() < end: pass"
IDLE = READY + "time.sleep(30)"


def _child(code: str) -> subprocess.Popen[str]:
    """A Python child running ``code``, once it has started (its start-up CPU is behind it)."""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_busy_process_is_told_from_an_idle_one() -> None:
    """Real processes, read from /proc: on a shared machine the busy one gets what the scheduler
    gives it, so the test waits for its CPU time to grow rather than for a share of a core."""
    busy, idle = _child(BURN), _child(IDLE)
    try:
        first = sample({"busy": busy.pid, "idle": idle.pid})
        deadline = time.monotonic() + 30
        last = first
        while last["busy"].cpu_seconds - first["busy"].cpu_seconds < 0.3:
            assert time.monotonic() < deadline, "the busy process got no CPU in 30 s"
            time.sleep(0.1)
            last = sample({"busy": busy.pid, "idle": idle.pid})
    finally:
        for proc in (busy, idle):
            proc.kill()
            proc.wait()
    busy_share = cpu_share(first["busy"], last["busy"])
    idle_share = cpu_share(first["idle"], last["idle"])
    assert busy_share is not None
    assert idle_share is not None
    assert busy_share > 5 * idle_share
    assert first["busy"].rss_bytes > 1_000_000


def test_a_process_that_is_gone_is_left_out() -> None:
    proc = _child(READY)
    proc.wait()
    assert usage(proc.pid) is None
    assert sample({"gone": proc.pid}) == {}


def test_peak_memory_is_the_high_water_mark_not_what_is_resident_now() -> None:
    code = "x = bytearray(200 * 2**20)\ndel x\n" + IDLE  # 200 MiB touched, then let go
    proc = _child(code)
    try:
        now = usage(proc.pid)
        peak = peak_rss_bytes(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    assert now is not None
    assert peak is not None
    assert peak >= 200 * 2**20 > now.rss_bytes
    assert peak_rss_bytes(proc.pid) is None  # gone


def _u(rss_mib: float, cpu: float, at: float) -> Usage:
    return Usage(int(rss_mib * 2**20), cpu, at)


def test_cpu_share_is_cpu_seconds_over_elapsed_seconds() -> None:
    assert cpu_share(_u(10, 5.0, 100.0), _u(10, 8.0, 110.0)) == pytest.approx(0.3)
    assert cpu_share(_u(10, 5.0, 100.0), _u(10, 5.0, 100.0)) is None


@pytest.mark.parametrize(
    ("before", "after", "grew"),
    [
        (0.40, 0.85, True),  # the embedded broker in a 150 s run at 300 actions/s
        (0.40, 0.55, False),  # within noise
        (0.01, 0.05, False),  # tripled, but a twentieth of a core is nothing to report
        (None, 0.9, False),
    ],
)
def test_cpu_growth_is_flagged_only_when_large(
    before: float | None, after: float | None, grew: bool
) -> None:
    assert grown_cpu(before, after) is grew


def _text(table: object) -> str:
    console = Console(record=True, width=160)
    console.print(table)
    return console.export_text()


def test_the_table_flags_memory_growth_and_cpu_growth() -> None:
    start = {"broker": _u(300, 0.0, 0.0), "worker": _u(150, 0.0, 0.0)}
    early = {"broker": _u(387, 24.0, 60.0), "worker": _u(160, 12.0, 60.0)}
    load_end = {"broker": _u(480, 75.0, 120.0), "worker": _u(168, 24.0, 120.0)}
    end = {"broker": _u(492, 80.0, 140.0), "worker": _u(170, 25.0, 140.0)}
    text = _text(resources_table(start, early, load_end, end))
    broker = next(line for line in text.splitlines() if "broker" in line)
    worker = next(line for line in text.splitlines() if "worker" in line)
    assert "+27%" in broker
    assert "over 20%" in broker
    assert "40%" in broker
    assert "85%" in broker
    assert "grew" in broker
    assert "+6%" in worker
    assert "over" not in worker
    assert "20%" in worker
    assert "grew" not in worker
    assert "memory at 60 s" in text


def test_up_explains_a_broker_whose_cpu_climbs_and_is_silent_otherwise() -> None:
    start = {"broker": _u(300, 0.0, 0.0)}
    early = {"broker": _u(387, 24.0, 60.0)}
    climbing = {"broker": _u(480, 75.0, 120.0)}
    steady = {"broker": _u(480, 50.0, 120.0)}
    line = broker_growth_line("tansu", start, early, climbing)
    assert line is not None
    assert "from 40% to 85%" in line
    assert "KAFKA_BOOTSTRAP_SERVERS" in line
    assert broker_growth_line("tansu", start, early, steady) is None
    assert broker_growth_line("tansu", {}, early, climbing) is None
    assert broker_growth_line("kafka", start, early, climbing) is None  # Tansu's cost only
