"""Capacity of the stack: the highest ``up --simulate`` rate it keeps up with, on Kafka and Tansu.

For each embedded broker (Apache Kafka and Tansu, same run), a short search over offered
rates: from ``--start``, by default the target rate itself (Tansu: from Kafka's highest rate
kept up divided by 1.5), doubling
while a rate passes, halving while every rate tried failed (down to ``MIN_RATE``), then
bisecting between the highest that passed and the lowest that failed. The brokers' searches
are interleaved: each next run goes to the broker whose bracket (lowest fail over highest pass)
is widest (on a tie, to the one with fewer runs), so that both capacities are known to the
same resolution when ``--budget`` is spent (no run starts that would not fit, as long as the
longest so far), each broker stops at
``--runs`` runs or once its bracket is narrower than ``RESOLUTION``. A search that took its
share one broker after the other left the first broker a coarse bracket and gave the rest of
the budget to the second, and the ratio of their highest passes compared two resolutions.
Runs are bounded: a run is stopped ``SETTLE_S`` after its drain. Every run starts a fresh
stack and broker, and generates for ``--warmup`` seconds before its measured ``--window``
(``bench.capacity.stack``); both brokers get the same warm-up and window. A rate passes when
the simulator sent at least 95% of it, the handoff p99 over the window is under 1 s and no
backlog built up (``bench.capacity.criteria``). Each run reports the CPU of every service (the
simulator and the broker included) in µs per action, where the machine's cores went, and the
host's speed probe taken just before it, once the machine's cores were quiet after the run
before (``bench.quote_to_order.bursts.settle``: a stopped stack's broker may still be flushing).
Writes bench/results/capacity.json.

    python -m bench.capacity.run [--brokers kafka,tansu] [--start 1000] [--runs 6]
        [--warmup 50] [--window 15] [--budget 800]
    python -m bench.capacity.run --quick      # one 10 s run at 200/s per broker
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

from bench.capacity.criteria import LATENCY_LIMIT_S, SENT_SHARE, passed
from bench.capacity.stack import BrokerKind, run_stack
from bench.harness import write_result
from bench.quote_to_order.bursts import settle
from bench.sections.targets import CAPACITY_TARGET

__all__ = ["MIN_RATE", "Search", "first_rate", "next_rate", "pick", "search", "time_left", "width"]

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "capacity.json"
RESOLUTION = 0.15
"""The search stops once the gap between a pass and a fail is below this share of the pass."""
MIN_RATE = 25.0
"""The search halves a failing rate down to this floor, no lower."""
RATIO_TARGET = 1.5
"""The issue's target for the first broker (Kafka) against the second (Tansu)."""


def next_rate(passes: Sequence[float], fails: Sequence[float]) -> float | None:
    """The next rate to try: double past the best pass, halve the lowest fail while nothing
    passed (down to :data:`MIN_RATE`), bisect once a fail is above a pass."""
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


def time_left(spent: float, walls: Sequence[float], budget_s: float) -> bool:
    """Whether one more run, as long as the longest in ``walls``, fits in ``budget_s`` seconds
    after ``spent``."""
    return spent + max(walls, default=0.0) <= budget_s


def width(passes: Sequence[float], fails: Sequence[float]) -> float:
    """How far a search is from its answer: the lowest fail above the highest pass over that
    pass (infinite while either is missing)."""
    best = max(passes, default=None)
    above = min((f for f in fails if best is None or f > best), default=None)
    if best is None or above is None:
        return math.inf
    return (above - best) / best


class Search:
    """The runs of one broker and the rate it would try next."""

    def __init__(self, broker: BrokerKind, start: float, runs: int) -> None:
        self.broker = broker
        self.start = start
        self.most = runs
        self.done: list[dict[str, Any]] = []

    def _rates(self, passed: bool) -> list[float]:
        return [r["offered_per_s"] for r in self.done if r["passed"] is passed]

    def next_rate(self) -> float | None:
        if len(self.done) >= self.most:
            return None
        if not self.done:
            return self.start
        return next_rate(self._rates(True), self._rates(False))

    def width(self) -> float:
        return width(self._rates(True), self._rates(False))

    def summary(self) -> dict[str, Any]:
        """Its runs, the highest rate that passed, the lowest fail above it, its runs' time."""
        passes = [r for r in self.done if r["passed"]]
        best = max(passes, key=lambda r: r["offered_per_s"], default=None)
        above = [f for f in self._rates(False) if best is None or f > best["offered_per_s"]]
        return {
            "broker": self.broker,
            "runs": self.done,
            "best_offered_per_s": best["offered_per_s"] if best else None,
            "best_sent_per_s": best.get("sent_per_s") if best else None,
            "lowest_fail_per_s": min(above, default=None),
            "floor_per_s": MIN_RATE,
            "seconds": round(sum(r["wall_s"] for r in self.done), 1),
        }


