"""The worker on the RocksDB store (rocksdict): parked quotes and order state survive a restart."""

from __future__ import annotations

import pytest

from contracts import OrderEvent
from tests.processors.conftest import ProcessorsEnv
from tests.processors.events import account_event, quote_event

pytestmark = pytest.mark.integration

pytest.importorskip("rocksdict")


def test_rocksdb_store_keeps_parked_quote_across_restart(proc_env: ProcessorsEnv) -> None:
    t = proc_env.topics
    store = {"INTERLOCK_PROCESSORS__STORE": "rocksdb://"}
    proc_env.send(t.quote, quote_event("q-r", "acc-r"))
    worker = proc_env.start_worker(**store)
    assert worker.wait_metric("interlock_parked_joins", 1) == 1, worker.output()
    assert worker.stop() == 0, worker.output()

    proc_env.send(t.account, account_event("acc-r"))  # arrives while no worker runs
    worker = proc_env.start_worker(**store)
    commands = proc_env.wait_for(t.create_order, lambda ev: len(ev) >= 1)
    assert [c.payload.quote_id for c in commands if isinstance(c, OrderEvent)] == ["q-r"]
    assert worker.wait_metric("interlock_parked_joins", 0) == 0
    decisions = [r["decision"] for r in proc_env.audit() if r["ids"].get("quote_id") == "q-r"]
    assert decisions.count("parked") == 1  # recovered from the changelog, not parked again
    assert "released" in decisions


def test_rocksdb_tables_hold_the_configured_memtables(proc_env: ProcessorsEnv) -> None:
    """The memory bounds in settings reach every table's database (its OPTIONS file)."""
    t = proc_env.topics
    proc_env.send(t.account, account_event("acc-b"))
    proc_env.send(t.quote, quote_event("q-b", "acc-b"))
    worker = proc_env.start_worker(
        INTERLOCK_PROCESSORS__STORE="rocksdb://",
        INTERLOCK_PROCESSORS__ROCKSDB_WRITE_BUFFER_MB="3",
        INTERLOCK_PROCESSORS__ROCKSDB_WRITE_BUFFERS="3",
    )
    proc_env.wait_for(t.create_order, lambda ev: len(ev) >= 1)
    options = sorted((proc_env.tmp / "data-0").glob("**/orders-*.db/OPTIONS-*"))
    assert options, worker.output()
    text = options[-1].read_text()
    assert "\n  write_buffer_size=3145728\n" in text
    assert "\n  max_write_buffer_number=3\n" in text
    assert worker.stop() == 0, worker.output()
