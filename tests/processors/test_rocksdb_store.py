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
