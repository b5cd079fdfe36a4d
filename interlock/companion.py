"""What ``interlock up`` runs beside its services, without knowing what it is.

The composition root hands ``up`` a :class:`Companion` (the simulator with its fake ERP and CRM
APIs, in Interlock's own CLI); ``up`` calls it at each step of the run and owns none of its
options. The kernel may not import ``ops``, so the simulator plugs in through this Protocol.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from rich.console import Console

from interlock.services import ServicePlan
from interlock.settings import Settings
from interlock.stackfile import StackState
from interlock.supervisor import Supervisor

__all__ = ["Companion", "NothingAlongside", "RunningStack"]


@dataclass
class RunningStack:
    """What ``up`` has running, handed to its companion at each step."""

    settings: Settings
    """The settings of the run (on the embedded broker: pointed at it)."""
    supervisor: Supervisor
    console: Console
    stop: threading.Event
    """Set by SIGINT or SIGTERM."""
    state_dir: Path
    """Where the run keeps its state: logs, the broker's data, the stack file's neighbours."""
    duration: float | None = None
    """What ``--for`` asked: how long the run lasts (None: until a signal)."""
    plans: list[ServicePlan] = field(default_factory=list)
    """The services, once they are started."""


class Companion(Protocol):
    """Something ``up`` runs beside its services, step by step, as one with the stack."""

    @property
    def live(self) -> bool:
        """Whether the run gets a live view even when no terminal is watching."""
        ...

    def prepare(self, stack: RunningStack) -> dict[str, str]:
        """Before the services start: start what they depend on; the environment of every child.

        Raises:
            CannotStartError: what it needs cannot start (``up`` exits 2).
        """
        ...

    def start(self, stack: RunningStack) -> None:
        """Once the services are ready: start its own processes under ``stack.supervisor``."""
        ...

    def banner(self) -> list[tuple[str, str]]:
        """Rows for ``up``'s banner: what it serves and where."""
        ...

    def record(self, state: StackState) -> StackState:
        """``state``, the stack file's content, with what other commands need of it."""
        ...

    def run_limit(self, stack: RunningStack) -> float | None:
        """How long the run lasts, given ``stack.duration`` (None: until a signal)."""
        ...

    def ended(self) -> int | None:
        """Polled while the stack runs: None to go on, else the run is over with this exit code."""
        ...

    def report(self, console: Console) -> None:
        """After the run, before the stack stops: what it did."""
        ...

    def verdict(self, stack: RunningStack) -> bool:
        """After the run, before the stack stops: whether the run passes its checks."""
        ...

    def close(self) -> None:
        """After the services stopped: release what :meth:`prepare` started."""
        ...


class NothingAlongside:
    """The companion of a bare stack: nothing runs beside the services."""

    live = False

    def prepare(self, stack: RunningStack) -> dict[str, str]:
        return {}

    def start(self, stack: RunningStack) -> None:
        pass

    def banner(self) -> list[tuple[str, str]]:
        return []

    def record(self, state: StackState) -> StackState:
        return state

    def run_limit(self, stack: RunningStack) -> float | None:
        return stack.duration

    def ended(self) -> int | None:
        return None

    def report(self, console: Console) -> None:
        pass

    def verdict(self, stack: RunningStack) -> bool:
        return True

    def close(self) -> None:
        pass
