"""`interlock simulate` as a process: runs until SIGTERM, stops cleanly, writes ground truth."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ops.simulator.receiver import Receiver

pytestmark = pytest.mark.integration


def test_simulate_stops_on_sigterm_and_writes_the_ground_truth(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    receiver = Receiver()
    truth = tmp_path / "truth.json"
    env = {
        **os.environ,
        "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "INTERLOCK_WEBHOOKS__HUBSPOT__CLIENT_SECRET": "cli-secret",
        "INTERLOCK_WEBHOOKS__HUBSPOT__APP_ID": "4242",
        "INTERLOCK_CDC__RAW_TOPIC_PREFIX": f"simcli{os.getpid()}.",
    }
    argv = [
        sys.executable,
        "-m",
        "interlock.cli",
        "simulate",
        "--rate",
        "100",
        "--seed",
        "3",
        "--webhooks-url",
        receiver.server.url,
        "--ground-truth",
        str(truth),
        "--drain",
        "1",
    ]
    proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "fake ERP http://127.0.0.1:" in proc.stdout.readline()
        receiver.wait_for(20)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        receiver.server.stop()
    doc = json.loads(truth.read_text())
    assert doc["meta"]["phase"] == "done"
    assert doc["meta"]["sent"] >= 20
    assert sum(doc["recorded"]["responses"].values()) == len(receiver.requests)
