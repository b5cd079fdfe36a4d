"""One ``interlock up --simulate RATE`` on a chosen embedded broker, measured over a steady window.

The stack runs as a subprocess (the broker chosen with ``INTERLOCK_EMBEDDED_BROKER``); every
service's ``/metrics`` is scraped every ``interval`` seconds. Once ``up`` says it is ready the
simulator starts; it generates for ``warmup + window`` seconds, and the steady window is the
last ``window`` of them. The warm-up is long because each run starts a fresh broker: a JVM
broker compiles as it serves and costs several times its steady CPU in its first minute.
Over the window: the handoff latency (the sinks' histogram, the buckets at the window's start
subtracted from the last ones, so the actions handed off after the warm-up, the drain
included), whether a backlog built up (``bench.capacity.criteria``), and the CPU seconds of
each service (/proc) per action the simulator sent. The broker's CPU is also taken every
``SLICE_S`` seconds from ``ready``, to show whether it had settled by the window.

The lag exporter samples every second in these runs (``LAG_INTERVAL_S``; 5 s by default), so
that each half of the window holds several samples of every group's commit sawtooth.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import httpx

from bench.capacity.criteria import backlog_grew, backlog_limit, floor_rise, lag_by_group
from bench.capacity.processes import MachineTimes, cpu_by_service, machine_times
from bench.pipeline.run import (
    URL,
    _latest_buckets,
    _merge,
    _scrape,
    discard_state,
    stack_env,
    start_stack,
    stop_stack,
)
from ops.simulator.live import Snapshot, histogram_quantile, lag_grew, take_snapshot

__all__ = ["BrokerKind", "broker_slices", "run_stack", "settled_lag", "window_quantiles"]

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".interlock" / "bench" / "capacity"
BrokerKind = Literal["kafka", "tansu"]
SLICE_S = 10.0
"""Seconds between two readings of the broker's CPU, from ``ready`` on."""
LAG_INTERVAL_S = 1.0
SETTLE_S = 10.0
"""Seconds after the drain that the stack gets to hand off the window's work: then the run is
stopped. A stack that kept up is drained by then; one that did not would keep the simulator
draining for up to its grace (90 s), time the search has better uses for."""


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
    warmup: float,
    window: float,
    *,
    drain: float = 3.0,
    interval: float = 1.0,
) -> dict[str, Any]:
    """One run at ``rate`` actions/s for ``warmup + window`` seconds; its window's figures."""
    duration = warmup + window
    run_dir = WORK / f"{broker}-r{rate:g}-{uuid.uuid4().hex[:6]}"
    run_dir.mkdir(parents=True, exist_ok=True)
    env = stack_env(run_dir)
    env["INTERLOCK_EMBEDDED_BROKER"] = broker
    env["INTERLOCK_LAG_EXPORTER__INTERVAL_S"] = f"{LAG_INTERVAL_S:g}"
    env.pop("INTERLOCK_KAFKA__BOOTSTRAP_SERVERS", None)  # always the embedded broker
    began = time.monotonic()
    proc = start_stack(run_dir, env, rate, duration, drain)
    out = _StackOutput(proc)
    series: list[tuple[float, Snapshot]] = []
    groups: list[tuple[float, dict[str, float]]] = []
    cpu: list[tuple[float, dict[str, float], MachineTimes]] = []
    ticks: list[tuple[float, float]] = []
    deadline = began + duration + drain + 300
    cut = False
    try:
        with httpx.Client() as client:
            while proc.poll() is None and time.monotonic() < deadline:
                now = time.monotonic()
                if out.ready_at is not None and now >= out.ready_at + duration + drain + SETTLE_S:
                    cut = True
                    break
                bounds = _window(out.ready_at, warmup, duration)
                if bounds is not None and len(cpu) < 2 and now >= bounds[len(cpu)]:
                    cpu.append((now, cpu_by_service(proc.pid), machine_times()))
                since = None if out.ready_at is None else now - out.ready_at
                if since is not None and SLICE_S * len(ticks) <= since <= duration:
                    ticks.append((since, cpu_by_service(proc.pid).get("broker", 0.0)))
                samples, _ = _scrape(client, out.urls)
                if samples:
                    series.append((now, take_snapshot(samples, now)))
                    groups.append((now, lag_by_group(samples)))
                time.sleep(max(0.0, interval - (time.monotonic() - now)))
    finally:
        # the stack is in its own session: a benchmark stopped early must stop it too
        stop_stack(proc)
        discard_state(run_dir)
    result: dict[str, Any] = {
        "broker": broker,
        "offered_per_s": rate,
        "exit_code": proc.returncode,
        "stopped_after_settle": cut,
        "wall_s": round(time.monotonic() - began, 1),
        "warmup_s": warmup,
        "broker_slice_s": SLICE_S,
        "broker_cores_by_slice": broker_slices(ticks),
    }
    bounds = _window(out.ready_at, warmup, duration)
    if (proc.returncode != 0 and not cut) or bounds is None or len(cpu) < 2 or not series:
        why = "never ready" if out.ready_at is None else "window not covered"
        result["error"] = f"exit {proc.returncode}, {why}; " + " / ".join(out.tail[-4:])
        return result
    result.update(_measure(run_dir, series, groups, cpu, bounds, cut))
    return result


