"""``interlock webhooks``: the CRM webhook receiver and its mapping stage."""

from __future__ import annotations

import logging
import threading
from typing import Annotated

import typer

from interlock.commandline import (
    command_settings,
    ignore_signals_after_uvicorn,
    require_kafka,
)
from interlock.instruments import Instruments
from interlock.metrics import new_registry, serve_metrics

__all__ = ["webhooks_command"]

log = logging.getLogger(__name__)


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

    settings = require_kafka(command_settings())
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
    ignore_signals_after_uvicorn()
    server = receiver_server(
        app,
        host or settings.webhooks.host,
        settings.webhooks.port if port is None else port,
        settings.gc_young_threshold,
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
