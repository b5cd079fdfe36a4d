"""``interlock simulate``: play a mid-market company against a running stack; check invariants.

``interlock simulate --rate R --for S --seed N --webhooks-url URL --erp-port P --crm-port P
--ground-truth FILE`` runs the simulation (ground truth written at the end and every few
seconds); ``interlock simulate check --ground-truth FILE`` reads the topics and the recordings
and prints the invariants (exit 1 on any violation). ``--check`` does both in one go.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console

if TYPE_CHECKING:
    from interlock.settings import Settings
    from ops.simulator.drift import FindingSeen
    from ops.simulator.invariants import InvariantResult
    from ops.simulator.truth import Recorded

__all__ = ["run_check", "simulate_app"]

simulate_app = typer.Typer(
    help="Simulate a company's CRM and ERP against the stack; check the invariants.",
    invoke_without_command=True,
    pretty_exceptions_enable=False,
)
console = Console()


def run_check(settings: Settings, ground_truth: Path) -> list[InvariantResult]:
    """Read ground truth, recordings and topics; evaluate every invariant."""
    from contracts import decode
    from contracts.topics import dlq_topic, load_catalog
    from interlock.kafka import true_end_offsets
    from ops.simulator.invariants import check_invariants
    from ops.simulator.observed import read_observed
    from ops.simulator.truth import load_run

    truth, recorded = load_run(ground_truth)
    catalog = load_catalog()
    dlqs = sorted({dlq_topic(t.name) for t in catalog.topics if t.dead_letter})
    conf = settings.kafka.librdkafka()
    tansu = settings.kafka.tansu
    observed = read_observed(
        conf, dlqs, decode, lambda c, parts: true_end_offsets(c, parts, tansu=tansu)
    )
    if truth.drift:
        observed.findings = _worker_findings(settings, recorded)
    return check_invariants(truth, recorded, observed)


LAG_ALLOWANCE_S = 120.0
"""How long past the reconciliation SLAs the check waits for a worker that lags behind."""


def reconcile_hold_s(settings: Settings) -> float:
    """How long a drift run keeps its fakes after the drain: the longer reconciliation SLA,
    one scan of the worker, and a few seconds for the findings to be written."""
    p = settings.processors
    return max(p.reconcile_order_sla_s, p.reconcile_writeback_sla_s) + p.reconcile_interval_s + 5


def _worker_findings(settings: Settings, recorded: Recorded) -> list[FindingSeen]:
    """The worker's findings, once every injected case it can see is there and the SLAs of
    the last injection passed (or at a deadline: SLAs plus a lag allowance)."""
    from ops.simulator.drift import expected_findings
    from ops.simulator.findings import await_findings, read_findings, settle_times

    p = settings.processors
    expected = [e for e in expected_findings(recorded.drift_injected) if not e.api_only]
    not_before, deadline = settle_times(
        (c.at for c in recorded.drift_injected),
        max(p.reconcile_order_sla_s, p.reconcile_writeback_sla_s),
        p.reconcile_interval_s,
        LAG_ALLOWANCE_S,
    )
    conf = settings.kafka.librdkafka()

    def read() -> list[FindingSeen]:
        return read_findings(conf, p.topic_prefix)

    return await_findings(read, expected, not_before, deadline)


def _sweeper(settings: Settings) -> Callable[[str, str], dict[str, Any]]:
    """The simulator's sweep of its fakes: ``reconcile check --against-apis`` against them."""

    def sweep(erp_url: str, crm_url: str) -> dict[str, Any]:
        from ops.reconcile.apis import sweep_apis

        prefix = settings.processors.topic_prefix
        found, orders, deals = sweep_apis(settings, prefix, erp_url, crm_url)
        findings = [
            {"finding_id": f.finding_id, "kind": f.kind, "subject": f.subject,
             "details": dict(f.details)}
            for f in found
        ]  # fmt: skip
        return {"at": round(time.time(), 3), "orders": orders, "deals": deals, "findings": findings}

    return sweep


