"""``bench.pipeline.run``: how a measured stack is started and stopped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.pipeline import run
from bench.pipeline.run import stack_env, start_stack, stop_stack
from bench.sections.stack import pipeline_section
from ops.simulator.truth import ErpOrder, GroundTruth, Recorded, save_run

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


def test_a_runs_orders_are_read_from_the_simulators_own_run_file(tmp_path: Path) -> None:
    truth = GroundTruth(seed=7)
    for n in range(3):
        truth.add_expected_order(f"q{n}", 1, str(100 + n), "11", False)
    recorded = Recorded()
    recorded.erp_orders.append(ErpOrder("SO-1", "k-1", "q0", 1, "100", "C1"))
    path = tmp_path / "simulation.json"
    save_run(path, truth, recorded, sent=42, phase="done")
    assert run.ground_truth(path) == (42, {"expected": 3, "created": 1})
    assert run.ground_truth(tmp_path / "absent.json") == (None, None)


def _run(workers: int, created: int) -> dict[str, object]:
    orders = {"expected": 100, "created": created}
    return {"workers": workers, "offered_per_s": 1000.0, "sent_per_s": 1000.0,
            "worker_consumed_per_s": 1500.0, "orders": orders}  # fmt: skip


def test_the_section_shows_the_orders_each_run_created_beside_those_expected() -> None:
    section = pipeline_section({"runs": [_run(1, 96), _run(2, 97)]})
    rows = {row.measure: row for row in section.rows}
    assert rows["2 workers @ 1,000/s: ERP orders created"].ratio == pytest.approx(0.97)
    assert rows["1 worker @ 1,000/s: ERP orders created"].baseline == 100
    assert any("`orders_complete`" in note for note in section.notes)


def test_without_the_orders_no_row_or_note_names_them() -> None:
    older = {k: v for k, v in _run(2, 0).items() if k != "orders"}
    section = pipeline_section({"runs": [older]})
    assert not any("orders created" in row.measure for row in section.rows)
    assert not any("`orders_complete`" in note for note in section.notes)
