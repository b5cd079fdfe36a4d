"""One ``interlock up --simulate RATE`` on a chosen embedded broker, measured over a steady window.

The stack runs as a subprocess (the broker chosen with ``INTERLOCK_EMBEDDED_BROKER``); every
service's ``/metrics`` is scraped every ``interval`` seconds. Once ``up`` says it is ready the
simulator starts; the steady window runs from ``warmup`` seconds later to the end of the
generation (``--for``). Over that window: the handoff latency (the sinks' histogram, the
buckets at the window's start subtracted from the last ones, so the actions handed off after
the warm-up, the drain included), whether the lag grew, and the CPU seconds of each service
(/proc) per action the simulator sent.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import httpx

from bench.capacity.processes import MachineTimes, cpu_by_service, machine_times
from bench.pipeline.run import (
    URL,
    _latest_buckets,
    _merge,
    _scrape,
    stack_env,
    start_stack,
    stop_stack,
)
from ops.simulator.live import Snapshot, histogram_quantile, lag_grew, take_snapshot

__all__ = ["BrokerKind", "run_stack", "window_quantiles"]

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".interlock" / "bench" / "capacity"
BrokerKind = Literal["kafka", "tansu"]


class _StackOutput:
    """Reads ``up``'s output: the metrics URLs it prints, when it says ``ready``, the last lines."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.urls: dict[str, str] = {}
        self.tail: list[str] = []
        self.ready_at: float | None = None
        self._proc = proc
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.tail = [*self.tail[-40:], line.rstrip()]
            if self.ready_at is None and line.lstrip().startswith("ready in"):
                self.ready_at = time.monotonic()
            for url in URL.findall(line):
                self.urls.setdefault(url, line.split("http://")[0].strip(" │|┃"))


def window_quantiles(
    start: Mapping[str, list[tuple[float, float]]], end: Mapping[str, list[tuple[float, float]]]
) -> tuple[dict[str, float | None], dict[str, dict[str, float | None]]]:
    """p50/p99 of what was observed between two cumulative histograms: overall and per flow."""
    flows: dict[str, list[tuple[float, float]]] = {}
    for flow, buckets in end.items():
        before = dict(start.get(flow, []))
        flows[flow] = [(le, count - before.get(le, 0.0)) for le, count in buckets]

    def q(buckets: list[tuple[float, float]]) -> dict[str, float | None]:
        return {"p50": histogram_quantile(0.5, buckets), "p99": histogram_quantile(0.99, buckets)}

    return q(_merge(flows)), {f: q(b) for f, b in sorted(flows.items())}


def run_stack(
    broker: BrokerKind,
    rate: float,
    duration: float,
    *,
    drain: float = 5.0,
    warmup: float | None = None,
    interval: float = 1.0,
) -> dict[str, Any]:
    """One run of the stack at ``rate`` actions/s; its window's figures.

    ``warmup``: seconds from ``ready`` to the window's start (default: 30% of ``duration``,
    at most 8 s: the simulator's start, its first actions through every service, and the
    first of a JVM broker's compiling)."""
    warmup = min(8.0, 0.3 * duration) if warmup is None else warmup
    run_dir = WORK / f"{broker}-r{rate:g}-{uuid.uuid4().hex[:6]}"
    run_dir.mkdir(parents=True, exist_ok=True)
    env = stack_env(run_dir)
    env["INTERLOCK_EMBEDDED_BROKER"] = broker
    env.pop("INTERLOCK_KAFKA__BOOTSTRAP_SERVERS", None)  # always the embedded broker
    began = time.monotonic()
    proc = start_stack(run_dir, env, rate, duration, drain)
    out = _StackOutput(proc)
    series: list[tuple[float, Snapshot]] = []
    cpu: list[tuple[float, dict[str, float], MachineTimes]] = []
    deadline = began + duration + drain + 300
    try:
        with httpx.Client() as client:
            while proc.poll() is None and time.monotonic() < deadline:
                now = time.monotonic()
                window = _window(out.ready_at, warmup, duration)
                if window is not None and len(cpu) < 2 and now >= window[len(cpu)]:
                    cpu.append((now, cpu_by_service(proc.pid), machine_times()))
                samples, _ = _scrape(client, out.urls)
                if samples:
                    series.append((now, take_snapshot(samples, now)))
                time.sleep(max(0.0, interval - (time.monotonic() - now)))
    finally:
        # the stack is in its own session: a benchmark stopped early must stop it too
        stop_stack(proc)
    result: dict[str, Any] = {
        "broker": broker,
        "offered_per_s": rate,
        "exit_code": proc.returncode,
        "wall_s": round(time.monotonic() - began, 1),
        "warmup_s": warmup,
    }
    window = _window(out.ready_at, warmup, duration)
    if proc.returncode != 0 or window is None or len(cpu) < 2 or not series:
        why = "never ready" if out.ready_at is None else "window not covered"
        result["error"] = f"exit {proc.returncode}, {why}; " + " / ".join(out.tail[-4:])
        return result
    result.update(_measure(run_dir, series, cpu, window))
    return result


