"""What ``interlock up --simulate`` asks of the simulator, and what it shares with the services.

The options are the simulator's (``--simulate``, ``--check``, ``--drift``, ``--erp``, ...):
the kernel's ``up`` never sees them. :class:`Simulation` holds the ports and secrets the
simulator and the services it talks to must agree on.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import typer

from interlock.broker import free_port
from interlock.settings import Settings
from ops.simulator.outage import parse_outage

__all__ = [
    "DRIFT_RECONCILE",
    "Simulation",
    "SimulationOptions",
    "drift_settings",
    "simulation_options",
]


@dataclass
class SimulationOptions:
    """What ``interlock up`` was asked to simulate beside the stack."""

    simulate: float | None = None
    """Actions per second of the simulated company; None: only the fake ERP and CRM."""
    seed: int = 1
    check: bool = False
    dialect: str = "standard"
    drain: float = 20.0
    drain_grace: float = 90.0
    """How much longer than ``drain`` the simulator may keep its APIs up for a lagging stack."""
    settle_timeout: float = 180.0
    """Longest wait for the consumer groups to catch up before the check."""
    erp: Literal["direct", "postgres"] = "direct"
    """Where the simulated ERP keeps its rows: ``direct`` publishes Debezium-shaped changes to
    Kafka itself; ``postgres`` writes them into a real PostgreSQL database read by CDC."""
    cdc: Literal["builtin", "debezium"] = "builtin"
    """With ``erp="postgres"``: the built-in source or Debezium on Kafka Connect."""
    faults: tuple[str, ...] = ()
    """Scheduled outages of the fake APIs, passed to the simulator (``--fault``)."""
    drift: bool = False
    """With ``simulate``: inject reconciliation drift at seeded moments (``--drift``); the
    children get :data:`DRIFT_RECONCILE` (unless set), so its SLAs pass within the run."""

    @property
    def simulating(self) -> bool:
        return self.simulate is not None


def simulation_options(
    *,
    simulate: float | None,
    seed: int,
    check: bool,
    drift: bool,
    dialect: str,
    drain: float,
    erp: str,
    cdc: str,
    faults: list[str],
) -> SimulationOptions:
    """The options of ``up``'s command line, validated before anything starts.

    Raises:
        typer.BadParameter: a wrong ``--erp``/``--cdc`` combination or ``--fault``.
    """
    if erp not in ("direct", "postgres"):
        raise typer.BadParameter("--erp is direct or postgres")
    if cdc not in ("builtin", "debezium") or (cdc == "debezium" and erp != "postgres"):
        raise typer.BadParameter("--cdc is builtin or debezium, and only with --erp postgres")
    for spec in faults:
        try:
            parse_outage(spec)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--fault") from exc
    return SimulationOptions(
        simulate=simulate,
        seed=seed,
        check=check,
        dialect=dialect,
        drain=drain,
        erp="postgres" if erp == "postgres" else "direct",
        cdc="debezium" if cdc == "debezium" else "builtin",
        faults=tuple(faults),
        drift=drift,
    )


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

    @property
    def erp_url(self) -> str:
        return f"http://127.0.0.1:{self.erp_port}"

    @property
    def crm_url(self) -> str:
        return f"http://127.0.0.1:{self.crm_port}"

    def env(self) -> dict[str, str]:
        """What every service needs to take the simulator's webhooks and call its fakes."""
        return {
            "INTERLOCK_WEBHOOKS__HUBSPOT__CLIENT_SECRET": self.hubspot_secret,
            "INTERLOCK_WEBHOOKS__HUBSPOT__APP_ID": self.app_id,
            "INTERLOCK_WEBHOOKS__STANDARD__SECRETS": json.dumps({"acme": self.standard_secret}),
            "INTERLOCK_SINKS__ERP__BASE_URL": self.erp_url,
            "INTERLOCK_SINKS__CRM__BASE_URL": self.crm_url,
        }
