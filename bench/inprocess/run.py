"""Benchmark the Pipeline's cost per quote in process: this tree beside the baseline revision.

Both figures come from the same run: the baseline revision is checked out in a temporary git
worktree and ``bench/inprocess/loop.py`` runs against each tree in turn (``PYTHONPATH`` picks
whose ``processors`` and ``contracts`` it imports), alternated over ``--rounds``. Each run
handles accounts, then accepted quotes of 2 to 5 lines with a share of redeliveries, and reads
every command back as the worker does; the figure is the median µs per quote record of several
repeats after a warm-up. No broker: only the Pipeline's own work is measured.

Beside the CPU times, the instructions per quote record of each tree, counted by callgrind
(valgrind) on a smaller run: a count does not move with the host's speed or with what else runs
on it, so it shows what a change did to the code's work where the times only show it within the
host's noise. Instructions are not time (a cache miss or a branch costs cycles a count does not
show), so the target stays on the times.

The ratio compares each tree's best repeat over every round (the lowest CPU time per quote), as
``timeit`` advises: on a shared host a slower repeat is another process's interference, not the
code's cost, and the same burst's median moved by a quarter between rounds of one run. The
medians are kept beside it.

Results: ``bench/results/inprocess.json``.

    python -m bench.inprocess.run [--quotes N] [--repeats R] [--rounds K] [--quick]
        [--profile-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.harness import write_result  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "inprocess.json"
LOOP = Path(__file__).resolve().parent / "loop.py"
BASELINE_REV = "eedb3ce"
"""The revision before the work on the cost per quote (issue #28): the Pipeline it is held to."""


@contextmanager
def baseline_tree(rev: str) -> Iterator[Path]:
    """A detached worktree of ``rev``, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="interlock-baseline-")) / "tree"
    git = ["git", "-C", str(ROOT), "worktree"]
    subprocess.run([*git, "add", "--detach", str(path), rev], check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run([*git, "remove", "--force", str(path)], check=False, capture_output=True)
        path.parent.rmdir()


def run_loop(tree: Path, argv: Sequence[str]) -> dict[str, Any]:
    """Run the loop against ``tree``'s packages; its JSON line."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, str(LOOP), *argv], cwd=tree, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"loop failed on {tree}:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


COUNTED = "_operator_call"
"""The C function of ``operator.call``, through which the loop runs its measured feeds (and
nothing else): callgrind counts only inside it."""
INSTRUCTION_QUOTES, INSTRUCTION_ACCOUNTS, INSTRUCTION_REPEATS = 300, 50, 2
"""The loop's size under callgrind, which runs it some fifty times slower."""


def count_instructions(
    tree: Path,
    quotes: int = INSTRUCTION_QUOTES,
    accounts: int = INSTRUCTION_ACCOUNTS,
    repeats: int = INSTRUCTION_REPEATS,
) -> tuple[float, int]:
    """(instructions per quote record, quote records per repeat) of the loop against ``tree``'s
    packages: callgrind counts only inside the measured feeds (:data:`COUNTED`), so start-up,
    imports, the warm-up and each repeat's accounts are left out, as from the timed figure;
    the hash seed is fixed, so the same code and input count the same."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         "--collect-atstart=no", f"--toggle-collect={COUNTED}", sys.executable, str(LOOP),
         f"--quotes={quotes}", f"--accounts={accounts}", f"--repeats={repeats}"],
        cwd=tree, env=env, capture_output=True, text=True,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind failed on {tree}:\n{done.stderr[-3000:]}")
    records = int(json.loads(done.stdout.strip().splitlines()[-1])["records"])
    return int(found.group(1)) / (repeats * records), records


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quotes", type=int, default=5000)
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5, help="baseline/new runs, alternated")
    parser.add_argument("--baseline-rev", default=BASELINE_REV)
    parser.add_argument("--profile-dir", type=Path, help="write each tree's cProfile here")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--no-instructions", action="store_true",
                        help="skip the instruction counts (callgrind, some minutes)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.quotes, args.repeats, args.rounds = 1000, 3, 1
        args.no_instructions = True
    loop_args = [f"--quotes={args.quotes}", f"--accounts={args.accounts}",
                 f"--repeats={args.repeats}"]  # fmt: skip
    figures: dict[str, list[float]] = {"baseline": [], "new": []}
    repeats: dict[str, list[float]] = {"baseline": [], "new": []}
    last: dict[str, dict[str, Any]] = {}
    with baseline_tree(args.baseline_rev) as base:
        for i in range(args.rounds):
            for name, tree in (("baseline", base), ("new", ROOT)):
                extra = []
                if args.profile_dir is not None and i == 0:
                    args.profile_dir.mkdir(parents=True, exist_ok=True)
                    extra = [f"--profile={(args.profile_dir / f'{name}.prof').resolve()}"]
                last[name] = run_loop(tree, [*loop_args, *extra])
                figures[name].append(last[name]["us_per_quote"])
                repeats[name].extend(last[name]["us_per_quote_all"])
                print(f"round {i + 1} {name}: {last[name]['us_per_quote']:.1f} µs/quote "
                      f"(best {min(last[name]['us_per_quote_all']):.1f})", flush=True)  # fmt: skip
        instructions: dict[str, Any] = {}
        if args.no_instructions:
            instructions["skipped"] = "--no-instructions"
        elif shutil.which("valgrind") is None:
            instructions["skipped"] = "valgrind is not installed (make bench-tools)"
        else:
            with ThreadPoolExecutor(2) as pool:  # a process per core
                found = pool.map(count_instructions, (base, ROOT))
                counts = dict(zip(("baseline", "new"), found, strict=True))
            for name, (per_record, _) in counts.items():
                instructions[name] = round(per_record)
                print(f"{name}: {per_record:,.0f} instructions per quote record", flush=True)
            instructions.update(
                quotes=INSTRUCTION_QUOTES,
                accounts=INSTRUCTION_ACCOUNTS,
                repeats=INSTRUCTION_REPEATS,
                records=counts["new"][1],
                ratio=round(instructions["new"] / instructions["baseline"], 3),
            )
    baseline_us, new_us = min(repeats["baseline"]), min(repeats["new"])
    baseline_median = statistics.median(figures["baseline"])
    new_median = statistics.median(figures["new"])
    result = {
        "baseline_rev": args.baseline_rev,
        "quotes": args.quotes,
        "records": last["new"]["records"],
        "duplicates": last["new"]["duplicates"],
        "accounts": args.accounts,
        "repeats": args.repeats,
        "rounds": args.rounds,
        "baseline_us_per_quote": round(baseline_us, 2),
        "new_us_per_quote": round(new_us, 2),
        "estimator": "best repeat of every round",
        "baseline_median_us_per_quote": round(baseline_median, 2),
        "new_median_us_per_quote": round(new_median, 2),
        "speedup_of_medians": round(baseline_median / new_median, 3),
        "baseline_rounds": [round(x, 2) for x in figures["baseline"]],
        "new_rounds": [round(x, 2) for x in figures["new"]],
        "baseline_outputs_per_quote": round(last["baseline"]["outputs_per_quote"], 3),
        "new_outputs_per_quote": round(last["new"]["outputs_per_quote"], 3),
        "speedup": round(baseline_us / new_us, 3),
        "instructions_per_quote": instructions,
    }
    write_result(RESULTS, result)
    medians = f"{baseline_median:.1f} and {new_median:.1f}: {baseline_median / new_median:.2f}x"
    print(f"baseline {args.baseline_rev}: {baseline_us:.1f} µs/quote; this tree: {new_us:.1f} "
          f"µs/quote (best repeats); {baseline_us / new_us:.2f}x; medians {medians}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
