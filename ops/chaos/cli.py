"""``interlock chaos``: the fault suite, case by case, with a report."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

__all__ = ["chaos_command"]

console = Console()


def chaos_command(
    case: Annotated[
        list[str] | None,
        typer.Option(help="Run only this case (repeatable; default: every case)."),
    ] = None,
    quick: Annotated[bool, typer.Option(help="Only the short subset that make test runs.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the fault moments and of the load.")] = 7,
    rate: Annotated[float, typer.Option(help="Simulated events per second.")] = 100.0,
    out: Annotated[Path, typer.Option(help="Where chaos.json and CHAOS.md go.")] = Path(
        "bench/results"
    ),
    keep: Annotated[
        bool, typer.Option(help="Keep each run's directory (logs, ground truth).")
    ] = False,
) -> None:
    """Run `interlock up --simulate … --check` once per fault case, the fault injected at a
    seeded moment, and report every invariant, recovery time and lost or doubled order."""
    from ops.chaos.cases import QUICK, plan, select
    from ops.chaos.report import write_report
    from ops.chaos.runner import run_case

    try:
        cases = select(list(QUICK) if quick else case)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--case") from exc
    root = Path(tempfile.mkdtemp(prefix="interlock-chaos-"))
    outcomes = []
    try:
        for planned in plan(cases, seed):
            console.print(f"[bold]{planned.case.name}[/]: {planned.case.description}")
            outcome = run_case(
                planned, root / planned.case.name, rate, log=lambda m: console.print(m, style="dim")
            )
            verdict = "[green]held[/]" if outcome.held else "[red]failed[/]"
            console.print(
                f"  {verdict}: {sum(i['passed'] for i in outcome.invariants)}/"
                f"{len(outcome.invariants)} invariants, lost {outcome.orders_lost}, doubled "
                f"{outcome.orders_duplicated}, recovered after {outcome.recovery_s} s "
                f"{outcome.note}"
            )
            outcomes.append(outcome)
    finally:
        if keep:
            console.print(f"runs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    page = write_report(outcomes, out, seed, rate)
    console.print(f"report: {page}")
    if not all(o.held for o in outcomes):
        raise typer.Exit(1)
