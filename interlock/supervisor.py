"""Runs Interlock's children, restarts the ones that die, and stops all of them in order.

One supervisor for every child of ``interlock up``: the services, the simulator and the embedded
broker. A child that dies is restarted after a backoff that doubles with each crash and is capped
(:class:`RestartPolicy`), as systemd's ``Restart=always`` or compose's ``restart:
unless-stopped`` would in production; only a crash loop (more than ``max_restarts`` crashes
within ``window_s``) makes it give up, and then :attr:`Supervisor.failed` says why. What happens
is reported as :class:`ChildEvent` to one callback (``up`` prints, logs and counts them).

Each service process is tied to this process with ``PR_SET_PDEATHSIG``, so nothing outlives a
crash of the parent; a normal stop sends SIGTERM in reverse start order and SIGKILL after a
grace period.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

__all__ = [
    "Child",
    "ChildEvent",
    "RestartPolicy",
    "Service",
    "Supervisor",
    "describe_exit",
]

log = logging.getLogger(__name__)


def _child_setup() -> None:  # pragma: no cover - runs between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setpgrp()  # a terminal's Ctrl-C reaches the supervisor, which stops children in order


def describe_exit(code: int | None) -> str:
    """How a process ended, in words: ``exited with code 3`` or ``killed by SIGKILL``."""
    if code is None:
        return "ended (exit status unknown)"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


@dataclass(frozen=True)
class RestartPolicy:
    """When to restart a child that died, and when to stop trying.

    The n-th crash within ``window_s`` waits ``backoff_s * 2**(n-1)``, at most ``backoff_max_s``;
    crash number ``max_restarts + 1`` within the window is a crash loop: no more restarts.
    """

    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    max_restarts: int = 5
    window_s: float = 300.0

    def delay(self, crashes: Sequence[float], now: float) -> float | None:
        """Seconds to wait before the next start, given the crash times so far; None: give up."""
        recent = sum(1 for at in crashes if now - at <= self.window_s)
        if recent > self.max_restarts:
            return None
        return float(min(self.backoff_max_s, self.backoff_s * 2 ** max(0, recent - 1)))


class Child(Protocol):
    """What the supervisor needs of a child: start it (again), see it end, stop it."""

    name: str

    @property
    def pid(self) -> int | None: ...

    @property
    def log_path(self) -> Path | None: ...

    def launch(self) -> None:
        """Start the child; called again to restart it after it died."""

    def returncode(self) -> int | None:
        """The exit status once it ended (negative: killed by that signal); None while it runs."""

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM)."""

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` for it to end, SIGKILL it after that; its exit status."""


@dataclass
class Service:
    """One child process: a name, its command line and where its log goes."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def launch(self) -> None:
        assert self.log_path is not None
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_child_setup,
            )

    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    def terminate(self) -> None:
        if self.running and self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int | None:
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0fs: killing it", self.name, timeout)
            self.proc.kill()
            return self.proc.wait(5)


EventKind = Literal["died", "restarted", "gave_up"]


@dataclass(frozen=True)
class ChildEvent:
    """Something that happened to a supervised child, as the live view and the log tell it."""

    kind: EventKind
    name: str
    exit_code: int | None = None
    restarts: int = 0
    """Restarts of this child so far (including this one for ``restarted``)."""
    delay_s: float | None = None
    pid: int | None = None
    log_path: Path | None = None
    error: str | None = None
    """Why a restart failed to start the child (the child then counts as crashed again)."""

    def describe(self) -> str:
        """One line for the console and the log."""
        if self.kind == "restarted":
            return f"{self.name} restarted (pid {self.pid}, restart {self.restarts})"
        how = describe_exit(self.exit_code) if self.error is None else f"failed: {self.error}"
        where = f"; log {self.log_path}" if self.log_path is not None else ""
        if self.kind == "died":
            return f"{self.name} {how}; restart {self.restarts + 1} in {self.delay_s:.1f} s{where}"
        return f"{self.name} {how}, crash loop: giving up after {self.restarts} restarts{where}"


@dataclass
class _Watched:
    child: Child
    restart: bool
    stop_last: bool = False
    crashes: list[float] = field(default_factory=list)
    restarts: int = 0
    restart_at: float | None = None
    given_up: bool = False


class Supervisor:
    """Starts children, restarts those that die (per :class:`RestartPolicy`), stops them all.

    Args:
        log_dir: where each service's log goes (``<name>.log``).
        policy: backoff and crash-loop limits.
        on_event: told of every death, restart and give-up (from the watching thread).
        clock: monotonic seconds (a test may pass a fake one to :meth:`check`).
    """

    def __init__(
        self,
        log_dir: Path,
        policy: RestartPolicy | None = None,
        on_event: Callable[[ChildEvent], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log_dir = log_dir
        self.policy = policy or RestartPolicy()
        self.on_event = on_event
        self.failed: str | None = None
        """Set when a child crash-looped: the stack cannot be trusted any more."""
        self._clock = clock
        self._watched: list[_Watched] = []
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def services(self) -> list[Service]:
        """The service processes started with :meth:`start`."""
        with self._lock:
            return [w.child for w in self._watched if isinstance(w.child, Service)]

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, *, restart: bool = True
    ) -> Service:
        """Start a service process; ``restart=False`` for a one-shot child (the simulator)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        service = Service(name, argv, env or {}, self.log_dir / f"{name}.log")
        service.launch()
        self.adopt(service, restart=restart)
        log.info("started %s (pid %s)", name, service.pid)
        return service

    def adopt(self, child: Child, *, restart: bool = True, stop_last: bool = False) -> None:
        """Supervise a child that is already running (``stop_last``: the embedded broker, which
        the other children need until they have stopped)."""
        with self._lock:
            self._watched.append(_Watched(child, restart, stop_last))

    def restarts(self, name: str) -> int:
        with self._lock:
            return sum(w.restarts for w in self._watched if w.child.name == name)

    def all_running(self) -> bool:
        """True when every child that should run does (none dead or waiting for its restart)."""
        with self._lock:
            return all(w.child.returncode() is None for w in self._watched if w.restart)

    def check(self) -> list[ChildEvent]:
        """One pass: notice deaths, schedule restarts, make the due ones; what happened."""
        events: list[ChildEvent] = []
        with self._lock:
            for watched in self._watched:
                if self._stopping.is_set():
                    break
                if watched.restart and not watched.given_up:
                    events.extend(self._check_one(watched))
        for event in events:
            log.log(logging.INFO if event.kind == "restarted" else logging.ERROR, event.describe())
            if self.on_event is not None:
                self.on_event(event)
        return events

    def _check_one(self, watched: _Watched) -> list[ChildEvent]:
        child, now = watched.child, self._clock()
        if watched.restart_at is None:
            code = child.returncode()
            if code is None:
                return []
            return [self._crashed(watched, now, code)]
        if now < watched.restart_at:
            return []
        watched.restart_at = None
        watched.restarts += 1
        try:
            child.launch()
        except Exception as exc:  # a child that cannot start counts as crashed again
            return [self._crashed(watched, now, None, f"{type(exc).__name__}: {exc}")]
        return [ChildEvent("restarted", child.name, restarts=watched.restarts, pid=child.pid)]

    def _crashed(
        self, watched: _Watched, now: float, code: int | None, error: str | None = None
    ) -> ChildEvent:
        watched.crashes.append(now)
        delay = self.policy.delay(watched.crashes, now)
        child = watched.child
        if delay is None:
            watched.given_up = True
            last = describe_exit(code) if error is None else error
            self.failed = self.failed or (
                f"{child.name} crashed {len(watched.crashes)} times within "
                f"{self.policy.window_s:g} s (last: {last})"
            )
        else:
            watched.restart_at = now + delay
        return ChildEvent(
            "gave_up" if delay is None else "died",
            child.name,
            exit_code=code,
            restarts=watched.restarts,
            delay_s=delay,
            log_path=child.log_path,
            error=error,
        )

    def watch(self, interval: float = 0.25) -> None:
        """Check the children every ``interval`` seconds from a thread, until :meth:`stop_all`."""

        def loop() -> None:
            while not self._stopping.wait(interval):
                try:
                    self.check()
                except Exception:  # the watcher must outlive any one bad check
                    log.exception("supervisor check failed")

        self._thread = threading.Thread(target=loop, name="supervisor", daemon=True)
        self._thread.start()

    def stop_all(self, grace: float = 20.0) -> dict[str, int | None]:
        """Stop watching; SIGTERM every child in reverse order, SIGKILL what is left after
        ``grace`` seconds. Returns each child's exit status (0 for an end by that SIGTERM)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(60)
        with self._lock:
            watched = list(reversed(self._watched))
        codes: dict[str, int | None] = {}
        for last in (False, True):
            children = [w.child for w in watched if w.stop_last is last]
            started = time.monotonic()
            for child in children:
                if child.returncode() is None:
                    child.terminate()
            for child in children:
                code = child.wait(grace)
                # ended by the SIGTERM asked of it (one still starting has no handler yet): a
                # clean stop, as systemd counts it
                codes[child.name] = 0 if code == -signal.SIGTERM else code
                log.info("%s stopped after %.1f s", child.name, time.monotonic() - started)
        return codes
