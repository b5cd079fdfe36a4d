"""``bench.pipeline.run``: how a measured stack is started and stopped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.pipeline import run
from bench.pipeline.run import stack_env, start_stack, stop_stack

pytestmark = pytest.mark.unit


def test_the_stack_runs_up_simulate_with_its_options_before_its_log_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: dict[str, object] = {}

    def popen(argv: list[str], **kwargs: object) -> str:
        started.update(argv=argv, **kwargs)
        return "proc"

    monkeypatch.setattr(run.subprocess, "Popen", popen)
    env = stack_env(tmp_path)
    assert start_stack(tmp_path, env, 500, 10, 5, "--workers", "2") == "proc"
    assert started["argv"] == [
        sys.executable, "-m", "interlock.cli", "up", "--simulate", "500", "--for", "10",
        "--drain", "5", "--workers", "2", "--log-dir", str(tmp_path / "logs"),
        "--metrics-port", "0",
    ]  # fmt: skip
    assert started["start_new_session"] is True
    assert env["INTERLOCK_PROCESSORS__DATA_DIR"] == str(tmp_path / "faust")
    assert env["INTERLOCK_LOG_LEVEL"] == "WARNING"


def test_stopping_a_running_stack_ends_its_session() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import signal; signal.pause()"], text=True, start_new_session=True
    )
    stop_stack(proc)
    assert proc.returncode is not None
    stop_stack(proc)  # already stopped: nothing to do


def test_a_stopped_stacks_broker_data_and_tables_are_removed_and_its_logs_kept(
    tmp_path: Path,
) -> None:
    names = ("kafka/meta.properties", "kafka/broker.log", "faust/tables/x.db", "logs/worker.log")
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "simulation.json").write_text("{}")
    run.discard_state(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs", "simulation.json"]
    assert (tmp_path / "logs" / "worker.log").exists()
    assert (tmp_path / "logs" / "kafka-broker.log").exists()  # the broker's own log is kept
