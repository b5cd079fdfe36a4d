"""What ``interlock up`` tells its user: the banner, its own metrics, child events, resources."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge
from rich.console import Console
from rich.table import Table

from interlock.broker import BrokerChoice, BrokerProcess, broker_banner, broker_growth_line
from interlock.metrics import new_registry
from interlock.provisioning import TopicReport
from interlock.resources import Usage, resources_table
from interlock.services import ServicePlan, console_sign_in
from interlock.settings import Settings
from interlock.supervisor import ChildEvent, Supervisor

__all__ = ["UpMetrics", "UsageSamples", "banner", "child_event_reporter", "running_pids"]


class UpMetrics:
    """``up``'s own ``/metrics``: which children run, and how often each was restarted."""

    def __init__(self) -> None:
        self.registry: CollectorRegistry = new_registry()
        self.running = Gauge(
            "interlock_service_up",
            "1 while a service started by interlock up is running.",
            ["service"],
            registry=self.registry,
        )
        self.restarts = Counter(
            "interlock_service_restarts",
            "Restarts of a child of interlock up that died (the broker included).",
            ["service"],
            registry=self.registry,
        )


def child_event_reporter(
    console: Console, metrics: UpMetrics, broker: BrokerProcess | None
) -> Callable[[ChildEvent], None]:
    """What ``up`` does when a child dies or comes back: say it, and count it on /metrics."""

    def report(event: ChildEvent) -> None:
        if event.kind == "restarted":
            metrics.restarts.labels(event.name).inc()
            metrics.running.labels(event.name).set(1)
            console.print(f"[green]{event.describe()}[/]")
            if broker is not None and event.name == broker.name:
                console.print(f"embedded broker back on {broker.bootstrap_servers}")
        else:
            metrics.running.labels(event.name).set(0)
            console.print(f"[red]{event.describe()}[/]")

    return report


def banner(
    settings: Settings,
    topics: TopicReport,
    metrics_url: str,
    plans: list[ServicePlan],
    broker: BrokerProcess | None,
    choice: BrokerChoice | None,
    companion_rows: list[tuple[str, str]],
) -> Table:
    """The table ``up`` shows once it runs: the broker, the topics and every endpoint."""
    table = Table(title="Interlock is up", show_header=False)
    table.add_row("Kafka bootstrap", settings.kafka.bootstrap_servers or "")
    if broker is not None and choice is not None:
        table.add_row("embedded broker", broker_banner(broker, choice))
    table.add_row(
        "topics",
        f"{len(topics.status)} in catalog, {len(topics.names('created'))} created, "
        f"{settings.topics.partitions} partition(s) by default",
    )
    table.add_row("worker tables", f"{settings.processors.store} in {settings.processors.data_dir}")
    table.add_row("metrics", metrics_url)
    for plan in plans:
        for label, url in plan.endpoints.items():
            table.add_row(label, url)
        hint = console_sign_in(plan)
        if hint is not None:
            table.add_row("console sign-in", hint)
    for label, value in companion_rows:
        table.add_row(label, value)
    return table


def running_pids(supervisor: Supervisor, broker: BrokerProcess | None) -> dict[str, int]:
    """Every process of the run by name: the services, ``up`` itself and the embedded broker."""
    pids = {s.name: s.proc.pid for s in supervisor.services if s.proc is not None and s.running}
    pids["up"] = os.getpid()
    if broker is not None and broker.pid is not None:
        pids["broker"] = broker.pid
    return pids


@dataclass
class UsageSamples:
    """The resources of every process at the start, early in the load and at its end."""

    start: dict[str, Usage]
    early: dict[str, Usage] = field(default_factory=dict)
    load_end: dict[str, Usage] = field(default_factory=dict)

    def report(self, console: Console, end: dict[str, Usage], broker_kind: str | None) -> None:
        """Show the resources table (and the broker's CPU growth), given the final sample."""
        load_end = self.load_end or end
        console.print(resources_table(self.start, self.early, load_end, end))
        growth = broker_growth_line(broker_kind, self.start, self.early, load_end)
        if growth is not None:
            console.print(growth)
