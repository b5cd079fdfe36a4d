"""``interlock lag-exporter``: the thin command around ``LagExporter`` and ``LagProbe``."""

from __future__ import annotations

import threading
from typing import Annotated

import typer

from interlock.settings import Settings

__all__ = ["lag_exporter_command", "run_lag_exporter"]


def run_lag_exporter(
    settings: Settings, groups: str, port: int, interval: float, stop: threading.Event
) -> None:
    """Serve lag metrics on ``settings.metrics.host:port`` until ``stop`` is set."""
    from interlock.metrics import new_registry, serve_metrics
    from ops.lag.exporter import LagExporter
    from ops.lag.probe import LagProbe

    registry = new_registry()
    probe = LagProbe(settings.kafka.librdkafka(), groups=groups, tansu=settings.kafka.tansu)
    exporter = LagExporter(
        probe,
        registry,
        window=settings.lag_exporter.window,
        min_samples=settings.lag_exporter.min_samples,
    )
    endpoint = serve_metrics(registry, settings.metrics.host, port)
    print(f"lag exporter metrics on {endpoint.url}", flush=True)
    try:
        exporter.run(interval, stop)
    finally:
        endpoint.stop()
        probe.close_reader()


def lag_exporter_command(
    groups: Annotated[
        str | None, typer.Option(help="Regular expression of the consumer group ids to watch.")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port of /metrics (default: INTERLOCK_METRICS__PORT).")
    ] = None,
    interval: Annotated[
        float | None, typer.Option(help="Seconds between samples of the groups.")
    ] = None,
) -> None:
    """Export consumer lag (messages, seconds) and group status (OK/WARN/STALL/STOP)."""
    from interlock.commandline import command_settings, require_kafka, stop_on_signals

    settings = require_kafka(command_settings())
    stop = stop_on_signals()
    run_lag_exporter(
        settings,
        groups if groups is not None else settings.lag_exporter.groups,
        port if port is not None else settings.metrics.port,
        interval if interval is not None else settings.lag_exporter.interval_s,
        stop,
    )