def _window(ready_at: float | None, warmup: float, duration: float) -> tuple[float, float] | None:
    return None if ready_at is None else (ready_at + warmup, ready_at + duration)


def _measure(
    run_dir: Path,
    series: Sequence[tuple[float, Snapshot]],
    cpu: Sequence[tuple[float, dict[str, float], MachineTimes]],
    window: tuple[float, float],
) -> dict[str, Any]:
    truth = run_dir / "simulation.json"
    meta = json.loads(truth.read_text()).get("meta", {}) if truth.exists() else {}
    sent, generation_s = meta.get("sent"), meta.get("generation_s")
    sent_per_s = sent / generation_s if sent and generation_s else None
    (t0, cpu0, m0), (t1, cpu1, m1) = cpu[0], cpu[1]
    seconds = t1 - t0
    actions = sent_per_s * seconds if sent_per_s else None
    services: dict[str, dict[str, float | None]] = {}
    for name in sorted(cpu1.keys() & cpu0.keys()):
        used = max(0.0, cpu1[name] - cpu0[name])
        services[name] = {
            "cpu_s": round(used, 3),
            "cores": round(used / seconds, 3),
            "us_per_action": round(used / actions * 1e6, 1) if actions else None,
        }
    stack_s = sum(s["cpu_s"] or 0.0 for s in services.values())
    busy, idle = m1.busy_s - m0.busy_s, m1.idle_s - m0.idle_s
    before = next((s for t, s in series if t >= window[0]), series[-1][1])
    last = _latest_buckets([s for _, s in series])
    latency, flows = window_quantiles(before.buckets, last)
    lag = [(t, s.lag_messages) for t, s in series if window[0] <= t <= window[1]]
    return {
        "sent": sent,
        "generation_s": generation_s,
        "sent_per_s": round(sent_per_s, 1) if sent_per_s else None,
        "window_s": round(seconds, 1),
        "handoff": latency,
        "handoff_by_flow": flows,
        "handoffs_in_window": _count(last, before.buckets),
        "lag_grew": lag_grew(lag, window[1] - window[0]),
        "lag_end": lag[-1][1] if lag else None,
        "cpu": services,
        "cores": {
            "stack": round(stack_s / seconds, 3),
            "rest_of_machine": round(max(0.0, busy - stack_s) / seconds, 3),
            "idle": round(idle / seconds, 3),
        },
    }


def _count(
    flows_end: Mapping[str, list[tuple[float, float]]],
    flows_start: Mapping[str, list[tuple[float, float]]],
) -> float:
    end = sum(b[-1][1] for b in flows_end.values() if b)
    start = sum(b[-1][1] for b in flows_start.values() if b)
    return end - start
