"""Run every benchmark in sequence, each in its own process, then write RESULTS.md and plots.

Each benchmark is a subprocess with a timeout that starts its own embedded broker (unless
KAFKA_BOOTSTRAP_SERVERS is set); one that fails or times out is recorded and the others still
run. ``--quick`` runs small sizes (a smoke test); ``--only serde,cdc`` runs a subset (the other
benchmarks keep their earlier results). With ``--results-dir`` other than bench/results, the
benchmarks' JSON is copied there and bench/results is left as it was.

    python -m bench.run [--only serde,cdc] [--quick] [--results-dir DIR]
        [--args pipeline="--duration 20 --rates 1000,2000"]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.capacity.processes import machine_times
from bench.report import ORDER, RESULTS_DIR, machine_info, write_results

__all__ = ["BENCHMARKS", "Benchmark", "main", "run_benchmark", "run_benchmarks"]

ROOT = Path(__file__).resolve().parents[1]
LOG_DIR = ROOT / ".interlock" / "bench" / "logs"


@dataclass(frozen=True)
class Benchmark:
    """A benchmark module, its arguments (full and quick), and its time limit in seconds."""

    name: str
    argv: list[str]
    quick: list[str] = field(default_factory=list)
    timeout_s: float = 900.0
    quick_timeout_s: float = 300.0


def _shown(path: Path) -> str:
    """``path`` relative to the checkout when it is inside it (results name no machine's paths)."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _module(name: str) -> list[str]:
    return [sys.executable, "-m", f"bench.{name}.run"]


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("serde", _module("serde"), ["--events", "1000", "--repeat", "1"], 300),
        Benchmark("webhooks", _module("webhooks"), ["--duration", "3"]),
        Benchmark("cdc", _module("cdc"), ["--rows", "5000"]),
        Benchmark(
            "quote_to_order",
            [*_module("quote_to_order"), "--compare-store", "memory://"],
            ["--quotes", "2000"],
            1200,
        ),
        Benchmark("inprocess", _module("inprocess"), ["--quick"], 900),
        Benchmark("quix", _module("quix"), ["--quotes", "2000"], 900),
        Benchmark("recovery", _module("recovery"), ["--quotes", "3000", "--restarts", "1"]),
        Benchmark("sweep", _module("sweep"), ["--sizes", "20000", "--repeat", "2"]),
        Benchmark("pipeline", _module("pipeline"), ["--quick"], 3600, 600),
        Benchmark("capacity", _module("capacity"), ["--quick"], 1200, 400),
        Benchmark("broker", _module("broker"), ["--sizes", "500,2000", "--rounds", "100"], 600),
    )
}


def run_benchmark(
    bench: Benchmark, quick: bool, extra: Sequence[str] = (), log_dir: Path = LOG_DIR
) -> dict[str, Any]:
    """Run one benchmark as a subprocess (own process group, killed whole on timeout)."""
    argv = [*bench.argv, *(bench.quick if quick else []), *extra]
    timeout = bench.quick_timeout_s if quick else bench.timeout_s
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{bench.name}.log"
    started = time.monotonic()
    record: dict[str, Any] = {"argv": argv[1:], "log": _shown(log_path), "quick": quick}
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            proc.wait(timeout)
            record["status"] = "ok" if proc.returncode == 0 else "failed"
            record["returncode"] = proc.returncode
        except subprocess.TimeoutExpired:
            record["status"] = "timeout"
            _kill_group(proc)
    record["seconds"] = round(time.monotonic() - started, 1)
    record["finished"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if record["status"] != "ok":
        record["error"] = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
    return record


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    """Stop the benchmark and everything it started (its own session), politely first."""
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_benchmarks(
    benches: Sequence[Benchmark],
    quick: bool,
    results_dir: Path = RESULTS_DIR,
    extra: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Run ``benches`` in order; record each one's status in ``results_dir``/run.json."""
    results_dir.mkdir(parents=True, exist_ok=True)
    run_file = results_dir / "run.json"
    saved = json.loads(run_file.read_text()) if run_file.exists() else {}
    runs: dict[str, Any] = saved.get("runs", {})
    machine = machine_info()
    began, times = time.monotonic(), machine_times()
    separate = results_dir.resolve() != RESULTS_DIR.resolve()
    for bench in benches:
        own = RESULTS_DIR / f"{bench.name}.json"
        before = own.read_bytes() if separate and own.exists() else None
        if not separate:
            own.unlink(missing_ok=True)  # a failed run must not leave stale figures behind
        print(f"== {bench.name} ({'quick' if quick else 'full'})", flush=True)
        record = run_benchmark(bench, quick, (extra or {}).get(bench.name, ()))
        if separate:
            target = results_dir / f"{bench.name}.json"
            target.unlink(missing_ok=True)
            if own.exists() and record["status"] == "ok":
                shutil.copyfile(own, target)
            if before is not None:
                own.write_bytes(before)
            elif own.exists():
                own.unlink()
        runs[bench.name] = record
        print(f"   {record['status']} in {record['seconds']:.0f} s", flush=True)
        # cores the virtual machine's host took while the benchmarks ran (steal time)
        elapsed = max(time.monotonic() - began, 1e-9)
        machine["stolen_cores"] = round((machine_times().steal_s - times.steal_s) / elapsed, 2)
        run_file.write_text(json.dumps({"machine": machine, "runs": runs}, indent=2) + "\n")
    write_results(results_dir, runs, machine)
    return runs


def _parse_extra(items: Sequence[str]) -> dict[str, list[str]]:
    extra: dict[str, list[str]] = {}
    for item in items:
        name, _, args = item.partition("=")
        if name not in BENCHMARKS:
            raise SystemExit(f"--args: unknown benchmark {name!r}")
        extra.setdefault(name, []).extend(shlex.split(args))
    return extra


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(ORDER)}")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--args", action="append", default=[], metavar='NAME="ARGS"',
                        help="extra arguments for one benchmark (repeatable)")  # fmt: skip
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")] if args.only else ORDER
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(ORDER)}")
    runs = run_benchmarks(
        [BENCHMARKS[n] for n in names], args.quick, args.results_dir, _parse_extra(args.args)
    )
    print((args.results_dir / "RESULTS.md").read_text())
    failed = [n for n in names if runs[n]["status"] != "ok"]
    if failed:
        print(f"failed: {', '.join(failed)} (see {LOG_DIR})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
