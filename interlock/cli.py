"""The ``interlock`` command line: the composition root, the one place that wires every layer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.table import Table

from connectors.cdc.cli import cdc_app
from connectors.cdc.fastpath import compile_shipped_writers
from connectors.sinks.cli import sinks_command
from connectors.webhooks.cli import webhooks_command
from contracts.cli import also_generate
from contracts.cli import app as contracts_app
from contracts.topics import load_catalog
from interlock.commandline import (
    command_settings,
    exit_refused,
    require_kafka,
    stack_settings,
    stop_on_signals,
)
from interlock.kafka import KafkaAccessError
from interlock.logs import configure_logging
from ops.chaos.cli import chaos_command
from ops.dlq.cli import make_dlq_app
from ops.lag.cli import lag_exporter_command
from ops.reconcile.cli import make_reconcile_app
from ops.review.cli import make_review_app
from ops.review.console.cli import make_console_app
from ops.simulator.cli import simulate_app
from ops.simulator.send import send_app
from processors.trace import make_trace_command

__all__ = ["app", "main"]

app = typer.Typer(
    name="interlock",
    help="Moves work between a CRM and an ERP over Kafka, automatically and safely.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
topics_app = typer.Typer(help="The topic catalog: apply it to the broker, compare, list.")
app.add_typer(topics_app, name="topics")
app.add_typer(contracts_app, name="contracts")
also_generate(compile_shipped_writers)
app.add_typer(cdc_app, name="cdc")
app.command("lag-exporter")(lag_exporter_command)
app.command("webhooks")(webhooks_command)
app.command("sinks")(sinks_command)
app.add_typer(make_dlq_app(stack_settings), name="dlq")
app.add_typer(make_reconcile_app(stack_settings), name="reconcile")
app.add_typer(make_review_app(stack_settings), name="review")
app.add_typer(make_console_app(stack_settings), name="console")
app.add_typer(simulate_app, name="simulate")
app.add_typer(send_app, name="send")
app.command("chaos")(chaos_command)

console = Console()


@app.command()
def up(
    duration: Annotated[
        float | None, typer.Option("--for", help="Run for SECONDS, then stop and exit 0.")
    ] = None,
    simulate: Annotated[
        float | None,
        typer.Option(help="Play a simulated CRM and ERP at RATE events/s against the stack."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulation (same seed, same story).")] = 1,
    check: Annotated[
        bool, typer.Option(help="After a simulated run, check the invariants; exit 1 if broken.")
    ] = False,
    drift: Annotated[
        bool,
        typer.Option(
            help="With --simulate: inject reconciliation drift at seeded moments (ERP orders "
            "edited, deleted, keyed in by hand; CRM write-backs lost, deals deleted); with "
            "--check, prove reconciliation found exactly it. Short reconciliation SLAs."
        ),
    ] = False,
    dialect: Annotated[
        str, typer.Option(help="Simulated CRM: standard (Standard Webhooks) or hubspot.")
    ] = "standard",
    drain: Annotated[
        float, typer.Option(help="Seconds the simulated ERP/CRM keep working after --for.")
    ] = 20.0,
    log_dir: Annotated[Path, typer.Option(help="Where the services write their logs.")] = Path(
        ".interlock/logs"
    ),
    metrics_port: Annotated[
        int | None, typer.Option(help="Port of the supervisor's /metrics (0: any free port).")
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Faust workers to start in one group (worker-1..N).")
    ] = 1,
    erp: Annotated[
        str,
        typer.Option(
            help="Simulated ERP: direct (publishes its changes to Kafka itself) or postgres "
            "(writes its rows into a real PostgreSQL ERP database, read by CDC)."
        ),
    ] = "direct",
    cdc: Annotated[
        str,
        typer.Option(
            help="With --erp postgres: builtin (interlock cdc postgres) or debezium (Kafka "
            "Connect; needs Java 17 or newer)."
        ),
    ] = "builtin",
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="With --simulate: a scheduled outage of the fake ERP or CRM API, "
            "TARGET:STATUS:SECONDS@START (e.g. crm:503:300@30). Repeatable."
        ),
    ] = None,
) -> None:
    """Run the whole stack: embedded broker if none is configured, topics, every service."""
    from interlock.up import UpHooks, UpOptions, run_up
    from ops.simulator.alongside import SimulatorAlongside
    from ops.simulator.live import LiveMonitor
    from ops.simulator.up_plan import simulation_options

    simulation = simulation_options(
        simulate=simulate,
        seed=seed,
        check=check,
        drift=drift,
        dialect=dialect,
        drain=drain,
        erp=erp,
        cdc=cdc,
        faults=fault or [],
    )
    options = UpOptions(
        duration=duration, log_dir=log_dir, metrics_port=metrics_port, workers=workers
    )
    hooks = UpHooks(
        make_monitor=lambda urls, con: LiveMonitor(urls, con),
        companion=SimulatorAlongside(simulation),
    )
    raise typer.Exit(run_up(command_settings(), options, console, hooks))


@app.command()
def broker(
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default: a free one).")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Apache Kafka's data directory, kept across restarts."),
    ] = None,
    kind: Annotated[
        str | None, typer.Option(help="kafka or tansu (default: INTERLOCK_EMBEDDED_BROKER).")
    ] = None,
) -> None:
    """Run the embedded broker standalone until SIGINT/SIGTERM; prints its bootstrap address."""
    from interlock.broker import BrokerKind, choose_embedded, embedded_broker

    configure_logging("INFO")
    settings = command_settings()
    if kind not in (None, "kafka", "tansu"):
        raise typer.BadParameter("--kind is kafka or tansu")
    chosen: BrokerKind = choose_embedded(settings).kind if kind is None else cast(BrokerKind, kind)
    directory = data_dir or Path(settings.broker.data_dir or ".interlock/kafka")
    stop = stop_on_signals()
    with embedded_broker(settings, chosen, port=port, data_dir=directory) as embedded:
        print(embedded.bootstrap_servers, flush=True)
        where = f"data in {directory}" if embedded.kind == "kafka" else "in memory"
        console.print(f"{embedded.kind} {embedded.version}, {where}", style="dim")
        console.print(
            f"export INTERLOCK_KAFKA__BOOTSTRAP_SERVERS={embedded.bootstrap_servers}", style="dim"
        )
        while not stop.wait(0.5):
            if not embedded.alive():
                console.print(f"[red]the broker exited[/]: {embedded.log_tail()}")
                raise typer.Exit(1)


@app.command()
def worker() -> None:
    """Run the processors worker (Faust agents and tables) against the configured Kafka."""
    from processors.worker import main as worker_main

    worker_main(require_kafka(command_settings()))


app.command("trace")(make_trace_command(lambda: require_kafka(stack_settings())))


@topics_app.command("apply")
def topics_apply(
    catalog: Annotated[Path | None, typer.Option(help="Topic catalog YAML.")] = None,
) -> None:
    """Create missing topics with their full config; exit 1 on drift. Idempotent."""
    from interlock.kafka import make_admin
    from interlock.provisioning import apply_catalog

    settings = require_kafka(stack_settings())
    report = apply_catalog(
        make_admin(settings),
        load_catalog(catalog),
        settings.topics.partitions,
        settings.topics.retention_ms,
        settings.topics.replication_factor,
    )
    created = report.names("created")
    if created:
        console.print(f"created {len(created)} topic(s): {', '.join(created)}")
    else:
        console.print("nothing to change: every catalog topic exists")
    for drift in report.drift:
        console.print(f"[red]drift[/] {drift}")
    if report.drift:
        raise typer.Exit(1)


@topics_app.command("list")
def topics_list(
    catalog: Annotated[Path | None, typer.Option(help="Topic catalog YAML.")] = None,
) -> None:
    """Show the catalog beside what the broker has; exit 1 if anything is missing or drifted."""
    from interlock.kafka import make_admin
    from interlock.provisioning import inspect_catalog

    settings = require_kafka(stack_settings())
    loaded = load_catalog(catalog)
    report = inspect_catalog(
        make_admin(settings), loaded, settings.topics.partitions, settings.topics.retention_ms
    )
    drift = {d.topic: str(d) for d in report.drift}
    table = Table("topic", "partitions", "cleanup", "contract", "broker")
    for spec in loaded.topics:
        status = report.status.get(spec.name, "missing")
        shown = drift.get(spec.name, status) if status == "drift" else status
        table.add_row(
            spec.name,
            str(loaded.partitions_of(spec, settings.topics.partitions)),
            spec.cleanup_policy,
            spec.contract or "",
            shown,
        )
    console.print(table)
    if not report.ok:
        raise typer.Exit(1)


def main() -> None:
    """Console-script entry point; a broker that refuses our access is one line and exit 2."""
    try:
        app()
    except KafkaAccessError as exc:
        exit_refused(f"interlock: {exc}")


if __name__ == "__main__":
    main()
