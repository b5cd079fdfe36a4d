"""The embedded broker: Apache Kafka where Java can run it, else Tansu; started by this process.

Used when no bootstrap servers are configured: by ``interlock up``, ``interlock broker`` and the
test suite. :func:`choose_embedded` says which broker and why; :func:`embedded_broker` makes it.
Either runs as a child process tied to its parent with ``PR_SET_PDEATHSIG``: if the parent
dies, the broker dies too.
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
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from confluent_kafka.admin import AdminClient

from contracts.errors import InterlockError, Reason
from interlock.resources import Usage, cpu_share, grown_cpu
from interlock.settings import Settings

__all__ = [
    "BrokerChoice",
    "BrokerKind",
    "BrokerProcess",
    "BrokerStartError",
    "broker_banner",
    "broker_growth_line",
    "choose_embedded",
    "die_with_parent",
    "embedded_broker",
    "embedded_run_settings",
    "free_port",
]

log = logging.getLogger(__name__)

BrokerKind = Literal["kafka", "tansu"]


class BrokerStartError(InterlockError):
    """The embedded broker did not start or did not answer metadata in time."""

    reason = Reason.BROKER_UNAVAILABLE


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """``preexec_fn`` of a broker child: it gets SIGTERM when we die, and its own group."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setpgrp()  # Ctrl-C in a terminal goes to us, and we stop the broker in order


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
        self._wait_ready(timeout)
        log.info(
            "embedded %s broker ready on %s (pid %s)", self.kind, self.bootstrap_servers, self.pid
        )
        return self

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

    def _wait_ready(self, timeout: float) -> None:
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
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class BrokerChoice:
    """Which embedded broker runs, and why (the banner shows both)."""

    kind: BrokerKind
    reason: str


def _java_major(java: str) -> int | None:
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=20, check=False
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    for token in out.replace('"', " ").split():
        head = token.split(".")[0].split("-")[0].split("+")[0]
        if head.isdigit() and token[0].isdigit():
            major = int(head)
            return int(token.split(".")[1]) if major == 1 else major
    return None


def choose_embedded(settings: Settings) -> BrokerChoice:
    """Apache Kafka where Java >= 17 and Maven (or the cached jars) are present, else Tansu."""
    if settings.embedded_broker == "tansu":
        return BrokerChoice("tansu", "INTERLOCK_EMBEDDED_BROKER=tansu")
    from interlock.apache_kafka import cached_classpath, java_binary

    java = java_binary(settings.broker)
    major = _java_major(java) if java else None
    forced = settings.embedded_broker == "kafka"
    if major is None or major < 17:
        why = "no Java found" if major is None else f"Java {major} is older than 17"
        if forced:
            raise BrokerStartError(f"INTERLOCK_EMBEDDED_BROKER=kafka, but {why}")
        return BrokerChoice("tansu", f"{why}: Apache Kafka needs Java 17 or newer")
    if cached_classpath(settings.broker) is None and shutil.which("mvn") is None:
        why = "neither Maven nor cached Kafka jars found"
        if forced:
            raise BrokerStartError(f"INTERLOCK_EMBEDDED_BROKER=kafka, but {why}")
        return BrokerChoice("tansu", why)
    if forced:
        return BrokerChoice("kafka", "INTERLOCK_EMBEDDED_BROKER=kafka")
    return BrokerChoice("kafka", f"Java {major} found")


def embedded_broker(
    settings: Settings,
    kind: BrokerKind | None = None,
    port: int | None = None,
    data_dir: Path | None = None,
) -> BrokerProcess:
    """The embedded broker of ``kind`` (default: :func:`choose_embedded`), not started yet."""
    kind = kind or choose_embedded(settings).kind
    if kind == "tansu":
        from interlock.tansu import TansuBroker

        return TansuBroker(port=port)
    from interlock.apache_kafka import KafkaBroker

    return KafkaBroker(settings.broker, port=port, data_dir=data_dir)


def embedded_run_settings(
    settings: Settings, broker: BrokerProcess | str, workers: int
) -> Settings:
    """Settings of a run on a just-started embedded broker.

    One partition per worker unless partitions were configured
    (:meth:`Settings.with_embedded_topics`): on Apache Kafka too, fewer partitions cost the
    one machine less (``--simulate 500``: broker 47% / 23% of a core with 1 partition against
    76% / 38% with 3, 366 against 340 actions/s through). The workers' local tables go in a fresh
    ``<data_dir>/embedded``: the broker starts empty, so no local state may outlive it.
    """
    bootstrap = broker if isinstance(broker, str) else broker.bootstrap_servers
    run = settings.with_bootstrap(bootstrap).with_embedded_topics(workers)
    if not isinstance(broker, str) and broker.kind == "tansu":
        kafka = run.kafka.model_copy(update={"broker_kind": "tansu"})
        run = run.model_copy(update={"kafka": kafka})
    run = run.with_embedded_state()
    with contextlib.suppress(OSError):
        shutil.rmtree(run.processors.data_dir)
    return run


def broker_banner(broker: BrokerProcess, choice: BrokerChoice) -> str:
    if broker.kind == "kafka":
        where = f"data in {getattr(broker, 'data_dir', '?')}"
        name = f"Apache Kafka {broker.version} (KRaft)"
    else:
        where = "in memory: a restart loses every record"
        name = f"Tansu {broker.version}"
    return f"{name}, pid {broker.pid}, {where}; {choice.reason}"


def broker_growth_line(
    broker_kind: str | None,
    start: dict[str, Usage],
    early: dict[str, Usage],
    load_end: dict[str, Usage],
) -> str | None:
    """Why the embedded broker's CPU share climbed at the same offered load, when it did."""
    if broker_kind != "tansu" or not all("broker" in s for s in (start, early, load_end)):
        return None
    before = cpu_share(start["broker"], early["broker"])
    after = cpu_share(early["broker"], load_end["broker"])
    if not grown_cpu(before, after):
        return None
    return (
        f"[yellow]the embedded broker's CPU went from {before:.0%} to {after:.0%} of a core at the "
        "same offered load: on every fetch that returns records it lists every batch stored in "
        "the partition, and it keeps everything, so its cost grows with the run (README, "
        '"The embedded broker"). Long or heavy runs belong on Apache Kafka '
        "(KAFKA_BOOTSTRAP_SERVERS).[/]"
    )
