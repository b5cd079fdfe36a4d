"""A real PostgreSQL ERP for ``interlock up --erp postgres``: the server, the schema, the CDC.

``ErpDatabase.start`` makes a throwaway PostgreSQL server (``initdb`` in a fresh directory,
``wal_level=logical``, loopback only), runs it as a child of ``up``'s supervisor (``erp-db``),
creates the database ``erp`` with the sample schema (``connectors/sql/erp_schema.sql``) and
starts what carries its changes to Kafka, also supervised:

- ``builtin``: Interlock's own source, ``interlock cdc postgres`` (child ``cdc-postgres``),
  writing ``raw.erp.<table>``;
- ``debezium``: a Kafka Connect worker with the Debezium Postgres connector
  (``ops/debezium/erp-postgres.json``, child ``connect``), writing ``raw.erp.public.<table>``.

Both topic families match the CDC mapping stage's default subscription (``^raw\\.erp\\..+``).
It returns once the capture's replication slot exists, so no change the simulator makes after
that can be missed. PostgreSQL refuses to run as root: as root, the server runs as the
``postgres`` user.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import psycopg

from contracts.errors import InterlockError, Reason
from interlock.broker import free_port
from interlock.settings import Settings
from interlock.supervisor import Service, Supervisor
from ops.debezium.connect import KafkaConnectWorker, connector_config, database_environment
from ops.simulator.erp_postgres import ERP_SCHEMA_SQL

__all__ = [
    "ERP_TABLES",
    "CdcKind",
    "ConnectChild",
    "ErpDatabase",
    "ErpDatabaseError",
    "postgres_bin_dir",
]

log = logging.getLogger(__name__)
CdcKind = Literal["builtin", "debezium"]
ERP_TABLES = ("customers", "products", "sales_orders", "sales_order_lines", "invoices", "shipments")
"""The sample schema's tables, every one captured."""
BUILTIN_SLOT = "interlock_erp"
DEBEZIUM_CONNECTOR = "erp-postgres"
_DATABASE = "erp"


class ErpDatabaseError(InterlockError):
    """The ERP database or its change capture could not be started."""

    reason = Reason.CONFIG_INVALID


class ErpDatabase:
    """The ERP database of one run and its change capture: start, where to write, clean up.

    Args:
        cdc: what carries the changes to Kafka, the built-in source or Debezium.
    """

    def __init__(self, cdc: CdcKind = "builtin") -> None:
        self.cdc = cdc
        self.dsn = ""
        self.banner: dict[str, str] = {}
        """Lines for ``up``'s banner: the database, the capture, where to look."""
        self._cleanup: list[Callable[[], None]] = []

    def start(self, settings: Settings, supervisor: Supervisor) -> None:
        """Start the server, create the schema, start the capture, all as children of
        ``supervisor``; returns once the capture's slot exists.

        Raises:
            ErpDatabaseError: PostgreSQL is missing, or the server or the capture did not start.
            ConnectError: the Connect worker or the Debezium connector did not start.
        """
        self.dsn = _create_database(_start_server(supervisor, self._cleanup))
        self.banner["ERP database"] = f"PostgreSQL, {self.dsn}"
        if self.cdc == "debezium":
            self.banner.update(_start_debezium(settings, supervisor, self.dsn, self._cleanup))
        else:
            self.banner.update(_start_builtin(settings, supervisor, self.dsn))

    def close(self) -> None:
        """Remove what the supervisor does not (the server's directory, Connect's): after the
        supervisor stopped the children."""
        for step in reversed(self._cleanup):
            try:
                step()
            except Exception:  # a cleanup step must not hide the others
                log.exception("ERP database cleanup failed")


