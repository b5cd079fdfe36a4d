"""PNG plots of the benchmark results: the pipeline against offered load, each figure vs baseline.

matplotlib (the ``bench`` extra) with the non-interactive Agg backend, so it runs headless.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.table import Section

__all__ = ["plot_all", "plot_pipeline", "plot_vs_baseline"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pipeline(pipeline: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Throughput and handoff latency (p50, p99) against offered load, one line per worker count."""
    plt = _pyplot()
    runs = [r for r in pipeline.get("runs", []) if not r.get("error")]
    if not runs:
        return []
    by_workers: dict[int, list[Mapping[str, Any]]] = {}
    for r in sorted(runs, key=lambda r: r["offered_per_s"]):
        by_workers.setdefault(r["workers"], []).append(r)
    paths = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    offered = sorted({r["offered_per_s"] for r in runs})
    ax.plot(offered, offered, "k--", linewidth=1, label="offered")
    for w, rs in sorted(by_workers.items()):
        x = [r["offered_per_s"] for r in rs]
        ax.plot(x, [r.get("sent_per_s") or 0 for r in rs], ":", marker="s",
                label=f"{w} worker(s): simulator sent")  # fmt: skip
        ax.plot(x, [r.get("worker_consumed_per_s") or 0 for r in rs], marker="o",
                label=f"{w} worker(s): worker consumed")  # fmt: skip
    ax.set(xlabel="offered load (events/s)", ylabel="events/s", title="Pipeline throughput")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    paths.append(out_dir / "pipeline_throughput.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for w, rs in sorted(by_workers.items()):
        x = [r["offered_per_s"] for r in rs]
        for q, style in (("p50", "--"), ("p99", "-")):
            y = [((r.get("latency_all") or {}).get(q) or float("nan")) * 1000 for r in rs]
            ax.plot(x, y, style, marker="o", label=f"{w} worker(s) {q}")
    ax.axhline(250, color="red", linewidth=1, label="target p99 < 250 ms at 1,000/s")
    ax.set(xlabel="offered load (events/s)", ylabel="handoff latency (ms)",
           title="Handoff latency (all flows)")  # fmt: skip
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    paths.append(out_dir / "pipeline_latency.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)
    return paths


def plot_vs_baseline(sections: Sequence[Section], out_dir: Path) -> Path | None:
    """One horizontal bar per figure: its ratio to its same-run baseline (1.0 = baseline)."""
    plt = _pyplot()
    # the broker's own costs are not Interlock's figures; in all three, a higher ratio is worse
    skipped = ("broker", "recovery", "sweep")
    rows = [(s.name, r) for s in sections if s.name not in skipped for r in s.rows if r.ratio]
    rows = [(n, r) for n, r in rows if r.baseline_label not in ("offered", "simulator sent")]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.5))
    labels = [f"{n}: {r.measure}" for n, r in rows]
    ratios = [r.ratio or 0.0 for _, r in rows]
    colors = ["tab:green" if x >= 1 else "tab:orange" for x in ratios]
    ax.barh(range(len(rows)), ratios, color=colors)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(1.0, color="k", linewidth=1)
    for i, x in enumerate(ratios):
        ax.text(x, i, f" {x:.2f}x", va="center", fontsize=8)
    ax.set(xlabel="ratio to same-run baseline", title="Each benchmark vs its baseline")
    path = out_dir / "benchmarks_vs_baseline.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_all(results_dir: Path, sections: Sequence[Section]) -> list[Path]:
    """Every plot that the available results allow; returns the files written."""
    paths = []
    pipeline = results_dir / "pipeline.json"
    if pipeline.exists() and not any(s.name == "pipeline" and s.status != "ok" for s in sections):
        paths += plot_pipeline(json.loads(pipeline.read_text()), results_dir)
    bars = plot_vs_baseline(sections, results_dir)
    if bars is not None:
        paths.append(bars)
    return paths
