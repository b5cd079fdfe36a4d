"""The run's file: running snapshots from a forked child, final saves never replaced by one."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from ops.simulator.runfile import RunFile
from ops.simulator.truth import GroundTruth, Recorded, load_run, run_document

pytestmark = pytest.mark.unit


def _truth(orders: int) -> GroundTruth:
    truth = GroundTruth(seed=7)
    for n in range(orders):
        truth.add_expected_order(f"q{n}", 1, str(100 + n), "11", False)
    return truth


def test_a_running_snapshot_is_written_by_a_child_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    run_file = RunFile(path)
    truth = _truth(3)
    assert run_file.save_behind(run_document(truth, Recorded(), phase="running"))
    run_file.wait()
    loaded, _ = load_run(path)
    assert loaded == truth
    assert json.loads(path.read_text())["meta"] == {"phase": "running"}
    assert not path.with_name("run.json.tmp").exists()


def test_a_final_save_waits_for_the_running_one_so_it_is_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    run_file = RunFile(path)
    big = run_document(_truth(50_000), Recorded(), phase="running")
    run_file.save_behind(big)
    run_file.save(run_document(_truth(1), Recorded(), phase="done"))
    assert json.loads(path.read_text())["meta"] == {"phase": "done"}
    assert load_run(path)[0] == _truth(1)


def test_the_document_is_taken_when_saved_not_when_written(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    run_file = RunFile(path)
    truth = _truth(1)
    run_file.save_behind(run_document(truth, Recorded()))
    truth.add_expected_order("late", 1, "999", "11", False)  # in this process, after the fork
    run_file.wait()
    assert [o.quote_id for o in load_run(path)[0].expected_orders] == ["q0"]


def test_a_snapshot_that_cannot_be_written_is_logged_and_the_next_one_goes_ahead(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    run_file = RunFile(blocked / "run.json")  # a directory that is a file: the child fails
    with caplog.at_level(logging.WARNING):
        assert run_file.save_behind(run_document(_truth(1), Recorded()))
        run_file.wait()
    assert "was not written" in caplog.text
    run_file.path = tmp_path / "run.json"
    assert run_file.save_behind(run_document(_truth(2), Recorded()))
    run_file.wait()
    assert len(load_run(run_file.path)[0].expected_orders) == 2


def test_a_revision_amends_the_quotes_expected_order_after_a_reload_too(tmp_path: Path) -> None:
    truth = _truth(3)
    truth.revise_expected_order("q1", 4)
    assert [o.revision for o in truth.expected_orders] == [1, 4, 1]
    path = tmp_path / "run.json"
    RunFile(path).save(run_document(truth, Recorded()))
    loaded, _ = load_run(path)
    loaded.revise_expected_order("q2", 3)
    loaded.revise_expected_order("nope", 9)
    assert [o.revision for o in loaded.expected_orders] == [1, 4, 3]
    assert "_order_at" not in json.loads(path.read_text())["truth"]
