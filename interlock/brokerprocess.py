"""A broker child process on loopback: the base of the embedded Apache Kafka and Tansu brokers.

:class:`BrokerProcess` starts, waits for metadata, stops and restarts one broker process tied to
its parent (``PR_SET_PDEATHSIG``: if the parent dies, the broker dies too);
:mod:`interlock.apache_kafka` and :mod:`interlock.tansu` say what to run.
:mod:`interlock.broker` chooses between them.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Literal

from confluent_kafka.admin import AdminClient
from ephemeral_port_reserve import reserve

from contracts.errors import InterlockError, Reason

__all__ = [
    "BrokerKind",
    "BrokerProcess",
    "BrokerStartError",
    "die_with_parent",
    "free_port",
    "stop_child",
]

log = logging.getLogger(__name__)

BrokerKind = Literal["kafka", "tansu"]


class BrokerStartError(InterlockError):
    """The embedded broker did not start or did not answer metadata in time."""

    reason = Reason.BROKER_UNAVAILABLE


_HANDED_OUT: set[tuple[str, int]] = set()
"""Ports ``free_port`` gave out in this process: a port is free until whoever got it binds it,
and the kernel may offer the same one again meanwhile (``up`` once gave two services one)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now, and not one this process gave out before.

    The port is left in TIME_WAIT (``ephemeral_port_reserve``): for the next minute the kernel
    gives it to no other process that asks for a free port, while the server it is meant for
    binds it (every server here sets SO_REUSEADDR). A port merely found free could go to
    another process before a slow-starting server bound it: a test's receiver once answered
    on a port a parallel test's receiver had taken meanwhile.
    """
    port = reserve(host)
    while (host, port) in _HANDED_OUT:
        port = reserve(host)
    _HANDED_OUT.add((host, port))
    return port


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """``preexec_fn`` of a broker child: it gets SIGTERM when we die, and its own group."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setpgrp()  # Ctrl-C in a terminal goes to us, and we stop the broker in order


def stop_child(
    proc: subprocess.Popen[bytes] | None, timeout: float, kill_timeout: float | None = None
) -> None:
    """Stop a child process: SIGTERM, then SIGKILL if it does not exit within ``timeout``.

    ``kill_timeout`` (default ``timeout``) bounds the wait after the SIGKILL.
    """
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout if kill_timeout is None else kill_timeout)


class BrokerProcess:
    """A broker child process on loopback: start, wait for metadata, stop; a context manager.

    It is also a :class:`interlock.supervisor.Child`: ``interlock up`` supervises it like every
    other child, and a restart (:meth:`launch`) brings it back on the same port and, for Apache
    Kafka, the same data directory, so the services' clients reconnect by themselves. Tansu
    comes back empty (memory storage): there a restart cannot heal the run, but the services
    then fail loudly rather than hang.
    """

    kind: BrokerKind
    version: str = ""
    name: str = "broker"

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port(host)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    def command(self) -> list[str]:
        """The command line of the broker process."""
        raise NotImplementedError

    def prepare(self) -> Path:
        """Make what the broker needs before it starts; returns the path of its log file."""
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self, timeout: float = 60.0) -> BrokerProcess:
        """Start the broker and wait until it answers a metadata request."""
        self.spawn()
        self.wait_ready(timeout)
        return self

    def spawn(self) -> None:
        """Start the broker process without waiting for it (the nodes of a cluster answer only
        once a quorum of them runs: they are spawned together, then waited for)."""
        self._log_path = self.prepare()
        with self._log_path.open("ab") as log_file:
            self._proc = subprocess.Popen(
                self.command(),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
                env=self.environment(),
            )

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def launch(self) -> None:
        """(Re)start on the same port and data directory, waiting until it answers metadata."""
        self.stop()
        self.start()

    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def terminate(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()

    def wait(self, timeout: float) -> int | None:
        proc = self._proc
        self.stop(timeout)
        code = proc.returncode if proc is not None else None
        # a JVM stopped by SIGTERM runs its shutdown hooks, then exits 143: a clean stop
        return 0 if code == 128 + signal.SIGTERM else code

    def wait_ready(self, timeout: float) -> None:
        """Wait until the spawned broker answers a metadata request (stopped, and an error,
        if it exits or does not answer in time)."""
        self._wait_metadata(timeout)
        log.info(
            "embedded %s broker ready on %s (pid %s)", self.kind, self.bootstrap_servers, self.pid
        )

    def _wait_metadata(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0})
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                code = self._proc.returncode
                self.stop()
                raise BrokerStartError(
                    f"embedded {self.kind} broker exited with code {code}: {self.log_tail()}"
                )
            try:
                metadata = admin.list_topics(timeout=1.0)
                if metadata.brokers:
                    return
            except Exception as exc:  # librdkafka raises KafkaException until it answers
                last_error = exc
            time.sleep(0.1)
        self.stop()
        raise BrokerStartError(
            f"embedded {self.kind} broker on {self.bootstrap_servers} did not answer metadata "
            f"within {timeout:.0f}s: {last_error}\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        text = self._log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the broker (fault tests): no clean shutdown, what is on disk stays."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the broker: SIGTERM, then SIGKILL if it does not exit in time."""
        proc, self._proc = self._proc, None
        stop_child(proc, timeout)

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
