"""The webhook benchmark's arithmetic: one endpoint's alternated slices summed into one run."""

from __future__ import annotations

from typing import Any

import pytest

from bench.webhooks import run as run_module
from bench.webhooks.run import Run, combine

pytestmark = pytest.mark.unit


def _slice(requests: int, non_2xx: int, p50_us: int, p99_us: int, max_us: int) -> Run:
    wrk: dict[str, Any] = {
        "requests": requests, "duration_us": 2_000_000, "bytes": requests * 100,
        "sent": requests + 64, "reused": 0, "non_2xx_3xx": non_2xx, "connect_errors": 0,
        "read_errors": 0, "write_errors": 1, "timeouts": 0, "latency_p50_us": p50_us,
        "latency_p90_us": p50_us * 2, "latency_p99_us": p99_us, "latency_max_us": max_us,
    }  # fmt: skip
    return Run("/bench/noop", wrk, 2.0, 0.2, 2.0, 1.8, 1.0)


def test_slices_add_up_to_one_run_with_median_percentiles() -> None:
    slices = [
        _slice(8_000, 0, 5_000, 20_000, 40_000),
        _slice(6_000, 10, 9_000, 30_000, 90_000),
        _slice(7_000, 0, 7_000, 25_000, 50_000),
    ]
    run = combine(slices)
    summary = run.summary()
    assert summary["requests"] == 21_000
    assert summary["ok_2xx"] == 20_990
    assert summary["seconds"] == 6.0
    assert summary["req_per_s"] == pytest.approx(20_990 / 6.0, abs=0.1)
    assert summary["socket_errors"]["write"] == 3
    assert summary["latency_p50_s"] == 0.007
    assert summary["latency_p99_s"] == 0.025
    assert summary["latency_max_s"] == 0.09
    assert summary["cpu_cores"] == {
        "wrk": 0.1, "server_process": 1.0, "server_event_loop_thread": 0.9, "broker": 0.5,
    }  # fmt: skip


def test_a_slice_without_the_brokers_cpu_leaves_it_unknown() -> None:
    runs = [_slice(10, 0, 1, 2, 3), _slice(10, 0, 1, 2, 3)]
    runs[1].broker_cpu_s = None
    assert combine(runs).summary()["cpu_cores"]["broker"] is None


@pytest.mark.parametrize("argv", [["--slices", "0"], ["--slices", "-1"], ["--duration", "2"]])
def test_slices_outside_one_to_the_duration_are_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        run_module.main(argv)  # --duration 2 with the default 3 slices
    assert exit_.value.code == 2
    assert "--slices must be 1 to --duration" in capsys.readouterr().err


def test_a_sweep_row_is_cpu_per_answered_request() -> None:
    """8,000 answers in 2 s: 1.8 s of the event loop is 225 µs each, 1.0 s of the broker 125."""
    row = run_module.sweep_row(4, _slice(8_000, 0, 5_000, 20_000, 40_000))
    assert row == {"connections": 4, "req_per_s": 4_000, "event_loop_us_per_request": 225,
                   "broker_us_per_request": 125, "latency_p50_ms": 5.0}  # fmt: skip
