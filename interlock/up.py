"""``interlock up``: the whole stack on one machine, started and stopped as one.

Starts the embedded broker when no Kafka is configured, applies the topic catalog, starts every
service as a child process against that broker (as they run in production), serves the
supervisor's own ``/metrics``, and on SIGINT/SIGTERM or after ``--for`` stops all of it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Literal, Protocol

from prometheus_client import Counter, Gauge
from rich.console import Console
from rich.table import Table

from contracts.errors import InterlockError
from contracts.topics import load_catalog
from interlock.broker import (
    BrokerChoice,
    BrokerProcess,
    broker_banner,
    broker_growth_line,
    choose_embedded,
    embedded_broker,
    embedded_run_settings,
    free_port,
)
from interlock.kafka import make_admin
from interlock.metrics import new_registry, serve_metrics
from interlock.probes import wait_for_drain, wait_until_ready
from interlock.provisioning import apply_catalog
from interlock.resources import Usage, resources_table, sample
from interlock.settings import Settings
from interlock.stackfile import StackState, remove_stack, write_stack
from interlock.supervisor import ChildEvent, RestartPolicy, Supervisor

__all__ = [
    "DRIFT_RECONCILE",
    "ErpDatabase",
    "ServicePlan",
    "Simulation",
    "UpHooks",
    "UpOptions",
    "drift_settings",
    "plan_services",
    "run_up",
]

log = logging.getLogger(__name__)


@dataclass
class ServicePlan:
    """A service to start: its name, its ``interlock`` sub-command and where it can be reached."""

    name: str
    args: list[str]
    metrics_port: int
    endpoints: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    consumes: bool = True
    """It joins a consumer group: ready once ``interlock_assigned_partitions`` is above 0."""


@dataclass
class UpOptions:
    """What ``interlock up`` was asked to do."""

    duration: float | None = None
    log_dir: Path = Path(".interlock/logs")
    metrics_port: int | None = None
    simulate: float | None = None
    seed: int = 1
    check: bool = False
    dialect: str = "standard"
    drain: float = 20.0
    drain_grace: float = 90.0
    """How much longer than ``drain`` the simulator may keep its APIs up for a lagging stack."""
    memory_sample_at: float = 120.0
    """When the early resources sample is taken (at most half of ``duration``)."""
    settle_timeout: float = 180.0
    ready_timeout: float = 60.0
    """Longest wait for every consumer to hold its partitions before the simulator starts."""
    workers: int = 1
    erp: Literal["direct", "postgres"] = "direct"
    """Where the simulated ERP keeps its rows: ``direct`` publishes Debezium-shaped changes to
    Kafka itself; ``postgres`` writes them into a real PostgreSQL database read by CDC."""
    cdc: Literal["builtin", "debezium"] = "builtin"
    """With ``erp="postgres"``: the built-in source or Debezium on Kafka Connect."""
    faults: tuple[str, ...] = ()
    drift: bool = False
    """With ``simulate``: inject reconciliation drift at seeded moments (``--drift``); the
    children get :data:`DRIFT_RECONCILE` (unless set), so its SLAs pass within the run."""
    """Scheduled outages of the fake APIs, passed to the simulator (``--fault``)."""


DRIFT_RECONCILE: dict[str, float] = {
    "reconcile_order_sla_s": 20.0,
    "reconcile_writeback_sla_s": 20.0,
    "reconcile_interval_s": 2.0,
}
"""Reconciliation settings of a run with injected drift, where not set otherwise: minutes-long
SLAs would outlast the run, and the check waits for them."""


def drift_settings(settings: Settings) -> tuple[Settings, dict[str, str]]:
    """``settings`` with the reconciliation SLAs of a drift run (those not set explicitly), and
    the environment that gives every child the same."""
    processors = settings.processors
    chosen = {k: v for k, v in DRIFT_RECONCILE.items() if k not in processors.model_fields_set}
    processors = processors.model_copy(update=chosen)
    env = {
        f"INTERLOCK_PROCESSORS__{name.upper()}": f"{getattr(processors, name):g}"
        for name in DRIFT_RECONCILE
    }
    return settings.model_copy(update={"processors": processors}), env


def _drift_hold_s(settings: Settings) -> float:
    """How long the simulator holds its fakes after the drain in a drift run (its formula)."""
    p = settings.processors
    return max(p.reconcile_order_sla_s, p.reconcile_writeback_sla_s) + p.reconcile_interval_s + 5


class ErpDatabase(Protocol):
    """A real ERP database the simulated ERP writes to, with the change capture that reads it."""

    dsn: str
    banner: dict[str, str]

    def start(self, settings: Settings, supervisor: Supervisor) -> None: ...

    def close(self) -> None: ...


class Monitor(Protocol):
    """A live view of the running stack (the simulator's ``LiveMonitor``)."""

    def run(self, stop: threading.Event) -> object: ...

    def load_ended(self) -> None: ...


@dataclass
class UpHooks:
    """What the composition root plugs into ``up``: the live view, the invariant check and the
    ERP database of ``--erp postgres``."""

    make_monitor: Callable[[list[str], Console], Monitor] | None = None
    check: Callable[[Settings, Path], bool] | None = None
    erp_database: Callable[[UpOptions], ErpDatabase] | None = None


@dataclass
class Simulation:
    """Ports and secrets shared by the simulator and the services it talks to."""

    erp_port: int
    crm_port: int
    hubspot_secret: str
    standard_secret: str
    app_id: str
    ground_truth: Path

    @classmethod
    def create(cls, state_dir: Path, erp_port: int = 0, crm_port: int = 0) -> Simulation:
        return cls(
            erp_port=erp_port or free_port(),
            crm_port=crm_port or free_port(),
            hubspot_secret=secrets.token_urlsafe(24),
            standard_secret="whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
            app_id="interlock-sim",
            ground_truth=state_dir / "simulation.json",
        )

    def env(self) -> dict[str, str]:
        return {
            "INTERLOCK_WEBHOOKS__HUBSPOT__CLIENT_SECRET": self.hubspot_secret,
            "INTERLOCK_WEBHOOKS__HUBSPOT__APP_ID": self.app_id,
            "INTERLOCK_WEBHOOKS__STANDARD__SECRETS": json.dumps({"acme": self.standard_secret}),
            "INTERLOCK_SINKS__ERP__BASE_URL": f"http://127.0.0.1:{self.erp_port}",
            "INTERLOCK_SINKS__CRM__BASE_URL": f"http://127.0.0.1:{self.crm_port}",
        }


class PortBusyError(Exception):
    """A fixed port of the stack is taken by another process."""


def _port(preferred: int, what: str = "a service") -> int:
    """``preferred`` (0: any free port); a fixed port stays fixed, so scrape configs hold.

    Raises:
        PortBusyError: ``preferred`` is in use.
    """
    import socket

    if preferred == 0:
        return free_port()
    with socket.socket() as sock:
        # as the servers bind: a port in TIME_WAIT after the last run is free
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError as exc:
            raise PortBusyError(
                f"port {preferred} ({what}) is in use: stop what holds it, or move the stack "
                "with INTERLOCK_METRICS__PORT / INTERLOCK_WEBHOOKS__PORT (0: free ports)"
            ) from exc
    return preferred


def _near(base: int, offset: int) -> int:
    """The port ``offset`` above ``base``; 0 (any free port) when ``base`` is 0."""
    return base + offset if base else 0


def _worker_plans(settings: Settings, workers: int) -> list[ServicePlan]:
    """One Faust worker, or ``workers`` of them (worker-1..N) in one group, each its own dir."""
    if workers <= 1:
        port = _port(_near(settings.metrics.port, 1), "worker metrics")
        return [ServicePlan("worker", ["worker"], port, {"worker metrics": _metrics(port)})]
    plans = []
    for i in range(1, workers + 1):
        port = _port(_near(settings.metrics.port, 10 + i), f"worker-{i} metrics")
        data_dir = str(Path(settings.processors.data_dir) / f"worker-{i}")
        plans.append(
            ServicePlan(
                f"worker-{i}",
                ["worker"],
                port,
                {f"worker-{i} metrics": _metrics(port)},
                {"INTERLOCK_PROCESSORS__DATA_DIR": data_dir},
            )
        )
    return plans


def _metrics(port: int) -> str:
    return f"http://127.0.0.1:{port}/metrics"


def _console_plan(settings: Settings, state_dir: Path) -> ServicePlan:
    """The exception desk's console: on ``console.port`` if set, else webhook port + 10.

    With no console users configured it is told to create ``admin`` with a random password,
    written to ``<state dir>/console-admin.txt`` (see :func:`console_sign_in`).
    """
    config = settings.console
    wanted = config.port if "port" in config.model_fields_set else _near(settings.webhooks.port, 10)
    port = _port(wanted, "console")
    args = ["console", "--port", str(port)]
    env: dict[str, str] = {}
    if not config.users and not config.users_file:
        args += ["--first-admin", str(state_dir / "console-admin.txt")]
        env["INTERLOCK_CONSOLE__USERS_FILE"] = str(state_dir / "console-users.yaml")
    url = f"http://{config.host}:{port}"
    return ServicePlan(
        "console",
        args,
        _port(_near(settings.metrics.port, 7), "console metrics"),
        {"exception desk console": url, "console health": f"{url}/healthz"},
        env,
        consumes=False,
    )


def console_sign_in(plan: ServicePlan) -> str | None:
    """The banner's hint for the first sign-in, when ``up`` lets the console create admin."""
    if "--first-admin" not in plan.args:
        return None
    return f"admin, password in {plan.args[plan.args.index('--first-admin') + 1]}"


def plan_services(
    settings: Settings, workers: int = 1, state_dir: Path = Path(".interlock")
) -> list[ServicePlan]:
    """The services ``up`` runs, each with its own fixed metrics port (see docs: ports)."""
    base = settings.metrics.port
    webhooks_port = _port(settings.webhooks.port, "webhook receiver")
    sinks_port = _port(_near(base, 2), "sinks metrics")
    cdc_port = _port(_near(base, 3), "cdc metrics")
    lag_port = _port(_near(base, 4), "lag exporter")
    url = f"http://{settings.webhooks.host}:{webhooks_port}"
    return [
        *_worker_plans(settings, workers),
        ServicePlan(
            "webhooks",
            ["webhooks", "--port", str(webhooks_port)],
            _port(_near(base, 5), "webhooks metrics"),
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
            consumes=False,
        ),
        _console_plan(settings, state_dir),
    ]


def _consumers(settings: Settings, plans: list[ServicePlan]) -> dict[str, str]:
    """The services whose readiness ``up`` waits for, with their metrics URL."""
    return {
        plan.name: _metrics(plan.metrics_port)
        for plan in plans
        if plan.consumes and (plan.name != "webhooks" or settings.webhooks.mapper)
    }


def _child_env(settings: Settings, plan: ServicePlan) -> dict[str, str]:
    assert settings.kafka.bootstrap_servers is not None
    return {
        "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "INTERLOCK_KAFKA__BROKER_KIND": settings.kafka.broker_kind,
        "INTERLOCK_METRICS__PORT": str(plan.metrics_port),
        "INTERLOCK_LOG_LEVEL": settings.log_level,
        # the topics were created with this many partitions; Faust's tables must agree
        "INTERLOCK_TOPICS__PARTITIONS": str(settings.topics.partitions),
        "INTERLOCK_PROCESSORS__DATA_DIR": settings.processors.data_dir,
        "INTERLOCK_PROCESSORS__STORE": settings.processors.store,
        # One client id per service, so the broker's request metrics and quotas tell them apart.
        "INTERLOCK_KAFKA__CLIENT_ID": f"{settings.kafka.client_id}-{plan.name}",
        **plan.env,
    }


def _offered_line(ground_truth: Path, rate: float) -> str | None:
    """What the simulator offered: actions sent over the generation time, against RATE."""
    try:
        meta = json.loads(ground_truth.read_text()).get("meta") or {}
        sent, seconds = int(meta["sent"]), float(meta["generation_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if seconds <= 0:
        return None
    achieved = sent / seconds
    verdict = "as asked" if achieved >= 0.95 * rate else "[red]below the asked rate[/]"
    return (
        f"simulated load: {sent:,} actions in {seconds:,.0f} s = {achieved:,.0f}/s "
        f"(asked {rate:,.0f}/s, {verdict})"
    )


def run_up(
    settings: Settings,
    options: UpOptions,
    console: Console | None = None,
    hooks: UpHooks | None = None,
) -> int:
    """Run the stack until a signal or ``options.duration``; returns the exit code."""
    console = console or Console()
    hooks = hooks or UpHooks()
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        console.print(f"[yellow]{signal.Signals(signum).name} received, stopping…[/]")
        stop.set()

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    broker: BrokerProcess | None = None
    choice: BrokerChoice | None = None
    supervisor = Supervisor(options.log_dir, _restart_policy(settings))
    endpoint = None
    monitor: Monitor | None = None
    monitor_thread: threading.Thread | None = None
    monitor_stop = threading.Event()
    erp: ErpDatabase | None = None
    exit_code = 0
    try:
        # every fixed port is checked before anything starts: a busy one fails in a second
        plan_services(settings, options.workers)
        if settings.embedded:
            choice = choose_embedded(settings)
            # a fresh log directory per run: the worker tables and --check start from nothing,
            # while a broker restarted within the run keeps what it had (same data directory)
            data_dir = options.log_dir.parent / "kafka"
            shutil.rmtree(data_dir, ignore_errors=True)
            broker = embedded_broker(settings, choice.kind, data_dir=data_dir).start()
            settings = embedded_run_settings(settings, broker, options.workers)
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
        restarts = Counter(
            "interlock_service_restarts",
            "Restarts of a child of interlock up that died (the broker included).",
            ["service"],
            registry=registry,
        )
        supervisor.on_event = _child_event_reporter(console, running, restarts, broker)
        if broker is not None:
            supervisor.adopt(broker, stop_last=True)
            running.labels(broker.name).set(1)
        supervisor.watch()
        port = options.metrics_port if options.metrics_port is not None else settings.metrics.port
        endpoint = serve_metrics(registry, settings.metrics.host, _port(port, "up's metrics"))

        # Without a simulation and with no ERP/CRM configured, the fake ERP and CRM still run
        # (the simulator at rate 0), so that work sent by hand reaches an ERP and comes back.
        fakes = options.simulate is None and not (
            settings.sinks.erp.base_url or settings.sinks.crm.base_url
        )
        simulation = (
            Simulation.create(
                options.log_dir.parent,
                _port(_near(settings.webhooks.port, 1), "fake ERP API"),
                _port(_near(settings.webhooks.port, 2), "fake CRM API"),
            )
            if options.simulate is not None or fakes
            else None
        )
        simulated = options.simulate is not None and simulation is not None
        if options.erp == "postgres" and simulated and hooks.erp_database is not None:
            erp = hooks.erp_database(options)
            try:  # before the services: their free ports are picked after its own
                erp.start(settings, supervisor)
            except InterlockError as exc:
                console.print(f"[red]cannot start the ERP database:[/] {exc}")
                return 2
        elif options.erp == "postgres":
            console.print("[yellow]--erp postgres ignored[/]: it applies to --simulate only")
        extra_env = simulation.env() if simulation is not None else {}
        drifting = options.drift and options.simulate is not None and simulation is not None
        if drifting:
            settings, reconcile_env = drift_settings(settings)
            extra_env = {**extra_env, **reconcile_env}
        elif options.drift:
            console.print("[yellow]--drift ignored[/]: it applies to --simulate only")
        plans = plan_services(settings, options.workers, options.log_dir.parent)
        for plan in plans:
            argv = [sys.executable, "-m", "interlock.cli", *plan.args]
            supervisor.start(plan.name, argv, {**_child_env(settings, plan), **extra_env})
            running.labels(plan.name).set(1)
        began = time.monotonic()
        not_ready = wait_until_ready(
            _consumers(settings, plans),
            options.ready_timeout,
            stop,
            give_up=lambda: supervisor.failed is not None,
        )
        if stop.is_set():
            return exit_code
        if not_ready:
            console.print(
                f"[yellow]not ready after {options.ready_timeout:g} s[/]: "
                f"{', '.join(not_ready)} hold no partitions yet; going on"
            )
        else:
            console.print(
                f"ready in {time.monotonic() - began:.1f} s: every consumer holds its partitions"
            )
        simulator = None
        webhooks = next(p for p in plans if p.name == "webhooks")
        webhooks_url = webhooks.endpoints["webhooks health"].removesuffix("/healthz")
        if simulation is not None:
            rate = options.simulate or 0.0
            sim_args = [
                "simulate",
                "--rate", f"{rate:g}",
                "--seed", str(options.seed),
                "--webhooks-url", webhooks_url,
                "--erp-port", str(simulation.erp_port),
                "--crm-port", str(simulation.crm_port),
                "--ground-truth", str(simulation.ground_truth),
                "--dialect", options.dialect,
                "--drain", f"{options.drain:g}",
                "--drain-grace", f"{options.drain_grace:g}",
            ]  # fmt: skip
            if options.duration and options.simulate is not None:
                sim_args += ["--for", f"{options.duration:g}"]
            if options.simulate is None:
                sim_args += ["--unavailable", "0"]
            if erp is not None:
                sim_args += ["--erp-dsn", erp.dsn]
            if drifting:
                sim_args += ["--drift"]
            for fault in options.faults if options.simulate is not None else ():
                sim_args += ["--fault", fault]
            if options.check and options.simulate is not None:
                sim_args += ["--decide"]  # the invariants cover the exception desk's decisions
            simulator = supervisor.start(
                "simulator" if options.simulate is not None else "fake-erp-crm",
                [sys.executable, "-m", "interlock.cli", *sim_args],
                {
                    "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers or "",
                    "INTERLOCK_KAFKA__BROKER_KIND": settings.kafka.broker_kind,
                    "INTERLOCK_KAFKA__CLIENT_ID": f"{settings.kafka.client_id}-simulator",
                    "INTERLOCK_LOG_LEVEL": settings.log_level,
                    **extra_env,
                },
                # the simulator's ground truth cannot survive a restart; the bare fakes can
                restart=options.simulate is None,
            )

        table = Table(title="Interlock is up", show_header=False)
        table.add_row("Kafka bootstrap", settings.kafka.bootstrap_servers or "")
        if broker is not None and choice is not None:
            table.add_row("embedded broker", broker_banner(broker, choice))
        table.add_row(
            "topics",
            f"{len(report.status)} in catalog, {len(report.names('created'))} created, "
            f"{settings.topics.partitions} partition(s) by default",
        )
        table.add_row(
            "worker tables", f"{settings.processors.store} in {settings.processors.data_dir}"
        )
        table.add_row("metrics", endpoint.url)
        for plan in plans:
            for label, url in plan.endpoints.items():
                table.add_row(label, url)
            hint = console_sign_in(plan)
            if hint is not None:
                table.add_row("console sign-in", hint)
        if simulation is not None:
            table.add_row("fake ERP API", f"http://127.0.0.1:{simulation.erp_port}")
            table.add_row("fake CRM API", f"http://127.0.0.1:{simulation.crm_port}")
            if options.simulate is not None:
                table.add_row("ground truth", str(simulation.ground_truth))
        for label, value in (erp.banner if erp is not None else {}).items():
            table.add_row(label, value)
        table.add_row("logs", str(options.log_dir))
        state = StackState(
            pid=os.getpid(),
            bootstrap_servers=settings.kafka.bootstrap_servers or "",
            broker_kind=settings.kafka.broker_kind,
            partitions=settings.topics.partitions,
            webhooks_url=webhooks_url,
            metrics={p.name: _metrics(p.metrics_port) for p in plans},
            erp_url=f"http://127.0.0.1:{simulation.erp_port}" if simulation else None,
            crm_url=f"http://127.0.0.1:{simulation.crm_port}" if simulation else None,
            standard_source="acme" if simulation else None,
            standard_secret=simulation.standard_secret if simulation else None,
            log_dir=str(options.log_dir),
        )
        stack_file = write_stack(state)
        table.add_row("stack file", f"{stack_file} (other commands here use it)")
        console.print(table)
        console.print(f"Other shells: {state.export_line()}", style="dim")
        console.print("Press Ctrl-C to stop.", style="dim")

        # the live view: always with a simulation; without one, when a person is watching
        watched = options.simulate is not None or console.is_terminal
        if hooks.make_monitor is not None and watched:
            urls = [endpoint.url] + [
                url for p in plans for label, url in p.endpoints.items() if url.endswith("/metrics")
            ]
            monitor = hooks.make_monitor(urls, console)
            monitor_thread = threading.Thread(
                target=monitor.run, args=(monitor_stop,), name="live-view", daemon=True
            )
            monitor_thread.start()

        started = time.monotonic()
        # With a simulation, --for bounds the generation; the run ends when the simulator has
        # drained (or a little after, should it hang).
        limit = options.duration
        if limit and simulator is not None and options.simulate is not None:
            # the simulator stops generating after --for, then keeps its fake APIs for --drain
            limit += options.drain + options.drain_grace + max(60.0, limit)
            if drifting:
                limit += _drift_hold_s(settings)
        deadline = started + limit if limit else None
        usage_start = sample(_pids(supervisor, broker))
        # the early sample falls inside the load, so that CPU before and after it are comparable
        early_at = options.memory_sample_at
        if options.duration:
            early_at = min(early_at, options.duration / 2)
        usage_early: dict[str, Usage] = {}
        usage_load_end: dict[str, Usage] = {}
        while not stop.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if not usage_early and now - started >= early_at:
                usage_early = sample(_pids(supervisor, broker))
            if options.duration and not usage_load_end and now - started >= options.duration:
                usage_load_end = sample(_pids(supervisor, broker))
                if monitor is not None:
                    monitor.load_ended()
            # the simulator's end is the run's; the bare fakes are restarted like a service
            if simulator is not None and options.simulate is not None and not simulator.running:
                code = simulator.proc.returncode if simulator.proc else None
                if code != 0:
                    console.print(f"[red]{simulator.name} exited with code {code}[/]")
                    exit_code = 1
                break
            if supervisor.failed is not None:
                console.print(f"[red]stopping the stack[/]: {supervisor.failed}")
                exit_code = 1
                break
            stop.wait(0.5)
        if simulation is not None and options.simulate:
            offered = _offered_line(simulation.ground_truth, options.simulate)
            if offered is not None:
                console.print(offered)
        if usage_early:
            usage_end = sample(_pids(supervisor, broker))
            usage_load_end = usage_load_end or usage_end
            console.print(resources_table(usage_start, usage_early, usage_load_end, usage_end))
            growth = broker_growth_line(
                broker.kind if broker is not None else None,
                usage_start,
                usage_early,
                usage_load_end,
            )
            if growth is not None:
                console.print(growth)
        if monitor_thread is not None:
            monitor_stop.set()
            monitor_thread.join(30)
            monitor_thread = None
        checking = options.check and options.simulate is not None
        if checking and not _can_check(supervisor, stop, console):
            exit_code = 1
        elif checking and simulation is not None and hooks.check is not None:
            lag_url = next(
                (u for p in plans for k, u in p.endpoints.items() if k.startswith("lag exporter")),
                None,
            )
            if lag_url is not None:
                wait_for_drain(lag_url, options.settle_timeout, console, stop)
            if not hooks.check(settings, simulation.ground_truth):
                exit_code = 1
        return exit_code
    except PortBusyError as exc:
        console.print(f"[red]cannot start:[/] {exc}")
        return 2
    finally:
        if monitor_thread is not None:
            monitor_stop.set()
            monitor_thread.join(10)
        remove_stack(os.getpid())
        codes = supervisor.stop_all(settings.supervision.stop_grace_s)
        if endpoint is not None:
            endpoint.stop()
        if erp is not None:
            erp.close()
        if broker is not None:
            broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        console.print(f"stopped: {', '.join(f'{k}={v}' for k, v in codes.items()) or 'nothing'}")


def _restart_policy(settings: Settings) -> RestartPolicy:
    config = settings.supervision
    return RestartPolicy(
        backoff_s=config.restart_backoff_s,
        backoff_max_s=config.restart_backoff_max_s,
        max_restarts=config.crash_loop_restarts,
        window_s=config.crash_loop_window_s,
    )


def _child_event_reporter(
    console: Console, running: Gauge, restarts: Counter, broker: BrokerProcess | None
) -> Callable[[ChildEvent], None]:
    """What ``up`` does when a child dies or comes back: say it, and count it on /metrics."""

    def report(event: ChildEvent) -> None:
        if event.kind == "restarted":
            restarts.labels(event.name).inc()
            running.labels(event.name).set(1)
            console.print(f"[green]{event.describe()}[/]")
            if broker is not None and event.name == broker.name:
                console.print(f"embedded broker back on {broker.bootstrap_servers}")
        else:
            running.labels(event.name).set(0)
            console.print(f"[red]{event.describe()}[/]")

    return report


def _can_check(supervisor: Supervisor, stop: threading.Event, console: Console) -> bool:
    """Whether ``--check`` may read the run: not after a crash loop, a signal, or with a child
    still down (waiting up to a minute for a restart that is due)."""
    if supervisor.failed is not None:
        console.print(f"[red]not checked[/]: the stack fell apart ({supervisor.failed})")
        return False
    if stop.is_set():
        console.print("[red]not checked[/]: stopped by a signal before the run ended")
        return False
    deadline = time.monotonic() + 60.0
    while not supervisor.all_running():
        if time.monotonic() >= deadline or supervisor.failed is not None:
            console.print("[red]not checked[/]: a child of the stack is still down")
            return False
        stop.wait(0.5)
    return True


def _pids(supervisor: Supervisor, broker: BrokerProcess | None) -> dict[str, int]:
    """Every process of the run by name: the services, ``up`` itself and the embedded broker."""
    pids = {s.name: s.proc.pid for s in supervisor.services if s.proc is not None and s.running}
    pids["up"] = os.getpid()
    if broker is not None and broker.pid is not None:
        pids["broker"] = broker.pid
    return pids
