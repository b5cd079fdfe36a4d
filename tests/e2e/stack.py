"""Start ``interlock up`` as a user would, for the end-to-end tests, and watch its processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

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
    # free ports throughout (0), so that a run never waits for the fixed ports of another
    base.update(
        {
            "INTERLOCK_METRICS__PORT": "0",
            "INTERLOCK_WEBHOOKS__PORT": "0",
            "COLUMNS": "200",
            **(env or {}),
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "interlock.cli", "up", "--log-dir", str(tmp_path / "logs"), *args],
        env=base,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    return proc, wait_ready(proc, timeout)


def wait_ready(proc: subprocess.Popen[str], timeout: float = 120.0) -> str:
    """The output of ``interlock up`` up to its ready line (killed, and an error, without one)."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if READY in line:
            return "".join(lines)
    proc.kill()
    raise AssertionError("interlock up did not reach a running state:\n" + "".join(lines))


def child_pid(parent: int, subcommand: str) -> int | None:
    """The pid of ``parent``'s child running ``interlock.cli SUBCOMMAND``, if one runs."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"interlock.cli" in argv and subcommand.encode() in argv[:4]:
            return int(entry.name)
    return None
