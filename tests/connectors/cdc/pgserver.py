"""A throwaway Postgres 15 with wal_level=logical in a temp dir, for the CDC tests and bench.

initdb refuses to run as root, so it runs as the ``postgres`` user (``runuser``) when we are
root. Without initdb, falls back to the local server on 127.0.0.1:5432 (which then needs
wal_level=logical already).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _allow_list_option() -> str:
    """``-c output_plugin_libraries=wal2json`` where this build has that setting, else nothing.

    Some builds allow-list decoding plugins with it; Debian's stock PostgreSQL 15 has no such
    setting and refuses to start when it is given.
    """
    described = subprocess.run(
        [str(BIN / "postgres"), "--describe-config"], capture_output=True, text=True, check=False
    ).stdout
    if any(line.split("\t", 1)[0] == "output_plugin_libraries" for line in described.splitlines()):
        return "-c output_plugin_libraries=wal2json "
    return ""


@contextmanager
def throwaway_postgres(wal_level: str = "logical") -> Iterator[str]:
    """Yield a DSN (database ``postgres``) of a fresh Postgres (logical decoding by default)."""
    if not (BIN / "initdb").exists():
        yield "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
        return
    root = Path(tempfile.mkdtemp(prefix="interlock-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    subprocess.run(
        _as_postgres([str(BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]),
        check=True,
        capture_output=True,
    )
    opts = (
        f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} "
        f"-c wal_level={wal_level} {_allow_list_option()}-c max_replication_slots=10 "
        "-c max_wal_senders=10 -c fsync=off "
        "-c full_page_writes=off"
    )
    subprocess.run(
        _as_postgres(
            [
                str(BIN / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                opts,
                "-l",
                str(root / "log"),
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    finally:
        subprocess.run(
            _as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def create_database(admin_dsn: str, name: str, schema_sql: str) -> str:
    """Create database ``name`` with ``schema_sql`` applied; returns its DSN."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = admin_dsn.replace("dbname=postgres", f"dbname={name}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(schema_sql)
    return dsn
