"""``interlock up --simulate --check --erp postgres``: the simulated ERP on a real PostgreSQL.

The simulated ERP writes its customers, products, orders, shipments and invoices into the
sample ERP schema as SQL, and change data capture carries them to Kafka: the built-in source
(``interlock cdc postgres``), or Debezium on Kafka Connect. Every invariant must hold as it
does when the simulator publishes the changes itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from interlock.apache_kafka import java_binary
from interlock.settings import BrokerSettings
from ops.simulator.erp_database import postgres_bin_dir
from tests.e2e.stack import start_up
from tests.e2e.test_up import assert_every_invariant_holds

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        postgres_bin_dir() is None, reason="needs PostgreSQL and wal2json (make test installs)"
    ),
]


def _run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run a simulated, checked stack on PostgreSQL; returns its whole output (exit 0 asserted)."""
    proc, output = start_up(
        tmp_path, "--simulate", "40", "--for", "20", "--check", "--erp", "postgres", *args, env=env
    )
    try:
        rest, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = output + rest
    assert proc.returncode == 0, out
    assert re.search(r"ERP database\s+│ PostgreSQL, host=127\.0\.0\.1 port=\d+ ", out), out
    assert re.search(r"simulated load: [\d,]+ actions in", out), out
    assert_every_invariant_holds(out)
    meta = json.loads((tmp_path / "simulation.json").read_text())["meta"]
    assert meta["erp_rows_applied"] > 100, meta  # the ERP's rows went in as SQL
    assert meta["cdc_delivery_errors"] == 0, meta
    return out


def test_the_built_in_source_carries_a_real_erp_database_with_every_invariant(
    tmp_path: Path,
) -> None:
    """As in production: RocksDB tables and three partitions, so an ERP change (keyed by the ERP
    customer's account id) mostly arrives in another partition than its quote's state (keyed by
    the CRM account's), and must still be written back to the deal."""
    env = {"INTERLOCK_PROCESSORS__STORE": "rocksdb://", "INTERLOCK_TOPICS__PARTITIONS": "3"}
    out = _run(tmp_path, env=env)
    assert re.search(r"3 partition\(s\) by\s", out), out
    assert re.search(r"worker tables\s+│ rocksdb://", out), out
    assert re.search(r"ERP change capture +│ built-in source \(cdc-postgres\)", out), out
    stopped = re.search(r"stopped: (.*)", out)
    assert stopped is not None, out
    assert {"erp-db=0", "cdc-postgres=0"} <= set(stopped.group(1).split(", ")), out


@pytest.mark.skipif(
    java_binary(BrokerSettings()) is None, reason="Kafka Connect needs Java 17 or newer"
)
def test_debezium_carries_a_real_erp_database_with_every_invariant(tmp_path: Path) -> None:
    out = _run(tmp_path, "--cdc", "debezium")
    debezium = r"ERP change capture +│ Debezium on Kafka Connect http://127\.0\.0\.1:"
    assert re.search(debezium, out), out
    assert "cdc-postgres" not in out, out
    stopped = re.search(r"stopped: (.*)", out)
    assert stopped is not None, out
    assert {"erp-db=0", "connect=0"} <= set(stopped.group(1).split(", ")), out
    assert (tmp_path / "logs" / "connect.log").stat().st_size > 0