@simulate_app.callback()
def simulate(
    ctx: typer.Context,
    rate: Annotated[float, typer.Option(help="Events per second.")] = 50.0,
    duration: Annotated[
        float | None, typer.Option("--for", help="Seconds of generation (default: until Ctrl-C).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed: the same seed plays the same story.")] = 1,
    webhooks_url: Annotated[
        str, typer.Option(help="Base URL of the webhook receiver.")
    ] = "http://127.0.0.1:8080",
    erp_port: Annotated[int, typer.Option(help="Port of the fake ERP API (0: any).")] = 0,
    crm_port: Annotated[int, typer.Option(help="Port of the fake CRM API (0: any).")] = 0,
    ground_truth: Annotated[Path, typer.Option(help="Where the ground truth JSON goes.")] = Path(
        ".interlock/simulation.json"
    ),
    dialect: Annotated[
        str,
        typer.Option(help="CRM dialect: hubspot (v3 signatures) or standard (Standard Webhooks)."),
    ] = "hubspot",
    source: Annotated[str, typer.Option(help="Standard Webhooks source name.")] = "acme",
    drain: Annotated[float, typer.Option(help="Seconds to keep the fakes running after.")] = 20.0,
    drain_grace: Annotated[
        float, typer.Option(help="Up to this much longer while the sinks still call the fakes.")
    ] = 90.0,
    unavailable: Annotated[float, typer.Option(help="Fraction of ERP calls answered 503.")] = 0.05,
    check: Annotated[bool, typer.Option(help="Check the invariants after the run.")] = False,
    drift: Annotated[
        bool,
        typer.Option(
            help="Inject reconciliation drift at seeded moments (an ERP order edited, deleted or "
            "keyed in by hand, a CRM write-back lost, a deal deleted): --check then proves "
            "reconciliation found exactly it. Holds the fakes until its SLAs pass."
        ),
    ] = False,
    drift_every: Annotated[
        int, typer.Option(min=1, help="With --drift: one case per this many quotes, on average.")
    ] = 6,
    decide: Annotated[
        bool | None,
        typer.Option(
            help="Decide the run's exception-desk cases by a policy seeded with --seed (approve, "
            "reject with a reason, link), while it generates (default: with --check)."
        ),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="A scheduled outage of a fake API, TARGET:STATUS:SECONDS@START: from START "
            "seconds after the start, for SECONDS, every call gets STATUS (e.g. erp:429:60@20; "
            "TARGET erp or crm; STATUS 429, 500, 502 or 503; 429 and 503 with Retry-After). "
            "Repeatable."
        ),
    ] = None,
    erp_dsn: Annotated[
        str | None,
        typer.Option(
            help="libpq DSN of a PostgreSQL ERP database (the sample schema): the ERP's row "
            "changes go there as SQL, for change data capture to read, instead of to Kafka."
        ),
    ] = None,
) -> None:
    """Run the simulation (subcommand ``check`` evaluates a finished run)."""
    if ctx.invoked_subcommand is not None:
        return
    from interlock.collector import tune_collector
    from interlock.commandline import stack_settings
    from interlock.kafka import make_producer
    from ops.simulator.drift import DriftMix
    from ops.simulator.fake_erp import ErpTimings
    from ops.simulator.outage import parse_outage
    from ops.simulator.runner import SimulationConfig, Simulator

    settings = stack_settings()
    if settings.embedded:
        console.print("[red]No Kafka configured.[/] Set INTERLOCK_KAFKA__BOOTSTRAP_SERVERS.")
        raise typer.Exit(2)
    if dialect not in ("hubspot", "standard"):
        raise typer.BadParameter("dialect must be hubspot or standard")
    chosen: Literal["hubspot", "standard"] = "hubspot" if dialect == "hubspot" else "standard"
    try:
        outages = tuple(parse_outage(spec) for spec in fault or ())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fault") from exc
    hooks = settings.webhooks
    secret_value = (
        hooks.hubspot.client_secret if chosen == "hubspot" else hooks.standard.secrets.get(source)
    )
    if secret_value is None:
        console.print(f"[red]No webhook secret configured for {chosen}[/] (see README, webhooks).")
        raise typer.Exit(2)
    app_id = hooks.hubspot.app_id or "interlock"
    if hooks.hubspot.app_id is None:
        console.print(
            "[yellow]INTERLOCK_WEBHOOKS__HUBSPOT__APP_ID is unset: echoes carry "
            "sourceId 'interlock', which the mapping cannot recognise.[/]"
        )
    config = SimulationConfig(
        rate=rate,
        duration_s=duration,
        seed=seed,
        webhooks_url=webhooks_url,
        secret=secret_value.get_secret_value(),
        ground_truth=ground_truth,
        dialect=chosen,
        source=source,
        app_id=app_id,
        erp_port=erp_port,
        crm_port=crm_port,
        cdc_prefix=settings.cdc.raw_topic_prefix,
        drain_s=drain,
        drain_grace_s=drain_grace,
        timings=ErpTimings(unavailable=unavailable),
        drift=DriftMix(every=drift_every) if drift else None,
        reconcile_hold_s=reconcile_hold_s(settings),
        outages=outages,
    )
    stop = threading.Event()
    abort = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        # Ctrl-C ends the generation and drains (a second one quits); SIGTERM, what a
        # supervisor sends, quits at once.
        if signum == signal.SIGTERM:
            abort.set()
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    erp_tables = None
    if erp_dsn:
        from ops.simulator.erp_postgres import ErpTables

        erp_tables = ErpTables(erp_dsn)
    deciding = check if decide is None else decide
    sim = Simulator(
        config,
        make_producer(settings),
        abort=abort,
        erp_tables=erp_tables,
        sweep=_sweeper(settings) if drift else None,
        review=settings.kafka.librdkafka() if deciding else None,
    )
    sim.start()
    console.print(
        f"fake ERP {sim.erp_server.url} · fake CRM {sim.crm_server.url} · "
        f"webhooks → {webhooks_url} · seed {seed} · {rate:g}/s"
        + (" · ERP rows into PostgreSQL" if erp_tables is not None else "")
        + (f" · drift injected, one case per {drift_every} quotes" if drift else "")
        + (" · cases decided by a seeded desk" if deciding else "")
    )
    tune_collector(settings.gc_young_threshold)
    try:
        sim.run(stop)
    finally:
        sim.close()
    summary = sim.scenario.truth.summary()
    console.print(f"sent {sim.sent} actions; ground truth {ground_truth}: {summary}")
    if check:
        _report(run_check(settings, ground_truth))


def _report(results: list[InvariantResult]) -> None:
    from ops.simulator.invariants import render_results

    render_results(results, console)
    if not all(r.passed for r in results):
        raise typer.Exit(1)


@simulate_app.command("check")
def check_command(
    ground_truth: Annotated[Path, typer.Option(help="Ground truth JSON of the run.")] = Path(
        ".interlock/simulation.json"
    ),
) -> None:
    """Evaluate the invariants of a finished run; exit 1 on any violation."""
    from interlock.commandline import stack_settings

    settings = stack_settings()
    if settings.embedded:
        console.print("[red]No Kafka configured.[/] Set INTERLOCK_KAFKA__BOOTSTRAP_SERVERS.")
        raise typer.Exit(2)
    _report(run_check(settings, ground_truth))
