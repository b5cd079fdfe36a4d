"""Where a running ``interlock up`` is: a state file other commands read when nothing is configured.

``up`` writes ``.interlock/stack.json`` (mode 0600: it holds the run's webhook secrets) once its
services are planned and removes it when it stops. ``trace``, ``dlq``, ``topics``, ``send`` and
``simulate check`` started in another shell of the same directory, with no Kafka configured,
use the stack it describes and say so in one line. ``INTERLOCK_STACK_FILE`` points elsewhere.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from interlock.settings import Settings

__all__ = ["StackState", "attach", "read_stack", "remove_stack", "stack_path", "write_stack"]

STACK_FILE_ENV = "INTERLOCK_STACK_FILE"
DEFAULT_STACK_FILE = Path(".interlock/stack.json")


@dataclass
class StackState:
    """What a running ``up`` offers: its broker, its services' URLs and the run's secrets."""

    pid: int
    bootstrap_servers: str
    broker_kind: str
    partitions: int
    webhooks_url: str
    metrics: dict[str, str] = field(default_factory=dict)
    erp_url: str | None = None
    crm_url: str | None = None
    standard_source: str | None = None
    standard_secret: str | None = None
    log_dir: str | None = None

    def export_line(self) -> str:
        """The shell line that points another shell's commands at this stack explicitly."""
        return f"export INTERLOCK_KAFKA__BOOTSTRAP_SERVERS={self.bootstrap_servers}"


def stack_path() -> Path:
    """The state file: ``$INTERLOCK_STACK_FILE``, else ``.interlock/stack.json`` here."""
    configured = os.environ.get(STACK_FILE_ENV)
    return Path(configured) if configured else DEFAULT_STACK_FILE


def write_stack(state: StackState, path: Path | None = None) -> Path:
    """Write ``state`` atomically, readable by its owner only."""
    target = path or stack_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(state), out, indent=2)
    partial.replace(target)
    return target


def remove_stack(pid: int, path: Path | None = None) -> None:
    """Remove the state file if it is the one process ``pid`` wrote."""
    target = path or stack_path()
    state = _load(target)
    if state is not None and state.pid == pid:
        target.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True


def _load(path: Path) -> StackState | None:
    try:
        raw: dict[str, Any] = json.loads(path.read_text())
        return StackState(**raw)
    except (OSError, ValueError, TypeError):
        return None


def read_stack(path: Path | None = None) -> StackState | None:
    """The running stack described by the state file; None when absent or its ``up`` is gone."""
    state = _load(path or stack_path())
    if state is None or not _alive(state.pid):
        return None
    return state


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def attach(settings: Settings, say: Callable[[str], None] = _stderr) -> Settings:
    """``settings`` pointed at the running ``up`` when they name no Kafka; else unchanged."""
    if not settings.embedded:
        return settings
    path = stack_path()
    state = read_stack(path)
    if state is None:
        return settings
    say(
        f"using the stack of `interlock up` (pid {state.pid}): Kafka at "
        f"{state.bootstrap_servers} (from {path})"
    )
    kafka = settings.kafka.model_copy(
        update={"bootstrap_servers": state.bootstrap_servers, "broker_kind": state.broker_kind}
    )
    topics = settings.topics.model_copy(update={"partitions": state.partitions})
    return settings.model_copy(update={"kafka": kafka, "topics": topics})
