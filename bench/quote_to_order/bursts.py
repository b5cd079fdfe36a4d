"""The quote → order benchmark's compared bursts: their order, their CPU, one figure of several.

The bursts the ratios compare run ``rounds`` times each in ABBA order, each once the machine
is quiet again after the one before (:func:`settle`); each reports its process's CPU per quote
and its peak resident memory, and a variant's runs are combined into one figure that keeps each
run.

Why wait: ABBA gives every variant the same mean position, but not the same predecessors, and a
run could leave work behind it that the next run pays for: the broker cleaning and compacting
the topics just written (a Quix or Faust run writes changelogs), a worker's RocksDB flushing as
it closes. With three variants, Faust follows Quix twice and Quix never follows itself. (So far
the machine has been quiet within a second of every run; the wait rules this out per run rather
than assuming it.)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.capacity.processes import MachineTimes, machine_times
from bench.harness import speed_probe
from interlock.resources import peak_rss_bytes, usage

__all__ = [
    "QUIET_BUSY_SHARE",
    "QUIET_MAX_S",
    "abba",
    "alternate",
    "combine",
    "peak_rss_mb",
    "process_cpu_s",
    "settle",
]

QUIET_BUSY_SHARE = 0.1
"""The machine is quiet when its cores were busy less than this share of a second (all cores)."""
QUIET_MAX_S = 60.0
"""The longest :func:`settle` waits; a machine busy with other work would never be quiet."""


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


def settle(
    *,
    busy_below: float = QUIET_BUSY_SHARE,
    most_s: float = QUIET_MAX_S,
    interval_s: float = 1.0,
    times: Callable[[], MachineTimes] = machine_times,
    sleep: Callable[[float], None] = time.sleep,
    probe: Callable[[], float] = speed_probe,
) -> dict[str, float]:
    """Wait until the machine's cores were busy less than ``busy_below`` over ``interval_s``
    (or ``most_s`` passed); the seconds waited, the busy share of the last interval and then
    the host's speed probe (``bench.harness.speed_probe``)."""
    waited = 0.0
    before = times()
    while True:
        sleep(interval_s)
        waited += interval_s
        after = times()
        spent = (after.busy_s - before.busy_s) + (after.idle_s - before.idle_s)
        busy = (after.busy_s - before.busy_s) / spent if spent > 0 else 0.0
        if busy < busy_below or waited >= most_s:
            return {"settle_s": round(waited, 1), "busy_share": round(busy, 3), "probe_ms": probe()}
        before = after


def alternate(
    order: list[str],
    run: Callable[[str], dict[str, Any] | None],
    *,
    quiet: Callable[[], dict[str, float]] = settle,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[int]]]:
    """Each variant of ``order`` run in turn once the machine is quiet: each variant's bursts
    and their positions (1-based). ``run`` returns a variant's burst, or None to skip it (a
    failure its caller records); its exceptions end the whole run."""
    bursts: dict[str, list[dict[str, Any]]] = {v: [] for v in order}
    positions: dict[str, list[int]] = {v: [] for v in order}
    for position, variant in enumerate(order, 1):
        waited = quiet()
        burst = run(variant)
        if burst is None:
            continue
        bursts[variant].append({**burst, "settled": waited})
        positions[variant].append(position)
    return bursts, positions


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
    keys = ("events_per_s", "events_per_s_incl_read_back", "cpu_us_per_quote", "peak_rss_mb",
            "settled")  # fmt: skip
    out["runs"] = [
        {"position": position, **{k: r.get(k) for k in keys}}
        for position, r in zip(positions, runs, strict=True)
    ]
    return out
