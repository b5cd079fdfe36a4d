"""The stack's ports are fixed (a scrape config holds across runs) and a busy one fails fast."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_up_refuses_a_busy_fixed_port_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"KAFKA_BOOTSTRAP_SERVERS", "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS"}
        }
        env.update({"INTERLOCK_WEBHOOKS__PORT": str(port), "INTERLOCK_METRICS__PORT": "0"})
        began = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "interlock.cli", "up", "--log-dir", str(tmp_path / "logs")],
            env={**env, "COLUMNS": "200"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"port {port} (webhook receiver) is in use" in result.stdout
    assert "INTERLOCK_WEBHOOKS__PORT" in result.stdout
    assert "broker ready" not in result.stdout + result.stderr  # nothing was started
    assert time.monotonic() - began < 30
