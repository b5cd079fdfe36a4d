"""The simulator beside ``interlock up``: its processes, the end of its run, its check.

``interlock up`` hands :class:`SimulatorAlongside` to the kernel as its
:class:`~interlock.companion.Companion`. Before the services start it picks the fake APIs'
ports and the webhook secrets (and starts the ERP database of ``--erp postgres``); once they
are ready it starts ``interlock simulate`` as a child; the run ends when the simulator has
drained; ``--check`` then evaluates the invariants. Without ``--simulate``, and with no ERP or
CRM configured, the fake ERP and CRM still run (the simulator at rate 0), so that work sent by
hand reaches an ERP and comes back.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from pathlib import Path

from rich.console import Console

from contracts.errors import InterlockError
from interlock.companion import RunningStack
from interlock.probes import wait_for_drain
from interlock.services import CannotStartError, near, reserve_port, webhooks_url
from interlock.settings import Settings
from interlock.stackfile import StackState
from interlock.supervisor import Service, Supervisor
from ops.simulator.cli import reconcile_hold_s, run_check
from ops.simulator.erp_database import ErpDatabase
from ops.simulator.invariants import render_results
from ops.simulator.up_plan import Simulation, SimulationOptions, drift_settings

__all__ = ["SimulatorAlongside", "check_run", "offered_line", "stack_intact"]


class SimulatorAlongside:
    """The simulator (or the bare fake ERP and CRM) as ``up``'s companion.

    Args:
        options: what ``up``'s command line asked of the simulator.
    """

    def __init__(self, options: SimulationOptions) -> None:
        self.options = options
        self.simulation: Simulation | None = None
        self.erp: ErpDatabase | None = None
        self.drifting = False
        self.env: dict[str, str] = {}
        self.settings: Settings | None = None
        """The run's settings as the simulator sees them (a drift run's short SLAs)."""
        self.child: Service | None = None
        self.console = Console()

    @property
    def live(self) -> bool:
        return self.options.simulating

    def prepare(self, stack: RunningStack) -> dict[str, str]:
        """Pick the fakes' ports and secrets, start the ERP database; the services' env."""
        options, settings, console = self.options, stack.settings, stack.console
        self.console = console
        configured = settings.sinks.erp.base_url or settings.sinks.crm.base_url
        if options.simulating or not configured:
            self.simulation = Simulation.create(
                stack.state_dir,
                reserve_port(near(settings.webhooks.port, 1), "fake ERP API"),
                reserve_port(near(settings.webhooks.port, 2), "fake CRM API"),
            )
        if options.erp == "postgres" and options.simulating:
            self.erp = ErpDatabase(options.cdc)
            try:  # before the services: their free ports are picked after its own
                self.erp.start(settings, stack.supervisor)
            except InterlockError as exc:
                raise CannotStartError(str(exc), "the ERP database") from exc
        elif options.erp == "postgres":
            console.print("[yellow]--erp postgres ignored[/]: it applies to --simulate only")
        self.env = self.simulation.env() if self.simulation is not None else {}
        self.drifting = options.drift and options.simulating
        if self.drifting:
            settings, reconcile_env = drift_settings(settings)
            self.env = {**self.env, **reconcile_env}
        elif options.drift:
            console.print("[yellow]--drift ignored[/]: it applies to --simulate only")
        self.settings = settings
        return self.env

    def start(self, stack: RunningStack) -> None:
        """Start ``interlock simulate`` against the ready stack (at rate 0: the bare fakes)."""
        if self.simulation is None:
            return
        settings = stack.settings
        kafka = settings.kafka
        self.child = stack.supervisor.start(
            "simulator" if self.options.simulating else "fake-erp-crm",
            [sys.executable, "-m", "interlock.cli", *self.simulator_args(stack)],
            {
                "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers or "",
                "INTERLOCK_KAFKA__BROKER_KIND": kafka.broker_kind,
                "INTERLOCK_KAFKA__CLIENT_ID": f"{kafka.client_id}-simulator",
                "INTERLOCK_LOG_LEVEL": settings.log_level,
                **self.env,
            },
            # the simulator's ground truth cannot survive a restart; the bare fakes can
            restart=not self.options.simulating,
        )

    def simulator_args(self, stack: RunningStack) -> list[str]:
        """The ``interlock simulate`` command line of this run."""
        options, simulation = self.options, self.simulation
        assert simulation is not None
        args = [
            "simulate",
            "--rate", f"{options.simulate or 0.0:g}",
            "--seed", str(options.seed),
            "--webhooks-url", webhooks_url(stack.plans),
            "--erp-port", str(simulation.erp_port),
            "--crm-port", str(simulation.crm_port),
            "--ground-truth", str(simulation.ground_truth),
            "--dialect", options.dialect,
            "--drain", f"{options.drain:g}",
            "--drain-grace", f"{options.drain_grace:g}",
        ]  # fmt: skip
        if stack.duration and options.simulating:
            args += ["--for", f"{stack.duration:g}"]
        if not options.simulating:
            args += ["--unavailable", "0"]
        if self.erp is not None:
            args += ["--erp-dsn", self.erp.dsn]
        if self.drifting:
            args += ["--drift"]
        for fault in options.faults if options.simulating else ():
            args += ["--fault", fault]
        if options.check and options.simulating:
            args += ["--decide"]  # the invariants cover the exception desk's decisions
        return args

    def banner(self) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = []
        if self.simulation is not None:
            rows += [("fake ERP API", self.simulation.erp_url)]
            rows += [("fake CRM API", self.simulation.crm_url)]
            if self.options.simulating:
                rows += [("ground truth", str(self.simulation.ground_truth))]
        rows += list((self.erp.banner if self.erp is not None else {}).items())
        return rows

    def record(self, state: StackState) -> StackState:
        """The fakes' URLs and the Standard Webhooks secret, for ``interlock send``."""
        if self.simulation is None:
            return state
        return dataclasses.replace(
            state,
            erp_url=self.simulation.erp_url,
            crm_url=self.simulation.crm_url,
            standard_source="acme",
            standard_secret=self.simulation.standard_secret,
        )

    def run_limit(self, stack: RunningStack) -> float | None:
        """With a simulation, ``--for`` bounds the generation; the run ends when the simulator
        has drained (or a little after, should it hang)."""
        limit = stack.duration
        if not limit or self.child is None or not self.options.simulating:
            return limit
        # the simulator stops generating after --for, then keeps its fake APIs for --drain
        limit += self.options.drain + self.options.drain_grace + max(60.0, limit)
        if self.drifting:
            assert self.settings is not None
            limit += reconcile_hold_s(self.settings)
        return limit

    def ended(self) -> int | None:
        """The simulator's end is the run's; the bare fakes are restarted like a service."""
        child = self.child
        if child is None or not self.options.simulating or child.running:
            return None
        code = child.proc.returncode if child.proc else None
        if code != 0:
            self.console.print(f"[red]{child.name} exited with code {code}[/]")
            return 1
        return 0

    def report(self, console: Console) -> None:
        """What the simulator offered, against the asked rate."""
        if self.simulation is None or not self.options.simulate:
            return
        offered = offered_line(self.simulation.ground_truth, self.options.simulate)
        if offered is not None:
            console.print(offered)

    def verdict(self, stack: RunningStack) -> bool:
        """With ``--check``: once the consumers caught up, whether every invariant holds."""
        if not (self.options.check and self.options.simulating):
            return True
        if not stack_intact(stack.supervisor, stack.stop, stack.console):
            return False
        if self.simulation is None:
            return True
        lag_url = next(
            (
                u
                for p in stack.plans
                for k, u in p.endpoints.items()
                if k.startswith("lag exporter")
            ),
            None,
        )
        if lag_url is not None:
            wait_for_drain(lag_url, self.options.settle_timeout, stack.console, stack.stop)
        assert self.settings is not None
        return check_run(self.settings, self.simulation.ground_truth, stack.console)

    def close(self) -> None:
        if self.erp is not None:
            self.erp.close()


def check_run(settings: Settings, ground_truth: Path, console: Console) -> bool:
    """Evaluate the invariants, show them, and write them beside the ground truth."""
    results = run_check(settings, ground_truth)
    render_results(results, console)
    # beside the ground truth, for tools that read the verdict (ops.chaos)
    ground_truth.with_name("check.json").write_text(
        json.dumps([dataclasses.asdict(r) for r in results], indent=1)
    )
    return all(r.passed for r in results)


def offered_line(ground_truth: Path, rate: float) -> str | None:
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


def stack_intact(supervisor: Supervisor, stop: threading.Event, console: Console) -> bool:
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
