"""``interlock webhooks`` and ``interlock sinks``: the services of the CRM/ERP HTTP edge."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer

from interlock.commandline import command_settings, require_kafka, stop_on_signals
from interlock.instruments import Instruments
from interlock.metrics import new_registry, serve_metrics
from interlock.settings import Settings

__all__ = ["sinks_command", "webhooks_command"]

log = logging.getLogger(__name__)


def _settings() -> Settings:
    return require_kafka(command_settings())


def webhooks_command(
    host: Annotated[str | None, typer.Option(help="Interface (default: settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings, 8080).")] = None,
    mapper: Annotated[
        bool | None, typer.Option("--mapper/--no-mapper", help="Run the mapping stage too.")
    ] = None,
) -> None:
    """Receive CRM webhooks (HubSpot, Standard Webhooks), land them raw, map them to canonical.

    Exits 1 when a part cannot heal (its landing producer or its mapping stage kept failing):
    a supervisor then starts it again.
    """
    from connectors.webhooks.health import ServiceHealth
    from connectors.webhooks.service import (
        build_mapper_supervisor,
        build_receiver,
        receiver_server,
    )

    settings = _settings()
    registry = new_registry()
    instruments = Instruments(registry, "webhooks")
    metrics = serve_metrics(registry, settings.metrics.host, settings.metrics.port)
    health = ServiceHealth()
    app, landing = build_receiver(settings, instruments, health=health)
    stop = threading.Event()
    mapper_thread: threading.Thread | None = None
    if settings.webhooks.mapper if mapper is None else mapper:
        supervisor = build_mapper_supervisor(settings, instruments, health)
        mapper_thread = threading.Thread(target=supervisor.run, args=(stop,), name="mapper")
        mapper_thread.start()
    # uvicorn re-raises the signal it caught once it has shut down; with these no-op handlers
    # in place that re-raise is harmless, so a SIGTERM/SIGINT ends the process with exit 0.
    signal.signal(signal.SIGINT, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: None)
    server = receiver_server(
        app, host or settings.webhooks.host, settings.webhooks.port if port is None else port
    )
    health.on_dead(lambda: setattr(server, "should_exit", True))
    try:
        server.run()  # returns on SIGINT/SIGTERM, or once the service is dead
    finally:
        stop.set()
        if mapper_thread is not None:
            mapper_thread.join(30)
        landing.close()
        metrics.stop()
    if health.died.is_set():
        typer.echo(f"interlock webhooks cannot heal: {'; '.join(health.liveness())}", err=True)
        raise typer.Exit(1)


def sinks_command() -> None:
    """Call the ERP and CRM APIs for every command (commands.erp.*, commands.crm.*)."""
    from connectors.sinks.service import build_sink_loop, run_sinks

    settings = _settings()
    registry = new_registry()
    instruments = Instruments(registry, "sinks")
    metrics = serve_metrics(registry, settings.metrics.host, settings.metrics.port)
    stop = stop_on_signals()
    loop, client = build_sink_loop(settings, instruments)
    try:
        run_sinks(loop, client, stop)
    finally:
        metrics.stop()
