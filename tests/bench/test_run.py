"""``bench.run``: a failing benchmark is recorded and the next one still runs (quick mode)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench.run import BENCHMARKS, Benchmark, run_benchmarks

pytestmark = pytest.mark.integration


def test_failure_is_recorded_and_the_rest_still_run(tmp_path: Path) -> None:
    real = Path("bench/results/serde.json").resolve()
    before = real.read_bytes() if real.exists() else None
    boom = Benchmark("quix", [sys.executable, "-c", "import sys; print('broken'); sys.exit(3)"])
    serde = BENCHMARKS["serde"]
    runs = run_benchmarks(
        [boom, serde], quick=True, results_dir=tmp_path, extra={"serde": ["--events", "200"]}
    )
    assert runs["quix"]["status"] == "failed"
    assert runs["quix"]["returncode"] == 3
    assert "broken" in runs["quix"]["error"]
    assert runs["serde"]["status"] == "ok"
    assert json.loads((tmp_path / "serde.json").read_text())["events"] == 200
    saved = json.loads((tmp_path / "run.json").read_text())
    assert set(saved["runs"]) == {"quix", "serde"}
    assert saved["machine"]["cores"]
    md = (tmp_path / "RESULTS.md").read_text()
    assert "**FAILED (exit 3): broken**" in md
    assert "| encode single-object" in md
    # a run into another directory leaves bench/results as it was
    assert (real.read_bytes() if real.exists() else None) == before
