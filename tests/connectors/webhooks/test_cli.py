"""`interlock webhooks` and `interlock sinks` from the command line: serve, exit 0 on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from interlock.broker import free_port
from interlock.settings import Settings
from tests.connectors.webhooks.conftest import STANDARD_SECRET

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def _start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    return subprocess.Popen(
        [sys.executable, "-m", "interlock.cli", *command],
        cwd=ROOT,
        env={**full, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_ok(
    proc: subprocess.Popen[bytes], url: str, contains: str = "", timeout: float = 30
) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200 and contains in response.text:
                return response
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} never answered"
        time.sleep(0.1)


def _terminate(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _base_env(settings: Settings, metrics_port: int) -> dict[str, str]:
    return {
        "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers or "",
        "INTERLOCK_METRICS__PORT": str(metrics_port),
    }


def test_interlock_webhooks_serves_health_and_metrics_and_exits_0_on_sigterm(
    settings: Settings,
) -> None:
    port, metrics_port = free_port(), free_port()
    env = {
        **_base_env(settings, metrics_port),
        "INTERLOCK_WEBHOOKS__STANDARD__SECRETS": f'{{"acme": "{STANDARD_SECRET}"}}',
    }
    proc = _start(["webhooks", "--port", str(port)], env)
    try:
        health = _wait_ok(proc, f"http://127.0.0.1:{port}/healthz")
        assert health.json() == {"status": "ok"}
        metrics = _wait_ok(proc, f"http://127.0.0.1:{port}/metrics")
        assert "interlock_webhook_requests_total" in metrics.text
        unsigned = httpx.post(f"http://127.0.0.1:{port}/webhooks/standard/acme", content=b"{}")
        assert unsigned.status_code == 401  # the configured secret is in force
        line = 'interlock_webhook_requests_total{source="acme",status="401"} 1.0'
        assert line in _wait_ok(proc, f"http://127.0.0.1:{metrics_port}/metrics").text
    finally:
        code = _terminate(proc)
    assert code == 0


def test_interlock_sinks_serves_metrics_and_exits_0_on_sigterm(settings: Settings) -> None:
    metrics_port = free_port()
    env = {
        **_base_env(settings, metrics_port),
        "INTERLOCK_SINKS__ERP__BASE_URL": "http://127.0.0.1:9",
        "INTERLOCK_SINKS__GROUP_ID": f"sinks-cli-{metrics_port}",
    }
    proc = _start(["sinks"], env)
    try:
        closed = 'interlock_circuit_breaker_state{target="erp"} 0.0'
        _wait_ok(proc, f"http://127.0.0.1:{metrics_port}/metrics", contains=closed)
        assert _wait_ok(proc, f"http://127.0.0.1:{metrics_port}/healthz").status_code == 200
    finally:
        code = _terminate(proc)
    assert code == 0
