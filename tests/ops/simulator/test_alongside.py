"""The simulator beside ``interlock up``: what it starts, with which command line, and when the
run it drives is over; the kernel only calls it."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console

from interlock.companion import RunningStack
from interlock.services import ServicePlan
from interlock.settings import (
    KafkaSettings,
    MetricsSettings,
    Settings,
    SinkSettings,
    WebhookSettings,
)
from interlock.stackfile import StackState
from ops.simulator.alongside import SimulatorAlongside, offered_line
from ops.simulator.up_plan import DRIFT_RECONCILE, SimulationOptions, simulation_options

pytestmark = pytest.mark.unit


@dataclass
class FakeProc:
    returncode: int | None = None


@dataclass
class FakeChild:
    name: str
    running: bool = True
    proc: FakeProc = field(default_factory=FakeProc)


@dataclass
class FakeSupervisor:
    """Records what would be started instead of starting it."""

    started: list[dict[str, Any]] = field(default_factory=list)

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, *, restart: bool = True
    ) -> FakeChild:
        self.started.append({"name": name, "argv": argv, "env": env or {}, "restart": restart})
        return FakeChild(name)


def _settings(**update: Any) -> Settings:
    return Settings(
        _env_file=None,
        kafka=KafkaSettings(bootstrap_servers="k:9"),
        metrics=MetricsSettings(port=0),
        webhooks=WebhookSettings(port=0),
        **update,
    )


def _stack(tmp_path: Path, settings: Settings, duration: float | None = None) -> RunningStack:
    webhooks = ServicePlan(
        "webhooks", ["webhooks"], 1, {"webhooks health": "http://127.0.0.1:8080/healthz"}
    )
    return RunningStack(
        settings,
        FakeSupervisor(),  # type: ignore[arg-type]
        Console(file=io.StringIO(), width=200),
        threading.Event(),
        tmp_path,
        duration,
        [webhooks],
    )


def _run(alongside: SimulatorAlongside, stack: RunningStack) -> dict[str, Any]:
    env = alongside.prepare(stack)
    alongside.start(stack)
    (started,) = stack.supervisor.started  # type: ignore[attr-defined]
    assert started["env"].items() >= env.items()  # the simulator gets what the services get
    return started  # type: ignore[no-any-return]


def _value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_without_a_simulation_the_bare_fakes_run_restartable_and_always_available(
    tmp_path: Path,
) -> None:
    alongside = SimulatorAlongside(SimulationOptions())
    stack = _stack(tmp_path, _settings(), duration=30)
    started = _run(alongside, stack)
    assert started["name"] == "fake-erp-crm"
    assert started["restart"] is True
    argv = started["argv"]
    assert argv[argv.index("simulate") :][:3] == ["simulate", "--rate", "0"]
    assert _value(argv, "--unavailable") == "0"
    assert _value(argv, "--webhooks-url") == "http://127.0.0.1:8080"
    assert "--for" not in argv
    assert "--decide" not in argv
    assert not alongside.live
    # the run lasts what --for says; the fakes' end is not the run's
    assert alongside.run_limit(stack) == 30
    assert alongside.ended() is None
    state = alongside.record(StackState(1, "k:9", "kafka", 1, "http://127.0.0.1:8080"))
    assert state.erp_url == f"http://127.0.0.1:{_value(argv, '--erp-port')}"
    assert state.standard_source == "acme"
    assert state.standard_secret
    assert [label for label, _ in alongside.banner()] == ["fake ERP API", "fake CRM API"]


def test_with_an_erp_and_crm_configured_and_no_simulation_nothing_runs_beside(
    tmp_path: Path,
) -> None:
    sinks = SinkSettings.model_validate({"erp": {"base_url": "http://erp.example"}})
    alongside = SimulatorAlongside(SimulationOptions())
    stack = _stack(tmp_path, _settings(sinks=sinks))
    assert alongside.prepare(stack) == {}
    alongside.start(stack)
    assert stack.supervisor.started == []  # type: ignore[attr-defined]
    state = StackState(1, "k:9", "kafka", 1, "http://127.0.0.1:8080")
    assert alongside.record(state) == state
    assert alongside.banner() == []


def test_a_checked_drift_run_with_faults_passes_every_option_to_the_simulator(
    tmp_path: Path,
) -> None:
    options = SimulationOptions(
        simulate=50, seed=7, check=True, drift=True, faults=("crm:503:30@10",), dialect="hubspot"
    )
    alongside = SimulatorAlongside(options)
    stack = _stack(tmp_path, _settings(), duration=60)
    started = _run(alongside, stack)
    argv = started["argv"]
    assert started["name"] == "simulator"
    assert started["restart"] is False  # its ground truth cannot survive a restart
    assert (_value(argv, "--rate"), _value(argv, "--seed")) == ("50", "7")
    assert (_value(argv, "--for"), _value(argv, "--dialect")) == ("60", "hubspot")
    assert _value(argv, "--fault") == "crm:503:30@10"
    assert _value(argv, "--ground-truth") == str(tmp_path / "simulation.json")
    assert "--drift" in argv
    assert "--decide" in argv
    assert "--unavailable" not in argv
    assert started["env"]["INTERLOCK_PROCESSORS__RECONCILE_INTERVAL_S"] == "2"
    assert alongside.live
    # generation, drain, grace, a margin as long as the generation, and the drift SLAs' hold:
    # the longer SLA, one reconciliation interval and 5 s
    assert DRIFT_RECONCILE["reconcile_order_sla_s"] == 20
    assert alongside.run_limit(stack) == 60 + 20 + 90 + 60 + (20 + 2 + 5)
    assert [label for label, _ in alongside.banner()][-1] == "ground truth"


def test_the_simulators_end_is_the_runs_and_a_failure_fails_it(tmp_path: Path) -> None:
    alongside = SimulatorAlongside(SimulationOptions(simulate=10))
    stack = _stack(tmp_path, _settings())
    alongside.prepare(stack)
    alongside.start(stack)
    child = alongside.child
    assert isinstance(child, FakeChild)
    assert alongside.ended() is None
    child.running, child.proc.returncode = False, 3
    assert alongside.ended() == 1
    assert "simulator exited with code 3" in stack.console.file.getvalue()  # type: ignore[attr-defined]
    child.proc.returncode = 0
    assert alongside.ended() == 0


def test_drift_and_a_postgres_erp_without_a_simulation_are_ignored_and_said_so(
    tmp_path: Path,
) -> None:
    alongside = SimulatorAlongside(SimulationOptions(drift=True, erp="postgres"))
    stack = _stack(tmp_path, _settings())
    env = alongside.prepare(stack)
    out = stack.console.file.getvalue()  # type: ignore[attr-defined]
    assert "--erp postgres ignored" in out
    assert "--drift ignored" in out
    assert not any(k.startswith("INTERLOCK_PROCESSORS__") for k in env)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"erp": "mysql"}, "--erp is direct or postgres"),
        ({"cdc": "debezium"}, "only with --erp postgres"),
        ({"faults": ["erp:418:1@1"]}, "status 418"),
    ],
)
def test_wrong_options_are_refused_before_anything_starts(
    given: dict[str, Any], message: str
) -> None:
    chosen: dict[str, Any] = {
        "simulate": None,
        "seed": 1,
        "check": False,
        "drift": False,
        "dialect": "standard",
        "drain": 20.0,
        "erp": "direct",
        "cdc": "builtin",
        "faults": [],
    }
    with pytest.raises(typer.BadParameter, match=message):
        simulation_options(**{**chosen, **given})


def test_the_offered_load_is_read_from_the_ground_truth(tmp_path: Path) -> None:
    truth = tmp_path / "simulation.json"
    truth.write_text('{"meta": {"sent": 960, "generation_s": 10}}')
    assert offered_line(truth, 100) == (
        "simulated load: 960 actions in 10 s = 96/s (asked 100/s, as asked)"
    )
    below = offered_line(truth, 120)
    assert below is not None
    assert "below the asked rate" in below
    assert offered_line(tmp_path / "missing.json", 100) is None
