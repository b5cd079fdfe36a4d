"""The processors worker: the Faust app with every Interlock agent registered, plus /metrics."""

from __future__ import annotations

import logging

from interlock.metrics import new_registry, serve_metrics
from interlock.settings import Settings
from processors.app import InterlockApp, create_app, run_worker

__all__ = ["build_worker_app", "main"]

log = logging.getLogger(__name__)


def build_worker_app(settings: Settings) -> InterlockApp:
    """The Faust app with Interlock's agents and tables registered on it."""
    app = create_app(settings)
    return app


def main(settings: Settings) -> None:
    """Run the worker until SIGINT/SIGTERM, serving its metrics on the configured port."""
    registry = new_registry()
    endpoint = serve_metrics(registry, settings.metrics.host, settings.metrics.port)
    log.info("worker metrics on %s", endpoint.url)
    app = build_worker_app(settings)
    try:
        run_worker(app, loglevel=settings.log_level.lower())
    finally:
        endpoint.stop()
