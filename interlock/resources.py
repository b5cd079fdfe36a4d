"""What each process of a run used: resident memory and CPU, read from /proc.

``interlock up`` samples every service, itself and the embedded broker when the load starts,
at an early point (``memory_sample_at``), when the load ends and at the very end. The summary
compares memory early against the end (must stay within 20%) and the CPU share of a core before
and after the early point, at the same offered load: a process whose CPU share climbs while the
load stays the same does more work per event as the run goes on. The embedded broker does that
(docs/operations/brokers.md); the summary says so when it sees it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.process_collector import ProcessCollector
from rich.table import Table

__all__ = [
    "CPU_GROWTH_FLAG",
    "MEMORY_CHANGE_FLAG",
    "Usage",
    "cpu_share",
    "grown_cpu",
    "peak_rss_bytes",
    "resources_table",
    "sample",
    "usage",
]

MEMORY_CHANGE_FLAG = 0.2
"""Memory that changes by more than this fraction from the early sample to the end is flagged."""
CPU_GROWTH_FLAG = 1.5
"""A CPU share that grows by this factor (and to at least a tenth of a core) is flagged."""
_CPU_FLOOR = 0.1


@dataclass(frozen=True)
class Usage:
    """One process at one moment: resident bytes, CPU seconds used so far, monotonic time."""

    rss_bytes: int
    cpu_seconds: float
    at: float


def usage(pid: int, now: float | None = None) -> Usage | None:
    """The process's resident memory and user + system CPU time (None when it is gone).

    Read by prometheus-client's ``ProcessCollector``, the code behind every service's
    ``process_*`` metrics, pointed at ``pid``.
    """
    collector = ProcessCollector(namespace="", pid=lambda: pid, registry=None)
    values = {m.name: m.samples[0].value for m in collector.collect() if m.samples}
    rss, cpu = values.get("process_resident_memory_bytes"), values.get("process_cpu_seconds")
    if not rss or cpu is None:  # gone, or a zombie with no memory left
        return None
    return Usage(int(rss), cpu, time.monotonic() if now is None else now)


def peak_rss_bytes(pid: int) -> int | None:
    """The process's peak resident memory so far (VmHWM; None when it is gone), which
    ``ProcessCollector`` does not give."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def sample(pids: Mapping[str, int]) -> dict[str, Usage]:
    """``usage`` of every named process still alive, taken at one moment."""
    now = time.monotonic()
    taken = {name: usage(pid, now) for name, pid in pids.items()}
    return {name: u for name, u in taken.items() if u is not None}


def cpu_share(first: Usage, last: Usage) -> float | None:
    """The share of one core the process used between two samples (None without elapsed time)."""
    elapsed = last.at - first.at
    if elapsed <= 0:
        return None
    return max(0.0, last.cpu_seconds - first.cpu_seconds) / elapsed


def grown_cpu(before: float | None, after: float | None) -> bool:
    """Whether a CPU share grew enough to report: by ``CPU_GROWTH_FLAG``, to a tenth of a core."""
    if before is None or after is None or after < _CPU_FLOOR:
        return False
    return after >= CPU_GROWTH_FLAG * max(before, 1e-9)


def _share(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def resources_table(
    start: Mapping[str, Usage],
    early: Mapping[str, Usage],
    load_end: Mapping[str, Usage],
    end: Mapping[str, Usage],
) -> Table:
    """Memory early vs end and the CPU share of a core before vs after the early sample.

    Args:
        start: when the load started. early: the early sample. load_end: when the load ended
            (CPU after the early sample is measured up to here). end: the end of the run.
    """
    at = next(iter(early.values())).at - next(iter(start.values())).at if early and start else 0
    table = Table(title=f"Resources: memory at {at:.0f} s and at the end; CPU before and after")
    for column in ("process", "memory early", "end", "change", "CPU before", "CPU after"):
        table.add_column(column, justify="left" if column == "process" else "right")
    for name, first in early.items():
        last = end.get(name)
        if last is None:
            continue
        change = (last.rss_bytes - first.rss_bytes) / first.rss_bytes if first.rss_bytes else 0.0
        flag = "" if abs(change) <= MEMORY_CHANGE_FLAG else " [red](over 20%)[/]"
        before = cpu_share(start[name], first) if name in start else None
        after = cpu_share(first, load_end[name]) if name in load_end else None
        grew = " [red](grew)[/]" if grown_cpu(before, after) else ""
        table.add_row(
            name,
            f"{first.rss_bytes / 2**20:.0f} MiB",
            f"{last.rss_bytes / 2**20:.0f} MiB",
            f"{change:+.0%}{flag}",
            _share(before),
            f"{_share(after)}{grew}",
        )
    return table
