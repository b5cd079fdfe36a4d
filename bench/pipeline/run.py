"""The full pipeline at increasing offered load: ``interlock up --simulate RATE --for S``.

For each worker count and offered rate, runs the whole stack (embedded broker, every service,
the simulated CRM and ERP) as a subprocess, scrapes every service's ``/metrics`` every couple
of seconds, and records the sustained events/s (counters over the steady part of the
generation window), the handoff latency p50/p99 per flow (from the histogram buckets), and the
lag at the end of the generation and whether it grew. Writes bench/results/pipeline.json.

    python -m bench.pipeline.run [--rates 1000,2000,5000] [--workers 1,2] [--duration 60]
    python -m bench.pipeline.run --quick        # 200 and 500 events/s for 10 s
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.harness import broker_label, write_result
from interlock.settings import load_settings
from ops.simulator.invariants import check_orders
from ops.simulator.live import (
    MetricSample,
    Snapshot,
    histogram_quantile,
    lag_grew,
    parse_samples,
    take_snapshot,
)
from ops.simulator.truth import read_run

__all__ = ["main", "run_once", "stack_env", "start_stack", "steady_rate", "stop_stack"]

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "pipeline.json"
WORK = ROOT / ".interlock" / "bench" / "pipeline"
URL = re.compile(r"http://127\.0\.0\.1:\d+/metrics")


def steady_rate(points: Sequence[tuple[float, float]], start: float, end: float) -> float | None:
    """Counter increase per second between the samples nearest ``start`` and ``end``."""
    inside = [(t, v) for t, v in points if start <= t <= end]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


def _quantiles(buckets: list[tuple[float, float]]) -> dict[str, float | None]:
    return {"p50": histogram_quantile(0.5, buckets), "p99": histogram_quantile(0.99, buckets)}


def _merge(per_flow: dict[str, list[tuple[float, float]]]) -> list[tuple[float, float]]:
    total: dict[float, float] = {}
    for buckets in per_flow.values():
        for le, count in buckets:
            total[le] = total.get(le, 0.0) + count
    return sorted(total.items())


def stack_env(run_dir: Path) -> dict[str, str]:
    """The environment of a measured ``interlock up``: wide output, warnings only, its own data."""
    env = {**os.environ, "COLUMNS": "400", "INTERLOCK_LOG_LEVEL": "WARNING"}
    env["INTERLOCK_PROCESSORS__DATA_DIR"] = str(run_dir / "faust")
    return env


def start_stack(
    run_dir: Path, env: dict[str, str], rate: float, duration: float, drain: float, *options: str
) -> subprocess.Popen[str]:
    """Start ``interlock up --simulate`` in ``run_dir``, in its own session, output piped."""
    argv = [sys.executable, "-m", "interlock.cli", "up", "--simulate", f"{rate:g}",
            "--for", f"{duration:g}", "--drain", f"{drain:g}", *options,
            "--log-dir", str(run_dir / "logs"), "--metrics-port", "0"]  # fmt: skip
    return subprocess.Popen(
        argv, cwd=run_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip


def stop_stack(proc: subprocess.Popen[str]) -> None:
    """Stop a stack still running, with its whole session (the stack's own children too)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)


class _Output:
    """Collects the metrics URLs that ``interlock up`` prints, keeps the rest for errors."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.urls: dict[str, str] = {}
        self.tail: list[str] = []
        self._proc = proc
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.tail = [*self.tail[-40:], line.rstrip()]
            for url in URL.findall(line):
                label = line.split("http://")[0].strip(" │|┃")
                self.urls.setdefault(url, label)


def discard_state(run_dir: Path) -> None:
    """Remove a stopped stack's broker data and worker tables (hundreds of MB per run, which
    filled the disk over a day of runs); keep its logs, the broker's own log among them (moved
    to ``logs/<dir>-<name>``), and ``simulation.json``."""
    logs = run_dir / "logs"
    for path in run_dir.iterdir():
        if path.is_dir() and path != logs:
            for log in path.glob("*.log"):
                logs.mkdir(exist_ok=True)
                log.replace(logs / f"{path.name}-{log.name}")
            shutil.rmtree(path, ignore_errors=True)


def run_once(
    rate: float, workers: int, duration: float, drain: float, interval: float
) -> dict[str, Any]:
    """One ``interlock up --simulate`` run; its rates, latency and lag."""
    run_dir = WORK / f"w{workers}-r{rate:g}-{uuid.uuid4().hex[:6]}"
    run_dir.mkdir(parents=True, exist_ok=True)
    env = stack_env(run_dir)
    proc = start_stack(run_dir, env, rate, duration, drain, "--workers", str(workers))
    out = _Output(proc)
    series: list[tuple[float, Snapshot, float]] = []
    started = time.monotonic()
    deadline = started + duration + drain + 240
    with httpx.Client() as client:
        while proc.poll() is None and time.monotonic() < deadline:
            at = time.monotonic() - started
            samples, worker = _scrape(client, out.urls)
            if samples:
                series.append((at, take_snapshot(samples, at), worker))
            time.sleep(interval)
    stop_stack(proc)
    discard_state(run_dir)
    result: dict[str, Any] = {
        "workers": workers,
        "offered_per_s": rate,
        "exit_code": proc.returncode,
    }
    if not series or proc.returncode != 0:
        result["error"] = f"exit {proc.returncode}; " + " / ".join(out.tail[-5:])
        if not series:
            return result
    sent, orders = ground_truth(run_dir / "simulation.json")
    first = next((t for t, s, _ in series if s.consumed > 0), series[0][0])
    window = (first + 0.25 * duration, first + duration)
    gen = [(t, s) for t, s, _ in series if t <= window[1]]
    last = series[-1][1]
    flows = _latest_buckets([s for _, s, _ in series])
    result.update(
        {
            "sent": sent,
            "sent_per_s": sent / duration if sent else None,
            "orders": orders,
            "consumed_per_s": steady_rate([(t, s.consumed) for t, s, _ in series], *window),
            "produced_per_s": steady_rate([(t, s.produced) for t, s, _ in series], *window),
            "worker_consumed_per_s": steady_rate([(t, w) for t, _, w in series], *window),
            "latency": {f: _quantiles(b) for f, b in flows.items()},
            "latency_all": _quantiles(_merge(flows)),
            "lag_end": gen[-1][1].lag_messages if gen else None,
            "lag_after_drain": last.lag_messages,
            "lag_grew": lag_grew([(t, s.lag_messages) for t, s in gen], 0.8 * duration),
            "dead_letters": dict(last.dead_letters),
            "metrics_urls": out.urls,
            "series": [[round(t, 1), s.consumed, s.produced, w, s.lag_messages]
                       for t, s, w in series],
        }
    )  # fmt: skip
    return result


def ground_truth(path: Path) -> tuple[int | None, dict[str, int] | None]:
    """From the simulator's run file: the events it sent, and the quotes its CRM expects an ERP
    order for beside those the fake ERP made one for by the end of the drain (the run's
    ``orders_complete`` invariant, without the cases a person holds: the stack is gone, so its
    topics are not read); None without a run file."""
    if not path.exists():
        return None, None
    meta, truth, recorded = read_run(path)
    complete = next(r for r in check_orders(truth, recorded) if r.name == "orders_complete")
    return meta.get("sent"), {"expected": complete.expected, "created": complete.actual}


def _latest_buckets(snapshots: Sequence[Snapshot]) -> dict[str, list[tuple[float, float]]]:
    """Per flow, the fullest cumulative histogram seen (services stop one by one at the end)."""
    best: dict[str, list[tuple[float, float]]] = {}
    for snap in snapshots:
        for flow, buckets in snap.buckets.items():
            if not best.get(flow) or buckets[-1][1] >= best[flow][-1][1]:
                best[flow] = buckets
    return best


def _scrape(client: httpx.Client, urls: dict[str, str]) -> tuple[list[MetricSample], float]:
    samples: list[MetricSample] = []
    worker = 0.0
    for url, label in list(urls.items()):
        try:
            response = client.get(url, timeout=2.0)
            response.raise_for_status()
        except httpx.HTTPError:
            continue
        got = parse_samples(response.text)
        samples += got
        if label.startswith("worker"):
            worker += sum(s.value for s in got if s.name == "interlock_events_consumed_total")
    return samples, worker


def _store() -> str:
    """The workers' table store in these runs (`up` keeps it in memory on the embedded broker)."""
    settings = load_settings()
    return (settings.with_embedded_state() if settings.embedded else settings).processors.store


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--rates", default="1000,2000,5000", help="offered events/s, comma-separated"
    )
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per load")
    parser.add_argument("--drain", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=2.0, help="scrape interval (s)")
    parser.add_argument("--quick", action="store_true", help="200 and 500 events/s for 10 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.rates, args.duration, args.drain, args.interval = "200,500", 10.0, 5.0, 1.0
    rates = [float(r) for r in args.rates.split(",")]
    workers = [int(w) for w in args.workers.split(",")]
    runs = []
    for w in workers:
        for rate in rates:
            print(f"-- {w} worker(s) at {rate:g} events/s for {args.duration:g} s", flush=True)
            r = run_once(rate, w, args.duration, args.drain, args.interval)
            runs.append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "series"}), flush=True)
    report = {"benchmark": "pipeline", "duration_s": args.duration, "drain_s": args.drain,
              "quick": args.quick, "broker": broker_label(),
              "store": _store(), "runs": runs}  # fmt: skip
    write_result(RESULTS, report)
    from bench.sections.stack import pipeline_section

    print(pipeline_section(report).markdown())


if __name__ == "__main__":
    main()
