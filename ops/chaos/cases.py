"""What the fault suite does to a running stack, and when: pure data and a seeded schedule.

Each :class:`FaultCase` is one ``interlock up --simulate … --check`` run with one fault (or one
pair of API outages) injected at a moment drawn from the seed, inside the load: a SIGKILL of each
service in turn, the broker stalled (SIGSTOP) and killed, the fake ERP API failing with 500 and
with 429 + ``Retry-After``, a five-minute CRM outage, PostgreSQL restarted under the built-in CDC
source, and one node of a three-node Apache Kafka cluster killed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["CASES", "QUICK", "FaultCase", "FaultKind", "Planned", "plan", "select"]

FaultKind = Literal["kill", "stall", "api", "restart", "cluster-kill"]


@dataclass(frozen=True)
class FaultCase:
    """One fault and the run it is injected into."""

    name: str
    description: str
    kind: FaultKind
    target: str
    """The child of ``interlock up`` (``worker``, ``broker``, ``erp-db``…), or ``erp``/``crm``."""
    hold_s: float = 0.0
    """How long the fault lasts: a stall, an outage (0: a kill, over at once)."""
    statuses: tuple[int, ...] = ()
    """For ``api``: the statuses answered, one after the other, each for ``hold_s``."""
    run_s: float = 75.0
    """Seconds of simulated load (``--for``)."""
    up_args: tuple[str, ...] = ()
    cluster_nodes: int = 0
    """Run on a cluster of this many Apache Kafka nodes (0: the embedded broker)."""

    @property
    def fault_s(self) -> float:
        """How long the fault lasts in all."""
        return self.hold_s * max(1, len(self.statuses))


def _kill(service: str) -> FaultCase:
    return FaultCase(
        f"kill-{service}", f"SIGKILL of the {service}; up restarts it", "kill", service
    )


CASES: tuple[FaultCase, ...] = (
    *(_kill(s) for s in ("worker", "webhooks", "sinks", "cdc", "lag-exporter")),
    FaultCase(
        "stall-broker", "the broker stopped (SIGSTOP) for 20 s, then continued", "stall",
        "broker", hold_s=20.0,
    ),
    FaultCase(
        "kill-broker", "SIGKILL of the broker; up restarts it on its data directory", "kill",
        "broker",
    ),
    FaultCase(
        "erp-down", "the ERP API answers 500 for 30 s, then 429 with Retry-After for 30 s",
        "api", "erp", hold_s=30.0, statuses=(500, 429), run_s=100.0,
    ),
    FaultCase(
        "crm-outage", "the CRM API answers 503 with Retry-After for 5 minutes", "api", "crm",
        hold_s=300.0, statuses=(503,), run_s=360.0,
    ),
    FaultCase(
        "restart-postgres", "PostgreSQL (the ERP database) restarted under the built-in CDC "
        "source", "restart", "erp-db", up_args=("--erp", "postgres", "--cdc", "builtin"),
    ),
    FaultCase(
        "kill-cluster-node", "one node of a three-node Apache Kafka cluster (replication factor "
        "3, min.insync.replicas 2) killed and left down", "cluster-kill", "node",
        cluster_nodes=3,
    ),
)  # fmt: skip

QUICK: tuple[str, ...] = ("kill-cdc", "erp-down")
"""The short subset ``make test`` runs (through ``tests/e2e/test_chaos.py``)."""


def select(names: Sequence[str] | None) -> list[FaultCase]:
    """The cases named (all of them for None), in the suite's order.

    Raises:
        ValueError: a name that is not a case.
    """
    if not names:
        return list(CASES)
    known = {c.name: c for c in CASES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"no fault case {', '.join(unknown)}; cases: {', '.join(known)}")
    return [c for c in CASES if c.name in names]


@dataclass(frozen=True)
class Planned:
    """A case with its moment: ``at_s`` seconds after the load started."""

    case: FaultCase
    at_s: float
    seed: int

    def outage_specs(self) -> list[str]:
        """``--fault`` values of an ``api`` case (back to back from ``at_s``)."""
        if self.case.kind != "api":
            return []
        c = self.case
        return [
            f"{c.target}:{status}:{c.hold_s:g}@{self.at_s + i * c.hold_s:g}"
            for i, status in enumerate(c.statuses)
        ]


def plan(cases: Sequence[FaultCase], seed: int) -> list[Planned]:
    """Each case's moment, drawn from ``seed``: within the load, early enough that the load goes
    on for at least 30 s after the fault ends (so recovery happens under load)."""
    rng = random.Random(seed)
    out = []
    for case in cases:
        latest = max(10.0, case.run_s - case.fault_s - 30.0)
        earliest = min(15.0, latest)
        out.append(Planned(case, round(rng.uniform(earliest, latest), 1), seed))
    return out
