"""Apache Kafka as the embedded broker: one KRaft node (broker + controller) on loopback.

The jars come from Maven Central, resolved once by Maven from the pom pinned in
``interlock/jvm/kafka/pom.xml`` into a cache keyed by that pom's hash; later starts need no
network. The broker's settings come from ``interlock/jvm/kafka/broker.properties`` (shared
with docker-compose.yml) plus its listeners and log directory; storage is formatted on the
first start, and a restart on the same data directory keeps every topic and record.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from interlock.brokerprocess import BrokerKind, BrokerProcess, BrokerStartError
from interlock.settings import BrokerSettings

__all__ = [
    "KAFKA_VERSION",
    "KafkaBroker",
    "KafkaCluster",
    "Listener",
    "broker_threads",
    "cached_classpath",
    "java_binary",
    "kafka_classpath",
    "shared_broker_properties",
    "usable_cores",
]

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.3.1"
_JVM = resources.files("interlock.jvm")


def _pom_text(module: str) -> bytes:
    return (_JVM / module / "pom.xml").read_bytes()


def java_binary(settings: BrokerSettings) -> str | None:
    """The ``java`` to run the broker with: the setting, then JAVA_HOME, then PATH."""
    for home in (settings.java_home, os.environ.get("JAVA_HOME")):
        if home and (Path(home) / "bin" / "java").exists():
            return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def _cache_root(settings: BrokerSettings) -> Path:
    if settings.jar_cache:
        return Path(settings.jar_cache)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "interlock" / "jars"


def _cache_dir(settings: BrokerSettings, module: str) -> Path:
    digest = hashlib.sha256(_pom_text(module)).hexdigest()[:12]
    return _cache_root(settings) / f"{module}-{digest}"


def cached_classpath(settings: BrokerSettings, module: str = "kafka") -> Path | None:
    """The directory of ``module``'s jars if a complete resolution is cached, else None."""
    target = _cache_dir(settings, module)
    return target if (target / ".complete").exists() else None


