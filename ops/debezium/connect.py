"""A Kafka Connect worker running Debezium, on loopback, from the connector files beside it.

The worker is Apache Kafka's own ``ConnectStandalone`` (offsets in a file), with the Debezium
Postgres connector on its classpath. Its jars come from Maven Central, resolved once from the
pom pinned in ``interlock/jvm/connect/pom.xml`` into the same cache as the broker's jars
(``interlock.apache_kafka.kafka_classpath``). Connectors are the JSON documents of this
directory (``erp-postgres.json``, ``erp-postgres-schemaless.json``), the very files
docker-compose.yml posts to its Connect service; their ``${env:...}`` values are read from the
worker's environment (Kafka's ``EnvVarConfigProvider``). Tests and local runs give the database
through that environment and may override naming properties (topic prefix, slot).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

from interlock.apache_kafka import java_binary, kafka_classpath
from interlock.broker import BrokerStartError, die_with_parent, free_port, stop_child
from interlock.settings import BrokerSettings

__all__ = [
    "CONNECTOR_DIR",
    "ConnectError",
    "KafkaConnectWorker",
    "connector_config",
    "database_environment",
]

log = logging.getLogger(__name__)
CONNECTOR_DIR = Path(__file__).resolve().parent
"""Where the connector configurations live (``ops/debezium``)."""


class ConnectError(BrokerStartError):
    """The Connect worker or one of its connectors did not start (its log tail is attached)."""


def connector_config(file: str, /, name: str | None = None, **overrides: str) -> dict[str, Any]:
    """The connector document ``ops/debezium/<file>.json``, renamed ``name`` if given, with
    ``overrides`` in its config (e.g. ``**{"topic.prefix": "t1"}``)."""
    doc = json.loads((CONNECTOR_DIR / f"{file}.json").read_text())
    doc["config"].update(overrides)
    if name is not None:
        doc["name"] = name
    return dict(doc)


def database_environment(dsn_parts: Mapping[str, Any]) -> dict[str, str]:
    """The ``ERP_DB_*`` variables the connector files read, from libpq connection parameters."""
    return {
        "ERP_DB_HOST": str(dsn_parts.get("host") or "127.0.0.1"),
        "ERP_DB_PORT": str(dsn_parts.get("port") or 5432),
        "ERP_DB_USER": str(dsn_parts.get("user") or "postgres"),
        "ERP_DB_PASSWORD": str(dsn_parts.get("password") or ""),
        "ERP_DB_NAME": str(dsn_parts.get("dbname") or "postgres"),
    }


class KafkaConnectWorker:
    """A standalone Kafka Connect worker (REST on 127.0.0.1) against ``bootstrap_servers``.

    Args:
        bootstrap_servers: the Kafka cluster Connect reads and writes.
        environment: variables the connector configurations read (``${env:NAME}``).
        settings: where Java and the jar cache are (the broker's settings).
        heap_mb: the worker's fixed heap.
        log_file: where the worker's log goes (default: ``connect.log`` in its directory,
            removed with it by :meth:`stop`).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        environment: Mapping[str, str] | None = None,
        settings: BrokerSettings | None = None,
        heap_mb: int = 384,
        log_file: Path | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.environment = dict(environment or {})
        self.settings = settings or BrokerSettings()
        self.heap_mb = heap_mb
        self.port = free_port()
        self.work_dir = Path(tempfile.mkdtemp(prefix="interlock-connect-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file = log_file

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self._log_file or self.work_dir / "connect.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def returncode(self) -> int | None:
        """The worker's exit status once it ended; None while it runs or before it started."""
        return self._proc.poll() if self._proc is not None else None

    def worker_properties(self) -> dict[str, str]:
        """The worker's settings (converters are per connector, in the connector files)."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "listeners": f"http://127.0.0.1:{self.port}",
            "offset.storage.file.filename": str(self.work_dir / "offsets"),
            "offset.flush.interval.ms": "1000",
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "config.providers": "env",
            "config.providers.env.class": (
                "org.apache.kafka.common.config.provider.EnvVarConfigProvider"
            ),
            # the jars are on the classpath: no plugin.path to scan
            "plugin.discovery": "only_scan",
        }

    def command(self, classpath: Path) -> list[str]:
        java = java_binary(self.settings)
        if java is None:
            raise ConnectError("Kafka Connect needs Java 17 or newer, and no java was found")
        log4j = resources.files("interlock.jvm") / "connect" / "log4j2.properties"
        return [
            java,
            f"-Xmx{self.heap_mb}m",
            f"-Xms{self.heap_mb}m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",  # a short-lived worker: start fast rather than peak
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            str(classpath / "*"),
            "org.apache.kafka.connect.cli.ConnectStandalone",
            str(self.work_dir / "worker.properties"),
        ]

    def start(self, timeout: float = 90.0) -> KafkaConnectWorker:
        """Start the worker and wait until its REST API answers.

        Raises:
            ConnectError: no Java, the jars cannot be resolved, or the worker did not come up.
        """
        classpath = kafka_classpath(self.settings, "connect")
        props = self.worker_properties()
        (self.work_dir / "worker.properties").write_text(
            "".join(f"{k}={v}\n" for k, v in props.items())
        )
        command = self.command(classpath)
        with self.log_path.open("ab") as log_file:
            self._proc = subprocess.Popen(
                command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.environment},
                preexec_fn=die_with_parent,  # the worker dies with us
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ConnectError(f"the Connect worker exited:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/connectors", timeout=2).status_code == 200:
                    log.info("Kafka Connect worker up on %s", self.url)
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise ConnectError(f"the Connect worker did not answer within {timeout:.0f} s")

    def add_connector(self, doc: Mapping[str, Any], timeout: float = 60.0) -> None:
        """Create the connector ``doc`` (``{"name", "config"}``) and wait until its task runs.

        Raises:
            ConnectError: Connect refused the configuration, or the task failed or never ran.
        """
        name = doc["name"]
        answer = httpx.post(f"{self.url}/connectors", json=dict(doc), timeout=30)
        if answer.status_code not in (200, 201):
            raise ConnectError(f"Connect refused connector {name}: {answer.text}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(name)
            tasks = status.get("tasks") or []
            states = {status.get("connector", {}).get("state")} | {t.get("state") for t in tasks}
            if "FAILED" in states:
                trace = next((t.get("trace") for t in tasks if t.get("trace")), "")
                raise ConnectError(f"connector {name} failed: {str(trace)[:2000]}")
            if tasks and states == {"RUNNING"}:
                return
            time.sleep(0.25)
        raise ConnectError(f"connector {name} did not start within {timeout:.0f} s")

    def status(self, name: str) -> dict[str, Any]:
        """The connector's status as Connect reports it (empty while it is unknown)."""
        answer = httpx.get(f"{self.url}/connectors/{name}/status", timeout=5)
        return dict(answer.json()) if answer.status_code == 200 else {}

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the worker (SIGTERM, then SIGKILL) and remove its directory."""
        proc, self._proc = self._proc, None
        stop_child(proc, timeout, kill_timeout=5)
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> KafkaConnectWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