def settled_lag(groups: Sequence[tuple[float, Mapping[str, float]]], last_s: float = 5.0) -> float:
    """The lag left at the end: each group's lowest lag over the last ``last_s`` seconds (a
    commit in them brings a caught-up group to zero), summed over groups."""
    if not groups:
        return 0.0
    end = groups[-1][0]
    tail = [lags for t, lags in groups if t >= end - last_s]
    names = {g for lags in tail for g in lags}
    return sum(min(lags.get(g, 0.0) for lags in tail) for g in names)


def broker_slices(ticks: Sequence[tuple[float, float]]) -> list[dict[str, float]]:
    """The broker's cores in each slice between two readings (seconds from ``ready``, CPU s)."""
    return [
        {"from_s": round(t0), "to_s": round(t1), "cores": round((c1 - c0) / (t1 - t0), 3)}
        for (t0, c0), (t1, c1) in itertools.pairwise(ticks)
        if t1 > t0
    ]


def _window(ready_at: float | None, warmup: float, duration: float) -> tuple[float, float] | None:
    return None if ready_at is None else (ready_at + warmup, ready_at + duration)


def _measure(
    run_dir: Path,
    series: Sequence[tuple[float, Snapshot]],
    groups: Sequence[tuple[float, Mapping[str, float]]],
    cpu: Sequence[tuple[float, dict[str, float], MachineTimes]],
    window: tuple[float, float],
    cut: bool,
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
    stolen = m1.steal_s - m0.steal_s
    before = next((s for t, s in series if t >= window[0]), series[-1][1])
    last = _latest_buckets([s for _, s in series])
    latency, flows = window_quantiles(before.buckets, last)
    lag = [(t, s.lag_messages) for t, s in series if window[0] <= t <= window[1]]
    inside = [(t, s) for t, s in series if window[0] <= t <= window[1]]
    consumed_per_s = None
    if len(inside) >= 2 and inside[-1][0] > inside[0][0]:
        consumed = inside[-1][1].consumed - inside[0][1].consumed
        consumed_per_s = consumed / (inside[-1][0] - inside[0][0])
    by_group = [(t, g) for t, g in groups if window[0] <= t <= window[1]]
    rise = floor_rise(by_group)
    return {
        "sent": sent,
        "generation_s": generation_s,
        "sent_per_s": round(sent_per_s, 1) if sent_per_s else None,
        "window_s": round(seconds, 1),
        "handoff": latency,
        "handoff_by_flow": flows,
        "handoffs_in_window": _count(last, before.buckets),
        "consumed_per_s": round(consumed_per_s, 1) if consumed_per_s else None,
        "lag_grew": backlog_grew(by_group, consumed_per_s),
        "lag_floor_rise": rise,
        "lag_backlog_limit": round(backlog_limit(consumed_per_s)),
        "lag_fit_rose": lag_grew(lag, window[1] - window[0]),
        "lag_end": lag[-1][1] if lag else None,
        "lag_end_by_group": by_group[-1][1] if by_group else {},
        "lag_settled": settled_lag(groups) if cut else None,
        "cpu": services,
        "cores": {
            "stack": round(stack_s / seconds, 3),
            "rest_of_machine": round(max(0.0, busy - stack_s) / seconds, 3),
            "idle": round(idle / seconds, 3),
            "stolen": round(stolen / seconds, 3),
        },
    }


def _count(
    flows_end: Mapping[str, list[tuple[float, float]]],
    flows_start: Mapping[str, list[tuple[float, float]]],
) -> float:
    end = sum(b[-1][1] for b in flows_end.values() if b)
    start = sum(b[-1][1] for b in flows_start.values() if b)
    return end - start
