"""Build bench/results/RESULTS.md: every figure beside its same-run baseline, ratio and target.

Each benchmark writes its own JSON (its own shape); a section builder per benchmark turns it
into rows of (measure, value, baseline, ratio, target, verdict). A missed target shows by how
much it misses; targets are the issue's and are never adjusted to the result.

    python -m bench.report            # re-render from bench/results/*.json
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import broker_label
from bench.sections import BUILDERS
from bench.table import Row, Section, Target

__all__ = [
    "ORDER",
    "Row",
    "Section",
    "Target",
    "build_sections",
    "machine_info",
    "render_results",
    "write_results",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ORDER = [
    "serde", "webhooks", "cdc", "quote_to_order", "inprocess", "quix", "recovery", "sweep",
    "pipeline", "capacity", "broker",
]  # fmt: skip
"""Benchmarks in the order ``bench.run`` runs them and RESULTS.md shows them."""


def build_sections(
    results_dir: Path, runs: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Section]:
    """A section per benchmark with a JSON file or a recorded run (failed ones included)."""
    runs = runs or {}
    sections = []
    for name in ORDER:
        path = results_dir / f"{name}.json"
        run = runs.get(name, {})
        status = run.get("status", "ok")
        if status != "ok" or not path.exists():
            section = Section(name, name, status=_failure(run) if run else "no results")
        else:
            try:
                section = BUILDERS[name](json.loads(path.read_text()))
            except (KeyError, TypeError, ValueError) as exc:
                section = Section(name, name, status=f"unreadable results: {exc!r}")
        if run.get("seconds") is not None:
            section.notes.append(f"run took {run['seconds']:.0f} s, finished {run.get('finished')}")
        sections.append(section)
    return sections


def _failure(run: Mapping[str, Any]) -> str:
    what = {"failed": f"FAILED (exit {run.get('returncode')})", "timeout": "TIMED OUT"}
    text = what.get(str(run.get("status")), str(run.get("status")))
    tail = str(run.get("error", "")).strip().splitlines()[-3:]
    return text + (": " + " / ".join(tail) if tail else "")


def machine_info(load_before: tuple[float, float, float] | None = None) -> dict[str, Any]:
    """CPU model, cores, memory, Python, OS, date and load: the machine line of RESULTS.md."""
    cpu = platform.processor() or platform.machine()
    mem_gib = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 2**20
    except OSError:
        pass
    load = load_before or os.getloadavg()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1) if mem_gib else None,
        "python": platform.python_version(),
        "os": platform.platform(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": [round(x, 2) for x in load],
        "shared": load[0] > 0.5,
    }


def machine_line(m: Mapping[str, Any]) -> str:
    line = (f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
            f"Python {m['python']}, {m['os']}, {m['date']}")  # fmt: skip
    if m.get("shared"):
        load = ", ".join(f"{x:.2f}" for x in m["load_before"])
        line += f". **Shared machine**: load average {load} before the run"
    stolen = m.get("stolen_cores")
    if stolen is not None and stolen >= 0.05:
        line += (f". **The host took cores from this machine**: {stolen:.2f} of its "
                 f"{m['cores']} cores stolen on average while the benchmarks ran "
                 "(steal time)")  # fmt: skip
    return line + "."


def render_results(sections: list[Section], machine: Mapping[str, Any]) -> str:
    """RESULTS.md: the machine line, then one table per benchmark."""
    out = ["# Benchmark results", "", machine_line(machine), ""]
    out.append("Every figure is beside its baseline measured in the same run on the same broker "
               f"({broker_label()}, unless a section names another); "
               "ratio = value / baseline.")  # fmt: skip
    out.append("")
    for section in sections:
        out.append(section.markdown())
    return "\n".join(out).rstrip() + "\n"


def write_results(
    results_dir: Path = RESULTS_DIR,
    runs: Mapping[str, Mapping[str, Any]] | None = None,
    machine: Mapping[str, Any] | None = None,
) -> Path:
    """Render RESULTS.md (and the plots) from the JSON files in ``results_dir``."""
    from bench.plots import plot_all

    sections = build_sections(results_dir, runs)
    target = results_dir / "RESULTS.md"
    target.write_text(render_results(sections, machine or machine_info()))
    plot_all(results_dir, sections)
    return target


if __name__ == "__main__":
    run_file = RESULTS_DIR / "run.json"
    saved = json.loads(run_file.read_text()) if run_file.exists() else {}
    print(write_results(runs=saved.get("runs"), machine=saved.get("machine")).read_text())
