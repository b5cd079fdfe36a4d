"""``interlock cdc postgres`` against the machine's own PostgreSQL on 127.0.0.1:5432.

The local server is never reconfigured here. When it is not ready for logical decoding, the
command must stop at once with exit 2 and say exactly which settings to change; the full
snapshot-and-stream path runs against throwaway servers in test_postgres_source.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from connectors.cdc.pgsetup import logical_decoding_problems

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
LOCAL = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


def _local_settings() -> tuple[str, str | None]:
    try:
        with psycopg.connect(LOCAL) as conn:
            row = conn.execute(
                "SELECT current_setting('wal_level'), "
                "current_setting('output_plugin_libraries', true)"
            ).fetchone()
    except psycopg.OperationalError as exc:
        pytest.skip(f"no local PostgreSQL on 127.0.0.1:5432: {exc}")
    assert row is not None
    return row[0], row[1]


def test_an_unprepared_local_server_is_refused_with_what_to_configure(kafka_bootstrap: str) -> None:
    problems = logical_decoding_problems(*_local_settings())
    if not problems:
        pytest.skip("the local server is ready for CDC; covered by the throwaway-server tests")
    env = {
        **os.environ,
        "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "INTERLOCK_METRICS__PORT": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "interlock.cli", "cdc", "postgres", "--dsn", LOCAL,
         "--tables", "pg_catalog.pg_class", "--slot", "interlock_never_created"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    for problem in problems:
        assert problem in done.stderr
    with psycopg.connect(LOCAL) as conn:
        slot = conn.execute(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'interlock_never_created'"
        ).fetchone()
    assert slot is None