def pick(searches: Sequence[Search]) -> Search | None:
    """The search the next run goes to: the widest bracket that still has a rate to try; on a
    tie the one with fewer runs, then the first broker (and first of all: a later broker's first
    rate follows from it). Brackets tie while both searches are still doubling (both infinitely
    wide): they take turns then too, or the first broker would keep the turn until its first
    fail and spend the budget on its doubling."""
    ready = [s for s in searches if s.next_rate() is not None]
    if not ready:
        return None
    if not searches[0].done and searches[0] in ready:
        return searches[0]
    return max(ready, key=lambda s: (s.width(), -len(s.done), -searches.index(s)))


def search(
    brokers: Sequence[BrokerKind],
    start: float,
    runs: int,
    budget_s: float,
    warmup: float,
    window: float,
    drain: float,
    *,
    follow: bool = True,
    clock: Callable[[], float] = time.monotonic,
    quiet: Callable[[], dict[str, float]] = settle,
) -> list[dict[str, Any]]:
    """The interleaved searches: each broker's runs, highest rate that passed and lowest fail.

    With ``follow``, a later broker's first rate is the first broker's highest rate kept up by
    then divided by ``RATIO_TARGET`` (see :func:`first_rate`); else every broker starts at
    ``start``.
    """
    began = clock()
    searches = [Search(b, start, runs) for b in brokers]
    while time_left(clock() - began, [r["wall_s"] for s in searches for r in s.done], budget_s):
        chosen = pick(searches)
        if chosen is None:
            break
        if follow and not chosen.done and chosen is not searches[0]:
            chosen.start = first_rate([searches[0].summary()], start)
        rate = chosen.next_rate()
        assert rate is not None
        print(f"-- {chosen.broker} at {rate:g} actions/s: {warmup:g} s warm-up, {window:g} s "
              "window", flush=True)  # fmt: skip
        # the last run's stack has stopped, but its broker's and stores' files may still be
        # flushing: wait for quiet cores, then take the host's speed probe
        waited = quiet()
        run = run_stack(chosen.broker, rate, warmup, window, drain=drain)
        ok, why = passed(run)
        run.update(passed=ok, verdict=why, probe_ms=waited["probe_ms"], settled=waited)
        chosen.done.append(run)
        brief = {k: v for k, v in run.items() if k not in ("cpu", "handoff_by_flow")}
        print(json.dumps(brief), flush=True)
    return [s.summary() for s in searches]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--brokers", default="kafka,tansu", help="embedded brokers, in order")
    # the target as the first rate: that one run says on which side of the target the stack is,
    # where a bracket from another start can straddle it (900 kept up, 1,050 not) and not say
    parser.add_argument(
        "--start", type=float, default=CAPACITY_TARGET.threshold, help="first rate, actions/s"
    )
    parser.add_argument("--runs", type=int, default=6, help="most runs per broker")
    parser.add_argument(
        "--warmup", type=float, default=50.0, help="seconds of load before the window"
    )
    parser.add_argument("--window", type=float, default=15.0, help="seconds measured per run")
    parser.add_argument("--drain", type=float, default=3.0)
    parser.add_argument("--budget", type=float, default=800.0, help="seconds for all brokers")
    parser.add_argument("--quick", action="store_true", help="one 10 s run at 200/s per broker")
    args = parser.parse_args(argv)
    # bench.run stops a benchmark that runs over its time with SIGTERM: unwind, stopping the stack
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.quick:
        args.start, args.runs, args.warmup, args.window, args.drain = 200.0, 1, 3.0, 7.0, 3.0
    brokers = [cast(BrokerKind, b.strip()) for b in args.brokers.split(",") if b.strip()]
    searches = search(
        brokers, args.start, args.runs, args.budget, args.warmup, args.window, args.drain,
        follow=not args.quick,
    )  # fmt: skip
    by = {s["broker"]: s for s in searches}
    kafka, tansu = by.get("kafka", {}), by.get("tansu", {})
    ratio = None
    if kafka.get("best_sent_per_s") and tansu.get("best_sent_per_s"):
        ratio = round(kafka["best_sent_per_s"] / tansu["best_sent_per_s"], 3)
    report = {
        "benchmark": "capacity",
        "quick": args.quick,
        "duration_s": args.warmup + args.window,
        "warmup_s": args.warmup,
        "window_s": args.window,
        "drain_s": args.drain,
        "start_per_s": args.start,
        "ratio_target": RATIO_TARGET,
        "floor_per_s": MIN_RATE,
        "max_runs": args.runs,
        "budget_s": args.budget,
        "search": "interleaved",
        "latency_limit_s": LATENCY_LIMIT_S,
        "sent_share": SENT_SHARE,
        "cpus": os.cpu_count(),
        "searches": searches,
        "kafka_vs_tansu": ratio,
    }
    write_result(RESULTS, report)
    from bench.sections.stack import capacity_section

    print(capacity_section(report).markdown())


if __name__ == "__main__":
    main()
