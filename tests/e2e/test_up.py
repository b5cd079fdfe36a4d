"""``interlock up`` on the embedded broker: running, answering /metrics, stopping cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from interlock.broker import free_port

pytestmark = pytest.mark.e2e


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _start_up(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], list[str]]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"KAFKA_BOOTSTRAP_SERVERS", "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS"}
    }
    env.update({"INTERLOCK_METRICS__PORT": str(free_port()), "COLUMNS": "200"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "interlock.cli", "up", "--log-dir", str(tmp_path / "logs"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Press Ctrl-C to stop" in line:
            return proc, lines
    proc.kill()
    raise AssertionError("interlock up did not reach a running state:\n" + "".join(lines))


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


def test_up_runs_answers_metrics_and_stops_on_sigint(tmp_path: Path) -> None:
    proc, lines = _start_up(tmp_path)
    output = "".join(lines)
    broker_pid = int(re.search(r"pid (\d+) \(in memory\)", output).group(1))  # type: ignore[union-attr]
    urls = re.findall(r"(http://127\.0\.0\.1:\d+/metrics)", output)
    assert len(urls) >= 6, output  # the supervisor's and every service's
    try:
        for url in urls:
            body = _get(url)
            assert "process_resident_memory_bytes" in body
        assert 'interlock_service_up{service="worker"} 1.0' in _get(urls[0])
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output + rest
    stopped = re.search(r"stopped: (.*)", rest)
    assert stopped is not None, rest
    codes = dict(item.split("=") for item in stopped.group(1).split(", "))
    assert set(codes) >= {"worker", "webhooks", "sinks", "cdc", "lag-exporter"}
    assert set(codes.values()) == {"0"}, rest
    assert not _alive(broker_pid)


def test_up_for_a_bounded_time_exits_zero(tmp_path: Path) -> None:
    proc, lines = _start_up(tmp_path, "--for", "3")
    broker_pid = int(re.search(r"pid (\d+) \(in memory\)", "".join(lines)).group(1))  # type: ignore[union-attr]
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, "".join(lines) + rest
    assert not _alive(broker_pid)
