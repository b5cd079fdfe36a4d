"""The quote → order benchmark's compared bursts: their order, their CPU, one figure of several.

The bursts the ratios compare run ``rounds`` times each in ABBA order; each reports its
process's CPU per quote and its peak resident memory, and a variant's runs are combined into one
figure that keeps each run.
"""

from __future__ import annotations

import statistics
from typing import Any

from interlock.resources import peak_rss_bytes, usage

__all__ = ["abba", "combine", "peak_rss_mb", "process_cpu_s"]


def process_cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes used so far."""
    return sum(u.cpu_seconds for u in map(usage, pids) if u is not None)


def peak_rss_mb(pids: list[int]) -> float:
    """The largest peak resident memory of the processes so far, in MiB."""
    return round(max((peak_rss_bytes(pid) or 0 for pid in pids), default=0) / 2**20, 1)


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def abba(variants: list[str], rounds: int) -> list[str]:
    """The order of ``rounds`` runs of each variant: forward, backward, forward, ..."""
    return [v for r in range(rounds) for v in (variants if r % 2 == 0 else variants[::-1])]


def combine(runs: list[dict[str, Any]], positions: list[int]) -> dict[str, Any]:
    """One variant's bursts as one figure: all their quotes over all their seconds (the rate of
    the whole; a mean of rates would weigh a slow run less), the median of their latencies and
    of their CPU per quote, and each run's own figures with its position in the run."""

    def rate(key: str) -> int | None:
        spans = [r["quotes"] / r[key] for r in runs if r.get(key)]
        if len(spans) < len(runs):
            return None
        return round(sum(r["quotes"] for r in runs) / sum(spans))

    def median(key: str) -> float | None:
        values = [r[key] for r in runs if r.get(key) is not None]
        return statistics.median(values) if values else None

    out: dict[str, Any] = {
        "quotes": runs[0]["quotes"],
        "orders": min(r["orders"] for r in runs),
        "seconds": round(sum(r["seconds"] for r in runs), 3),
        "events_per_s": rate("events_per_s"),
        "latency_p50_s": _rounded(median("latency_p50_s"), 4),
        "latency_p99_s": _rounded(median("latency_p99_s"), 4),
        "cpu_us_per_quote": _rounded(median("cpu_us_per_quote"), 0),
        "peak_rss_mb": _rounded(median("peak_rss_mb"), 1),
    }
    if any("events_per_s_incl_read_back" in r for r in runs):
        out["events_per_s_incl_read_back"] = rate("events_per_s_incl_read_back")
    keys = ("events_per_s", "events_per_s_incl_read_back", "cpu_us_per_quote", "peak_rss_mb")
    out["runs"] = [
        {"position": position, **{k: r.get(k) for k in keys}}
        for position, r in zip(positions, runs, strict=True)
    ]
    return out