def kafka_classpath(settings: BrokerSettings, module: str = "kafka") -> Path:
    """The directory holding every jar of ``module``'s pom, resolved by Maven on first use."""
    cached = cached_classpath(settings, module)
    if cached is not None:
        return cached
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerStartError(
            f"the {module} jars are not cached in {_cache_root(settings)} and Maven (mvn) is not"
            " installed to resolve them"
        )
    target = _cache_dir(settings, module)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{module}-", dir=target.parent))
    pom = staging / "pom.xml"
    pom.write_bytes(_pom_text(module))
    print(
        f"interlock: resolving the {module} jars with Maven into {target} (first start only)…",
        file=sys.stderr,
        flush=True,
    )
    started = time.monotonic()
    done = subprocess.run(
        [
            mvn,
            "-B",
            "--no-transfer-progress",
            "-q",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging / 'lib'}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise BrokerStartError(f"Maven could not resolve the {module} jars:\n{tail}")
    jars = list((staging / "lib").glob("*.jar"))
    for jar in jars:
        jar.rename(staging / jar.name)
    (staging / "lib").rmdir()
    pom.unlink()
    (staging / ".complete").write_text(f"{len(jars)} jars\n")
    try:
        staging.rename(target)
    except OSError:  # another process finished first: keep its copy
        shutil.rmtree(staging, ignore_errors=True)
    size = sum(p.stat().st_size for p in target.glob("*.jar")) / 2**20
    print(
        f"interlock: {len(jars)} jars ({size:.0f} MiB) resolved in {time.monotonic() - started:.1f}"
        " s; later starts are offline",
        file=sys.stderr,
        flush=True,
    )
    return target


def shared_broker_properties() -> dict[str, str]:
    """The broker settings shared by the embedded broker and docker-compose.yml."""
    text = (_JVM / "kafka" / "broker.properties").read_text()
    props: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            props[key.strip()] = value.strip()
    return props


@dataclass(frozen=True)
class Listener:
    """A further listener, e.g. ``Listener("SECURE", "SASL_SSL", port)``, with its settings."""

    name: str
    protocol: str
    port: int
    properties: dict[str, str] = field(default_factory=dict)


def broker_threads(cpus: int) -> dict[str, str]:
    """The broker's request handler and network threads for a machine of ``cpus`` cores.

    Four handlers and two network threads (per listener) from four cores up. On two, the
    broker shares the cores with every service of the stack, and half as many threads cost it
    less CPU per request (docs/performance/notes.md, "The stack's cost that does not follow its
    rate, and the broker's threads on two cores").
    """
    return {
        "num.io.threads": str(min(4, max(2, cpus))),
        "num.network.threads": str(min(2, max(1, cpus // 2))),
    }


def usable_cores(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """The cores this process may use, as the JVM counts them: those of its CPU affinity
    (``taskset``, a container's cpuset), fewer under its cgroup's CPU quota (cgroup v2
    ``cpu.max``, a container's ``--cpus``), rounded up; not the machine's cores."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform
        cores = os.cpu_count() or 1
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        own = next(line[3:] for line in lines if line.startswith("0::"))
        quota, period = (cgroup_root / own.lstrip("/") / "cpu.max").read_text().split()[:2]
    except (OSError, StopIteration, ValueError):
        return cores  # no cgroup v2, or no quota file: the affinity decides
    if quota == "max" or int(period) <= 0:
        return cores
    return max(1, min(cores, math.ceil(int(quota) / int(period))))


class KafkaBroker(BrokerProcess):
    """An Apache Kafka broker (KRaft, one combined node) on loopback, its data on disk."""

    kind: BrokerKind = "kafka"
    version = KAFKA_VERSION

    def __init__(
        self,
        settings: BrokerSettings | None = None,
        port: int | None = None,
        data_dir: Path | None = None,
        host: str = "127.0.0.1",
        listeners: tuple[Listener, ...] = (),
        properties: dict[str, str] | None = None,
        scram_users: tuple[tuple[str, str, str], ...] = (),
        node_id: int = 1,
        cluster_id: str | None = None,
    ) -> None:
        super().__init__(port=port, host=host)
        self.node_id = node_id
        self.cluster_id = cluster_id
        self.settings = settings or BrokerSettings()
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="interlock-kafka-"))
        self.controller_port = _free_port_besides(host, self.port)
        self.listeners = listeners
        self.properties = properties or {}
        self.scram_users = scram_users
        self._classpath: Path | None = None

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def server_properties(self) -> dict[str, str]:
        """Everything the broker is started with: the shared set, listeners, log directory."""
        host = self.host
        names = [f"PLAINTEXT://{host}:{self.port}"]
        names += [f"{li.name}://{host}:{li.port}" for li in self.listeners]
        protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        protocols += [f"{li.name}:{li.protocol}" for li in self.listeners]
        props = {
            **shared_broker_properties(),
            "listeners": ",".join([*names, f"CONTROLLER://{host}:{self.controller_port}"]),
            "advertised.listeners": ",".join(names),
            "listener.security.protocol.map": ",".join(protocols),
            "node.id": str(self.node_id),
            "controller.quorum.voters": f"{self.node_id}@{host}:{self.controller_port}",
            "log.dirs": str(self.log_dir),
            **broker_threads(usable_cores()),
        }
        for li in self.listeners:
            props.update(li.properties)
        props.update(self.properties)
        return props

    def _java_command(self, main: str, *args: str) -> list[str]:
        java = java_binary(self.settings)
        if java is None:
            raise BrokerStartError("Apache Kafka needs Java 17 or newer, and no java was found")
        assert self._classpath is not None
        log4j = _JVM / "kafka" / "log4j2.properties"
        return [
            java,
            # a fixed, pre-touched heap (as Kafka's own scripts fix it): the broker's memory is
            # what it is from the start, not a heap that grows to -Xmx during a long run
            f"-Xmx{self.settings.heap_mb}m",
            f"-Xms{self.settings.heap_mb}m",
            "-XX:+AlwaysPreTouch",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            # quick: C1 only (the broker settles within seconds, no C2 compiling on shared cores)
            *(["-XX:TieredStopAtLevel=1"] if self.settings.jit == "quick" else []),
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            str(self._classpath / "*"),
            main,
            *args,
        ]

    def prepare(self) -> Path:
        self._classpath = kafka_classpath(self.settings)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in self.server_properties().items()))
        if not (self.log_dir / "meta.properties").exists():
            self._format(config)
        return self.data_dir / "broker.log"

    def _format(self, config: Path) -> None:
        cluster_id = self.cluster_id or new_cluster_id()
        # "=" form: a random id may start with "-", which argparse takes for an option
        args = ["format", f"--cluster-id={cluster_id}", f"--config={config}"]
        for mechanism, user, password in self.scram_users:
            args += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
        done = subprocess.run(
            self._java_command("kafka.tools.StorageTool", *args),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise BrokerStartError(f"formatting Kafka storage failed: {done.stdout}{done.stderr}")

    def command(self) -> list[str]:
        return self._java_command("kafka.Kafka", str(self.data_dir / "server.properties"))

    def restart(self, timeout: float = 60.0) -> KafkaBroker:
        """Start again on the same ports and data directory (after :meth:`kill` or stop)."""
        self.stop()
        self.start(timeout)
        return self

    def stop(self, timeout: float = 20.0) -> None:
        super().stop(timeout)

    def close(self) -> None:
        """Stop, and remove the data directory if this broker made it."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __exit__(self, *exc: object) -> None:
        self.close()


def new_cluster_id() -> str:
    """A random KRaft cluster id (22 characters of URL-safe base64)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class KafkaCluster:
    """``nodes`` combined KRaft nodes on loopback, one cluster: replication factor ``nodes`` and
    ``min.insync.replicas`` one less by default, so that one node can die under load and every
    acknowledged record survives (the fault suite's cluster case, :mod:`ops.chaos`)."""

    def __init__(
        self, nodes: int = 3, settings: BrokerSettings | None = None, data_dir: Path | None = None
    ) -> None:
        if nodes < 2:
            raise ValueError("a cluster has at least two nodes; use KafkaBroker for one")
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="interlock-kafka-cluster-"))
        cluster_id = new_cluster_id()
        self.brokers = [
            KafkaBroker(
                settings, data_dir=self.data_dir / f"node-{i}", node_id=i, cluster_id=cluster_id
            )
            for i in range(1, nodes + 1)
        ]
        voters = ",".join(f"{b.node_id}@{b.host}:{b.controller_port}" for b in self.brokers)
        replicas, in_sync = str(nodes), str(nodes - 1)
        for b in self.brokers:
            b.properties.update(
                {
                    "controller.quorum.voters": voters,
                    "default.replication.factor": replicas,
                    "min.insync.replicas": in_sync,
                    "offsets.topic.replication.factor": replicas,
                    "transaction.state.log.replication.factor": replicas,
                    "transaction.state.log.min.isr": in_sync,
                    "share.coordinator.state.topic.replication.factor": replicas,
                    "share.coordinator.state.topic.min.isr": in_sync,
                }
            )

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(b.bootstrap_servers for b in self.brokers)

    def start(self, timeout: float = 90.0) -> KafkaCluster:
        """Spawn every node, then wait for each (a node answers once a quorum runs)."""
        for b in self.brokers:
            b.spawn()
        for b in self.brokers:
            b.wait_ready(timeout)
        return self

    def stop(self) -> None:
        for b in self.brokers:
            b.stop()

    def close(self) -> None:
        """Stop every node, and remove the data directory if this cluster made it."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> KafkaCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _free_port_besides(host: str, taken: int) -> int:
    from interlock.brokerprocess import free_port

    while True:
        port = free_port(host)
        if port != taken:
            return port
