"""``interlock cdc postgres`` against a server that is not ready for logical decoding.

A throwaway server with ``wal_level=replica`` (the PostgreSQL default): the command must stop
at once with exit 2 and say exactly which settings to change, and create nothing on the server;
the full snapshot-and-stream path runs against logical servers in test_postgres_source.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from connectors.cdc.pgsetup import logical_decoding_problems
from tests.connectors.cdc.pgserver import throwaway_postgres

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def unprepared() -> Iterator[str]:
    with throwaway_postgres(wal_level="replica") as dsn:
        yield dsn


def _server_settings(dsn: str) -> tuple[str, str | None]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT current_setting('wal_level'), current_setting('output_plugin_libraries', true)"
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_an_unprepared_server_is_refused_with_what_to_configure(
    kafka_bootstrap: str, unprepared: str
) -> None:
    problems = logical_decoding_problems(*_server_settings(unprepared))
    assert any("wal_level is 'replica'" in p for p in problems), problems
    env = {
        **os.environ,
        "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "INTERLOCK_METRICS__PORT": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "interlock.cli", "cdc", "postgres", "--dsn", unprepared,
         "--tables", "pg_catalog.pg_class", "--slot", "interlock_never_created"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    for problem in problems:
        assert problem in done.stderr
    with psycopg.connect(unprepared) as conn:
        slot = conn.execute(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'interlock_never_created'"
        ).fetchone()
    assert slot is None
