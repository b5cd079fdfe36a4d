"""``interlock sinks``: the outbound sinks that call the ERP and CRM APIs for every command."""

from __future__ import annotations

from interlock.collector import tune_collector
from interlock.commandline import command_settings, require_kafka, stop_on_signals
from interlock.instruments import Instruments
from interlock.metrics import new_registry, serve_metrics

__all__ = ["sinks_command"]


def sinks_command() -> None:
    """Call the ERP and CRM APIs for every command (commands.erp.*, commands.crm.*)."""
    from connectors.sinks.service import build_sink_loop, run_sinks

    settings = require_kafka(command_settings())
    registry = new_registry()
    instruments = Instruments(registry, "sinks")
    metrics = serve_metrics(registry, settings.metrics.host, settings.metrics.port)
    stop = stop_on_signals()
    loop, client = build_sink_loop(settings, instruments)
    tune_collector(settings.gc_young_threshold)
    try:
        run_sinks(loop, client, stop)
    finally:
        metrics.stop()
