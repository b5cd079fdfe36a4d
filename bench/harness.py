"""What every benchmark does around its measurement: find a broker, write its JSON result."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "HOST_SPREAD",
    "broker_label",
    "host_speed_caveat",
    "kafka_bootstrap",
    "speed_probe",
    "write_result",
]

HOST_SPREAD = 0.25
"""Probes that differ by more than this share of the fastest flag a host whose speed varies."""


@contextmanager
def kafka_bootstrap() -> Iterator[str]:
    """``KAFKA_BOOTSTRAP_SERVERS`` when it is set, else an embedded broker's, up for the block."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    from interlock.broker import embedded_broker
    from interlock.settings import Settings

    with embedded_broker(Settings(_env_file=None)) as broker:
        yield broker.bootstrap_servers


def broker_label() -> str:
    """The broker the benchmarks run on: ``external``, or the embedded one that is chosen."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return "external"
    from interlock.broker import choose_embedded
    from interlock.settings import Settings

    kind = choose_embedded(Settings(_env_file=None)).kind
    return "embedded " + ("Tansu" if kind == "tansu" else "Apache Kafka")


def write_result(path: Path, result: Any) -> None:
    """Write a benchmark's result as indented JSON, creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


def speed_probe(tries: int = 5, loops: int = 200_000) -> float:
    """Milliseconds a fixed pure-Python loop takes on one core, the best of ``tries``.

    Taken just before a measured run on an otherwise quiet machine: the same code on the same
    machine takes the same time unless the host gives this machine's cores less (a virtual
    machine's host running something else, which steal time does not always show) or their
    clock changed. It is a reading of a few tens of milliseconds: probes that differ between
    runs show a host whose speed varies, not how fast the host was over each whole run.
    """
    best = float("inf")
    for _ in range(tries):
        began = time.perf_counter()
        total = 0
        for i in range(loops):
            total += i * i % 7
        best = min(best, time.perf_counter() - began)
    return round(best * 1000, 2)


def host_speed_caveat(probes: Sequence[float | None]) -> str | None:
    """A warning when the runs' speed probes differ by more than :data:`HOST_SPREAD`."""
    known = [p for p in probes if p]
    if len(known) < 2 or max(known) <= min(known) * (1 + HOST_SPREAD):
        return None
    return (
        f"**the host's speed varied during the run**: the speed probe (a fixed Python loop timed "
        f"on the quiet machine just before each run, best of 5) took {min(known):.1f} to "
        f"{max(known):.1f} ms, {max(known) / min(known):.2f}x; a probe is a moment's reading, so "
        "it shows that the host varied, not how fast it was over each run: figures of this run "
        "are only as steady as its host"
    )
