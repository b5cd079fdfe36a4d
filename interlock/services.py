"""The services ``interlock up`` runs: their sub-commands, ports, endpoints and environment.

Every service gets a fixed port derived from ``metrics.port`` and ``webhooks.port`` (0: any free
port), so scrape configs keep working across runs; a fixed port that is taken fails at once.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from interlock.broker import free_port
from interlock.settings import Settings

__all__ = [
    "CannotStartError",
    "PortBusyError",
    "ServicePlan",
    "child_env",
    "console_sign_in",
    "consumers",
    "metrics_url",
    "near",
    "plan_services",
    "reserve_port",
    "webhooks_url",
]


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


class CannotStartError(Exception):
    """Something the stack needs cannot start: ``up`` says what, stops what it started, exits 2.

    Args:
        message: why.
        what: what could not start (``"the ERP database"``); empty for the stack as a whole.
    """

    def __init__(self, message: str, what: str = "") -> None:
        super().__init__(message)
        self.what = what


class PortBusyError(CannotStartError):
    """A fixed port of the stack is taken by another process."""


def reserve_port(preferred: int, what: str = "a service") -> int:
    """``preferred`` (0: any free port, never one given to another service of this process); a
    fixed port stays fixed, so scrape configs hold.

    Raises:
        PortBusyError: ``preferred`` is in use.
    """
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


def near(base: int, offset: int) -> int:
    """The port ``offset`` above ``base``; 0 (any free port) when ``base`` is 0."""
    return base + offset if base else 0


def metrics_url(port: int) -> str:
    """The ``/metrics`` URL of a service on this machine."""
    return f"http://127.0.0.1:{port}/metrics"


def _worker_plans(settings: Settings, workers: int) -> list[ServicePlan]:
    """One Faust worker, or ``workers`` of them (worker-1..N) in one group, each its own dir."""
    if workers <= 1:
        port = reserve_port(near(settings.metrics.port, 1), "worker metrics")
        return [ServicePlan("worker", ["worker"], port, {"worker metrics": metrics_url(port)})]
    plans = []
    for i in range(1, workers + 1):
        port = reserve_port(near(settings.metrics.port, 10 + i), f"worker-{i} metrics")
        data_dir = str(Path(settings.processors.data_dir) / f"worker-{i}")
        plans.append(
            ServicePlan(
                f"worker-{i}",
                ["worker"],
                port,
                {f"worker-{i} metrics": metrics_url(port)},
                {"INTERLOCK_PROCESSORS__DATA_DIR": data_dir},
            )
        )
    return plans


def _console_plan(settings: Settings, state_dir: Path) -> ServicePlan:
    """The exception desk's console: on ``console.port`` if set, else webhook port + 10.

    With no console users configured it is told to create ``admin`` with a random password,
    written to ``<state dir>/console-admin.txt`` (see :func:`console_sign_in`).
    """
    config = settings.console
    wanted = config.port if "port" in config.model_fields_set else near(settings.webhooks.port, 10)
    port = reserve_port(wanted, "console")
    args = ["console", "--port", str(port)]
    env: dict[str, str] = {}
    if not config.users and not config.users_file:
        args += ["--first-admin", str(state_dir / "console-admin.txt")]
        env["INTERLOCK_CONSOLE__USERS_FILE"] = str(state_dir / "console-users.yaml")
    url = f"http://{config.host}:{port}"
    return ServicePlan(
        "console",
        args,
        reserve_port(near(settings.metrics.port, 7), "console metrics"),
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
    webhooks_port = reserve_port(settings.webhooks.port, "webhook receiver")
    sinks_port = reserve_port(near(base, 2), "sinks metrics")
    cdc_port = reserve_port(near(base, 3), "cdc metrics")
    lag_port = reserve_port(near(base, 4), "lag exporter")
    url = f"http://{settings.webhooks.host}:{webhooks_port}"
    return [
        *_worker_plans(settings, workers),
        ServicePlan(
            "webhooks",
            ["webhooks", "--port", str(webhooks_port)],
            reserve_port(near(base, 5), "webhooks metrics"),
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
            {"sinks metrics": metrics_url(sinks_port)},
        ),
        ServicePlan(
            "cdc",
            ["cdc"],
            cdc_port,
            {"cdc metrics": metrics_url(cdc_port)},
        ),
        ServicePlan(
            "lag-exporter",
            ["lag-exporter", "--port", str(lag_port)],
            lag_port,
            {"lag exporter metrics": metrics_url(lag_port)},
            consumes=False,
        ),
        _console_plan(settings, state_dir),
    ]


def webhooks_url(plans: list[ServicePlan]) -> str:
    """The base URL of the webhook receiver among ``plans``."""
    webhooks = next(p for p in plans if p.name == "webhooks")
    return webhooks.endpoints["webhooks health"].removesuffix("/healthz")


def consumers(settings: Settings, plans: list[ServicePlan]) -> dict[str, str]:
    """The services whose readiness ``up`` waits for, with their metrics URL."""
    return {
        plan.name: metrics_url(plan.metrics_port)
        for plan in plans
        if plan.consumes and (plan.name != "webhooks" or settings.webhooks.mapper)
    }


def child_env(settings: Settings, plan: ServicePlan) -> dict[str, str]:
    """The environment of one service: the run's broker and storage, its own port and client id."""
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
