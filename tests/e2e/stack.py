"""Start ``interlock up`` as a user would, for the end-to-end tests, and watch its processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from interlock.broker import free_port

READY = "Press Ctrl-C to stop"


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def start_up(
    tmp_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120.0,
) -> tuple[subprocess.Popen[str], str]:
    """Run ``interlock up ARGS`` until it says it is ready; returns the process and its output.

    Without ``INTERLOCK_KAFKA__BOOTSTRAP_SERVERS`` in ``env`` it starts the embedded broker.
    """
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"KAFKA_BOOTSTRAP_SERVERS", "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS"}
    }
    base.update({"INTERLOCK_METRICS__PORT": str(free_port()), "COLUMNS": "200", **(env or {})})
    proc = subprocess.Popen(
        [sys.executable, "-m", "interlock.cli", "up", "--log-dir", str(tmp_path / "logs"), *args],
        env=base,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if READY in line:
            return proc, "".join(lines)
    proc.kill()
    raise AssertionError("interlock up did not reach a running state:\n" + "".join(lines))
