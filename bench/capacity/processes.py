"""CPU time of a process tree from /proc: each service of ``interlock up`` and the machine.

``interlock up`` starts every service, the simulator and the embedded broker as its children;
each child's CPU (its own and that of its descendants, all threads) is read from
``/proc/<pid>/stat`` and filed under the child's name (``worker``, ``sinks``, ``simulate``,
``broker``...), ``up`` itself under ``up``. The machine's busy and idle time come from
``/proc/stat``, so the time of every core in a window is accounted for.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MachineTimes", "cpu_by_service", "machine_times", "service_name"]

PROC = Path("/proc")
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class MachineTimes:
    """Seconds the machine's cores spent busy, idle and stolen since boot (all cores summed).

    Stolen time is what a virtual machine's host ran elsewhere while this machine had work: on
    a shared host it can take a large share of the cores, and every figure of a run slows
    with it.
    """

    busy_s: float
    idle_s: float
    steal_s: float = 0.0


def machine_times() -> MachineTimes:
    fields = [int(x) for x in (PROC / "stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    steal = fields[7] if len(fields) >= 8 else 0
    # user, nice, system, irq, softirq (guest time is counted in user time already)
    busy = sum(fields[:7]) - idle
    return MachineTimes(busy * TICK_S, idle * TICK_S, steal * TICK_S)


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process: user + system, all its threads, and its children
    that have exited and been waited for, such as the simulator's snapshot writers)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2 :].split()
    return int(rest[1]), sum(int(t) for t in rest[11:15]) * TICK_S


def _cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def service_name(argv: list[str]) -> str:
    """What a child of ``interlock up`` is, from its command line."""
    if "interlock.cli" in argv:
        i = argv.index("interlock.cli")
        return argv[i + 1] if i + 1 < len(argv) else "interlock"
    if not argv:
        return "?"
    exe = Path(argv[0]).name
    if exe == "java" or "tansu" in exe:
        return "broker"
    return exe


def cpu_by_service(root: int) -> dict[str, float]:
    """CPU seconds so far of ``root`` (as ``up``) and of each child's tree, by service name.

    Two children of one name (two workers) are ``worker`` and ``worker#2``; a process that has
    exited is gone from /proc and from the sums.
    """
    stats: dict[int, tuple[int, float]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            got = _stat(int(entry.name))
            if got is not None:
                stats[int(entry.name)] = got
    if root not in stats:
        return {}
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    out: dict[str, float] = {"up": stats[root][1]}
    for child in sorted(children.get(root, [])):
        name = service_name(_cmdline(child))
        key, n = name, 1
        while key in out:
            n += 1
            key = f"{name}#{n}"
        out[key] = _tree_cpu(child, stats, children)
    return out


def _tree_cpu(
    pid: int, stats: Mapping[int, tuple[int, float]], children: Mapping[int, list[int]]
) -> float:
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += stats[p][1]
        todo += children.get(p, [])
    return total
