"""``interlock up``: the whole stack on one machine, started and stopped as one.

Starts the embedded broker when no Kafka is configured, applies the topic catalog, starts every
service as a child process against that broker (as they run in production), serves the
supervisor's own ``/metrics``, and on SIGINT/SIGTERM or after ``--for`` stops all of it.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from prometheus_client import Gauge
from rich.console import Console
from rich.table import Table

from contracts.topics import load_catalog
from interlock.broker import EmbeddedBroker, free_port
from interlock.kafka import make_admin
from interlock.metrics import new_registry, serve_metrics
from interlock.settings import Settings
from interlock.supervisor import Supervisor
from interlock.topics import apply_catalog

__all__ = ["ServicePlan", "UpOptions", "plan_services", "run_up"]

log = logging.getLogger(__name__)


@dataclass
class ServicePlan:
    """A service to start: its name, its ``interlock`` sub-command and where it can be reached."""

    name: str
    args: list[str]
    metrics_port: int
    endpoints: dict[str, str] = field(default_factory=dict)


@dataclass
class UpOptions:
    """What ``interlock up`` was asked to do."""

    duration: float | None = None
    log_dir: Path = Path(".interlock/logs")
    metrics_port: int | None = None


def _port(preferred: int) -> int:
    """``preferred`` when it is free, otherwise any free port."""
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


def plan_services(settings: Settings) -> list[ServicePlan]:
    """The services ``up`` runs, each with its own metrics port."""
    base = settings.metrics.port
    worker_port = _port(base + 1)
    webhooks_port = _port(settings.webhooks.port)
    sinks_port = _port(base + 2)
    cdc_port = _port(base + 3)
    lag_port = _port(base + 4)
    url = f"http://{settings.webhooks.host}:{webhooks_port}"
    return [
        ServicePlan(
            "worker",
            ["worker"],
            worker_port,
            {"worker metrics": f"http://127.0.0.1:{worker_port}/metrics"},
        ),
        ServicePlan(
            "webhooks",
            ["webhooks", "--port", str(webhooks_port)],
            _port(base + 5),
            {
                "HubSpot webhooks": f"{url}/webhooks/hubspot",
                "Standard Webhooks": f"{url}/webhooks/standard/<source>",
                "webhooks health": f"{url}/healthz",
                "webhooks metrics": f"{url}/metrics",
            },
        ),
        ServicePlan(
            "sinks",
            ["sinks"],
            sinks_port,
            {"sinks metrics": f"http://127.0.0.1:{sinks_port}/metrics"},
        ),
        ServicePlan(
            "cdc",
            ["cdc"],
            cdc_port,
            {"cdc metrics": f"http://127.0.0.1:{cdc_port}/metrics"},
        ),
        ServicePlan(
            "lag-exporter",
            ["lag-exporter", "--port", str(lag_port)],
            lag_port,
            {"lag exporter metrics": f"http://127.0.0.1:{lag_port}/metrics"},
        ),
    ]


def _child_env(settings: Settings, plan: ServicePlan) -> dict[str, str]:
    assert settings.kafka.bootstrap_servers is not None
    return {
        "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "INTERLOCK_METRICS__PORT": str(plan.metrics_port),
        "INTERLOCK_LOG_LEVEL": settings.log_level,
    }


def run_up(settings: Settings, options: UpOptions, console: Console | None = None) -> int:
    """Run the stack until a signal or ``options.duration``; returns the exit code."""
    console = console or Console()
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        console.print(f"[yellow]{signal.Signals(signum).name} received, stopping…[/]")
        stop.set()

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    broker: EmbeddedBroker | None = None
    supervisor = Supervisor(options.log_dir)
    endpoint = None
    try:
        if settings.embedded:
            broker = EmbeddedBroker().start()
            settings = settings.with_bootstrap(broker.bootstrap_servers)
        report = apply_catalog(
            make_admin(settings),
            load_catalog(),
            settings.topics.partitions,
            settings.topics.retention_ms,
            settings.topics.replication_factor,
        )
        for drift in report.drift:
            console.print(f"[red]topic drift[/]: {drift}")

        registry = new_registry()
        running = Gauge(
            "interlock_service_up",
            "1 while a service started by interlock up is running.",
            ["service"],
            registry=registry,
        )
        port = options.metrics_port if options.metrics_port is not None else settings.metrics.port
        endpoint = serve_metrics(registry, settings.metrics.host, _port(port) if port else 0)

        plans = plan_services(settings)
        for plan in plans:
            argv = [sys.executable, "-m", "interlock.cli", *plan.args]
            supervisor.start(plan.name, argv, _child_env(settings, plan))
            running.labels(plan.name).set(1)

        table = Table(title="Interlock is up", show_header=False)
        table.add_row("Kafka bootstrap", settings.kafka.bootstrap_servers or "")
        if broker is not None:
            table.add_row("embedded broker", f"pid {broker.pid} (in memory)")
        table.add_row(
            "topics", f"{len(report.status)} in catalog, {len(report.names('created'))} created"
        )
        table.add_row("metrics", endpoint.url)
        for plan in plans:
            for label, url in plan.endpoints.items():
                table.add_row(label, url)
        table.add_row("logs", str(options.log_dir))
        console.print(table)
        console.print("Press Ctrl-C to stop.", style="dim")

        deadline = time.monotonic() + options.duration if options.duration else None
        exit_code = 0
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            for service in supervisor.dead():
                running.labels(service.name).set(0)
                code = service.proc.returncode if service.proc else None
                console.print(
                    f"[red]{service.name} exited with code {code}[/]; see {service.log_path}"
                )
                exit_code = 1
                stop.set()
            stop.wait(0.5)
        return exit_code
    finally:
        codes = supervisor.stop_all()
        if endpoint is not None:
            endpoint.stop()
        if broker is not None:
            broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        console.print(f"stopped: {', '.join(f'{k}={v}' for k, v in codes.items()) or 'nothing'}")
