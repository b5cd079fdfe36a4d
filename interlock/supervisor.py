"""Runs Interlock's services as child processes and stops all of them, in order, on request.

Each child is tied to this process with ``PR_SET_PDEATHSIG``, so nothing outlives a crash of
the parent; a normal stop sends SIGTERM in reverse start order and SIGKILL after a grace period.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Service", "Supervisor"]

log = logging.getLogger(__name__)


def _child_setup() -> None:  # pragma: no cover - runs between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setpgrp()  # a terminal's Ctrl-C reaches the supervisor, which stops children in order


@dataclass
class Service:
    """One child process: a name, its command line and where its log goes."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    """Starts services, notices when one dies, and stops them all."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.services: list[Service] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Service:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        service = Service(name, argv, env or {}, self.log_dir / f"{name}.log")
        assert service.log_path is not None
        with service.log_path.open("ab") as out:
            service.proc = subprocess.Popen(
                argv,
                env={**os.environ, **service.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_child_setup,
            )
        self.services.append(service)
        log.info("started %s (pid %d)", name, service.proc.pid)
        return service

    def dead(self) -> list[Service]:
        """Services that have exited on their own."""
        return [s for s in self.services if s.proc is not None and s.proc.poll() is not None]

    def stop_all(self, grace: float = 20.0) -> dict[str, int | None]:
        """SIGTERM every child in reverse order, SIGKILL what is left after ``grace`` seconds."""
        codes: dict[str, int | None] = {}
        for service in reversed(self.services):
            if service.running and service.proc is not None:
                service.proc.send_signal(signal.SIGTERM)
        for service in reversed(self.services):
            proc = service.proc
            if proc is None:
                continue
            try:
                codes[service.name] = proc.wait(grace)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs: killing it", service.name, grace)
                proc.kill()
                codes[service.name] = proc.wait(5)
        return codes
