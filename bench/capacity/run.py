"""Capacity of the stack: the highest ``up --simulate`` rate it keeps up with, on Kafka and Tansu.

For each embedded broker (Apache Kafka, then Tansu, same run), a short search over offered
rates: from ``--start`` (Tansu: from Kafka's highest rate kept up divided by 1.5), doubling
while a rate passes, then bisecting between the highest that passed and the lowest that
failed, until ``--runs`` runs or the broker's share of ``--budget`` seconds is spent. A rate
passes when the simulator sent at least 95% of it, the handoff p99 over the steady window is
under 1 s and the lag did not grow. Each run reports the CPU of every service (the simulator
and the broker included) in µs per action, and where the machine's cores went. Writes
bench/results/capacity.json.

    python -m bench.capacity.run [--brokers kafka,tansu] [--start 1000] [--runs 4]
        [--duration 25] [--budget 480]
    python -m bench.capacity.run --quick      # one 10 s run at 200/s per broker
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from bench.capacity.stack import BrokerKind, run_stack
from bench.harness import write_result

__all__ = ["LATENCY_LIMIT_S", "SENT_SHARE", "first_rate", "next_rate", "passed", "search"]

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "capacity.json"
LATENCY_LIMIT_S = 1.0
SENT_SHARE = 0.95
"""A run counts only if the simulator got this share of the asked rate out."""
RESOLUTION = 0.15
"""The search stops once the gap between a pass and a fail is below this share of the pass."""
MIN_RATE = 50.0
RATIO_TARGET = 1.5
"""The issue's target for the first broker (Kafka) against the second (Tansu)."""


def passed(run: dict[str, Any]) -> tuple[bool, str]:
    """Whether the stack kept up at this run's rate, and why (not)."""
    if run.get("error"):
        return False, "failed: " + str(run["error"])[:160]
    why = []
    sent = run.get("sent_per_s")
    if sent is None or sent < SENT_SHARE * run["offered_per_s"]:
        why.append(f"simulator sent {sent or 0:,.0f}/s of {run['offered_per_s']:,.0f}/s")
    p99 = (run.get("handoff") or {}).get("p99")
    if p99 is None:
        why.append("no handoff recorded in the window")
    elif p99 >= LATENCY_LIMIT_S:
        why.append(f"handoff p99 {p99:.2f} s")
    if run.get("lag_grew"):
        why.append("lag grew")
    return not why, "; ".join(why) or "kept up"


def next_rate(passes: Sequence[float], fails: Sequence[float]) -> float | None:
    """The next rate to try: double past the best pass, bisect once a fail is above it."""
    best = max(passes, default=None)
    above = min((f for f in fails if best is None or f > best), default=None)
    if best is None:
        rate = (above or 0.0) / 2
        return rate if rate >= MIN_RATE else None
    if above is None:
        return best * 2
    if (above - best) / best < RESOLUTION:
        return None
    return round((best + above) / 2, -1)


def first_rate(done: Sequence[dict[str, Any]], start: float) -> float:
    """A later broker's first rate: the first broker's highest rate kept up / ``RATIO_TARGET``.

    That first run tells whether the second broker reaches the first one's rate divided by
    the target (the ratio of the rates found is then at most the target) or not (above it);
    the rest of the search narrows the rate down.
    """
    best = done[0].get("best_offered_per_s") if done else None
    return max(MIN_RATE, round(best / RATIO_TARGET, -1)) if best else start


def search(
    broker: BrokerKind, start: float, runs: int, budget_s: float, duration: float, drain: float
) -> dict[str, Any]:
    """The search on one broker: every run, the highest rate that passed and the lowest fail."""
    began = time.monotonic()
    done: list[dict[str, Any]] = []
    rate: float | None = start
    while rate is not None and len(done) < runs:
        print(f"-- {broker} at {rate:g} actions/s for {duration:g} s", flush=True)
        run = run_stack(broker, rate, duration, drain=drain)
        ok, why = passed(run)
        run.update(passed=ok, verdict=why)
        done.append(run)
        brief = {k: v for k, v in run.items() if k not in ("cpu", "handoff_by_flow")}
        print(json.dumps(brief), flush=True)
        spent = time.monotonic() - began
        if spent + max(r["wall_s"] for r in done) > budget_s:
            break
        rate = next_rate(
            [r["offered_per_s"] for r in done if r["passed"]],
            [r["offered_per_s"] for r in done if not r["passed"]],
        )
    passes = [r for r in done if r["passed"]]
    best = max(passes, key=lambda r: r["offered_per_s"], default=None)
    fails = [r["offered_per_s"] for r in done if not r["passed"]]
    above = [f for f in fails if best is None or f > best["offered_per_s"]]
    return {
        "broker": broker,
        "runs": done,
        "best_offered_per_s": best["offered_per_s"] if best else None,
        "best_sent_per_s": best.get("sent_per_s") if best else None,
        "lowest_fail_per_s": min(above, default=None),
        "seconds": round(time.monotonic() - began, 1),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--brokers", default="kafka,tansu", help="embedded brokers, in order")
    parser.add_argument("--start", type=float, default=1000.0, help="first rate, actions/s")
    parser.add_argument("--runs", type=int, default=4, help="most runs per broker")
    parser.add_argument("--duration", type=float, default=25.0, help="seconds of load per run")
    parser.add_argument("--drain", type=float, default=5.0)
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for all brokers")
    parser.add_argument("--quick", action="store_true", help="one 10 s run at 200/s per broker")
    args = parser.parse_args(argv)
    # bench.run stops a benchmark that runs over its time with SIGTERM: unwind, stopping the stack
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.quick:
        args.start, args.runs, args.duration, args.drain = 200.0, 1, 10.0, 3.0
    brokers = [cast(BrokerKind, b.strip()) for b in args.brokers.split(",") if b.strip()]
    searches: list[dict[str, Any]] = []
    for n, broker in enumerate(brokers):
        left = args.budget - sum(s["seconds"] for s in searches)
        share = left / (len(brokers) - n)
        start = first_rate(searches, args.start) if not args.quick else args.start
        searches.append(search(broker, start, args.runs, share, args.duration, args.drain))
    by = {s["broker"]: s for s in searches}
    kafka, tansu = by.get("kafka", {}), by.get("tansu", {})
    ratio = None
    if kafka.get("best_sent_per_s") and tansu.get("best_sent_per_s"):
        ratio = round(kafka["best_sent_per_s"] / tansu["best_sent_per_s"], 3)
    report = {
        "benchmark": "capacity",
        "quick": args.quick,
        "duration_s": args.duration,
        "drain_s": args.drain,
        "start_per_s": args.start,
        "ratio_target": RATIO_TARGET,
        "max_runs": args.runs,
        "budget_s": args.budget,
        "latency_limit_s": LATENCY_LIMIT_S,
        "sent_share": SENT_SHARE,
        "cpus": os.cpu_count(),
        "searches": searches,
        "kafka_vs_tansu": ratio,
    }
    write_result(RESULTS, report)
    from bench.sections import capacity_section

    print(capacity_section(report).markdown())


if __name__ == "__main__":
    main()
