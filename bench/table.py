"""The rows of RESULTS.md: a figure, its same-run baseline, the ratio and the issue's target."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Row", "Section", "Target", "fmt"]


@dataclass(frozen=True)
class Target:
    """A target of the issue: ``on`` the value or the ratio, at least (min) or below (max)."""

    text: str
    kind: Literal["min", "max"]
    threshold: float
    on: Literal["value", "ratio"] = "value"
    unit: str = ""

    def verdict(self, value: float | None, ratio: float | None) -> str:
        x = value if self.on == "value" else ratio
        if x is None:
            return "not measured"
        met = x >= self.threshold if self.kind == "min" else x < self.threshold
        if met:
            return "met"
        gap = abs(x - self.threshold)
        share = gap / self.threshold if self.threshold else 0.0
        unit = "x" if self.on == "ratio" else f" {self.unit}".rstrip()
        side = "short" if self.kind == "min" else "over"
        return f"**missed** by {_num(gap)}{unit} ({share:.0%} {side})"


@dataclass(frozen=True)
class Row:
    """One measured figure and the baseline it is compared with in the same run."""

    measure: str
    value: float | None
    unit: str = ""
    baseline_label: str = ""
    baseline: float | None = None
    target: Target | None = None

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    def cells(self) -> list[str]:
        ratio = self.ratio
        return [
            self.measure,
            fmt(self.value, self.unit),
            self.baseline_label or "-",
            fmt(self.baseline, self.unit) if self.baseline_label else "-",
            _ratio(ratio),
            self.target.text if self.target else "-",
            self.target.verdict(self.value, ratio) if self.target else "-",
        ]


@dataclass
class Section:
    """One benchmark's table, with notes and its run status."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    status: str = "ok"

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.status != "ok":
            lines += [f"**{self.status}**", ""]
        if self.rows:
            header = ["measure", "value", "baseline (same run)", "baseline value", "ratio"]
            header += ["target", "verdict"]
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|---|---:|---|---:|---:|---|---|")
            lines += ["| " + " | ".join(r.cells()) + " |" for r in self.rows]
            lines.append("")
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines).rstrip() + "\n"


def _ratio(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio:.4f}x" if ratio < 0.01 else f"{ratio:.2f}x"


def _num(x: float) -> str:
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:,.2f}"
    return f"{x:.3g}"


def fmt(x: float | None, unit: str) -> str:
    if x is None:
        return "-"
    if unit == "s":
        return f"{x * 1000:,.0f} ms" if x < 1 else f"{x:,.2f} s"
    return f"{_num(x)} {unit}".rstrip()