def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``initdb`` (Debian's layout), or the
    directory of an ``initdb`` on ``PATH``."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _plugin_allow_list(bin_dir: Path) -> list[str]:
    """``output_plugin_libraries=wal2json`` where this build has that setting (some allow-list
    decoding plugins with it; Debian's stock server has no such setting and refuses it)."""
    described = subprocess.run(
        [str(bin_dir / "postgres"), "--describe-config"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    names = {line.split("\t", 1)[0] for line in described.splitlines()}
    return ["-c", "output_plugin_libraries=wal2json"] if "output_plugin_libraries" in names else []


def _start_server(supervisor: Supervisor, cleanup: list[Callable[[], None]]) -> str:
    """initdb a fresh directory and run the server as child ``erp-db``; its admin DSN."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise ErpDatabaseError(
            "--erp postgres needs PostgreSQL (initdb, postgres) and wal2json: "
            "scripts/install-system-tools.sh installs them"
        )
    # not under the log directory: the server's user must be able to reach its directory
    root = Path(tempfile.mkdtemp(prefix="interlock-erp-db-"))
    cleanup.append(lambda: shutil.rmtree(root, ignore_errors=True))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data = root / "data"
    done = subprocess.run(
        _as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ErpDatabaseError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
    port = free_port()
    settings = {
        "port": str(port),
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": str(root),
        "wal_level": "logical",
        "max_replication_slots": "10",
        "max_wal_senders": "10",
        # a throwaway server: its data is removed after the run
        "fsync": "off",
        "full_page_writes": "off",
        "synchronous_commit": "off",
    }
    options = [arg for k, v in settings.items() for arg in ("-c", f"{k}={v}")]
    command = [str(bin_dir / "postgres"), "-D", str(data), *options, *_plugin_allow_list(bin_dir)]
    server = supervisor.start("erp-db", _as_postgres(command))
    admin = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    _wait_for_server(server, admin)
    return admin


def _wait_for_server(server: Service, admin_dsn: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(admin_dsn, connect_timeout=2):
                return
        except psycopg.OperationalError as exc:
            if not server.running:
                raise ErpDatabaseError(f"the ERP database exited; see {server.log_path}") from exc
            if time.monotonic() > deadline:
                raise ErpDatabaseError(f"the ERP database did not answer: {exc}") from exc
            time.sleep(0.2)


def _create_database(admin_dsn: str) -> str:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{_DATABASE}"')
    dsn = admin_dsn.replace("dbname=postgres", f"dbname={_DATABASE}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(ERP_SCHEMA_SQL.read_text())
    return dsn


def _wait_for_slot(dsn: str, slot: str, alive: Callable[[], bool], timeout: float = 90.0) -> None:
    """Wait until the capture's slot exists: from then on every change is kept for it."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            found = conn.execute(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()
            if found is not None:
                return
            if not alive():
                raise ErpDatabaseError(f"the change capture stopped before slot {slot} existed")
            if time.monotonic() > deadline:
                raise ErpDatabaseError(f"replication slot {slot} was not created in time")
            time.sleep(0.2)


def _child_env(settings: Settings, name: str, metrics_port: int) -> dict[str, str]:
    return {
        "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers or "",
        "INTERLOCK_KAFKA__BROKER_KIND": settings.kafka.broker_kind,
        "INTERLOCK_KAFKA__CLIENT_ID": f"{settings.kafka.client_id}-{name}",
        "INTERLOCK_METRICS__PORT": str(metrics_port),
        "INTERLOCK_LOG_LEVEL": settings.log_level,
    }


def _start_builtin(settings: Settings, supervisor: Supervisor, dsn: str) -> dict[str, str]:
    base = settings.metrics.port
    port = base + 6 if base else free_port()
    env = {
        **_child_env(settings, "cdc-postgres", port),
        "INTERLOCK_CDC__POSTGRES_DSN": dsn,
        "INTERLOCK_CDC__POSTGRES_TABLES": json.dumps(list(ERP_TABLES)),
        "INTERLOCK_CDC__POSTGRES_SLOT": BUILTIN_SLOT,
    }
    source = supervisor.start(
        "cdc-postgres", [sys.executable, "-m", "interlock.cli", "cdc", "postgres"], env
    )
    _wait_for_slot(dsn, BUILTIN_SLOT, lambda: source.running)
    return {"ERP change capture": f"built-in source (cdc-postgres), slot {BUILTIN_SLOT}",
            "cdc-postgres metrics": f"http://127.0.0.1:{port}/metrics"}  # fmt: skip


class ConnectChild:
    """The Kafka Connect worker as a supervised child: a restart starts the worker again and
    re-creates the connector, which resumes from the offsets the worker keeps in its directory."""

    name = "connect"

    def __init__(self, worker: KafkaConnectWorker, connector: dict[str, Any]) -> None:
        self.worker = worker
        self.connector = connector

    @property
    def pid(self) -> int | None:
        return self.worker.pid

    @property
    def log_path(self) -> Path | None:
        return self.worker.log_path

    def launch(self) -> None:
        self.worker.start()
        self.worker.add_connector(self.connector)

    def returncode(self) -> int | None:
        return self.worker.returncode()

    def terminate(self) -> None:
        pid = self.worker.pid
        if pid is not None and self.worker.returncode() is None:
            os.kill(pid, signal.SIGTERM)

    def wait(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while self.worker.returncode() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        code = self.worker.returncode()
        self.worker.stop(5)  # kills what is left, removes its directory
        if code is None:
            return -signal.SIGKILL
        # a JVM stopped by SIGTERM runs its shutdown hooks, then exits 143: a clean stop
        return 0 if code == 128 + signal.SIGTERM else code


def _start_debezium(
    settings: Settings, supervisor: Supervisor, dsn: str, cleanup: list[Callable[[], None]]
) -> dict[str, str]:
    parts = psycopg.conninfo.conninfo_to_dict(dsn)
    worker = KafkaConnectWorker(
        settings.kafka.bootstrap_servers or "",
        environment=database_environment(parts),
        settings=settings.broker,
        log_file=supervisor.log_dir / "connect.log",
    )
    cleanup.append(lambda: worker.stop(5))
    child = ConnectChild(worker, connector_config(DEBEZIUM_CONNECTOR))
    child.launch()  # raises ConnectError (an InterlockError) with the worker's log tail
    supervisor.adopt(child)
    slot = str(child.connector["config"]["slot.name"])
    _wait_for_slot(dsn, slot, lambda: child.returncode() is None)
    return {"ERP change capture": f"Debezium on Kafka Connect {worker.url}, slot {slot}"}
