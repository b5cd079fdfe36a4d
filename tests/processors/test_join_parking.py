"""A quote that arrives before its account waits for it; one whose account never comes times out."""

from __future__ import annotations

import pytest

from contracts import OrderEvent, encode
from tests.processors.conftest import ProcessorsEnv
from tests.processors.events import account_event, quote_event

pytestmark = pytest.mark.integration


def test_parked_quote_released_when_account_arrives_or_dead_lettered_after_grace(
    proc_env: ProcessorsEnv,
) -> None:
    t = proc_env.topics
    early = quote_event("q-early", "acc-late")
    orphan = quote_event("q-orphan", "acc-never")
    proc_env.send(t.quote, early, orphan)
    worker = proc_env.start_worker(INTERLOCK_PROCESSORS__JOIN_GRACE_S="6")
    worker.wait_metric("interlock_parked_joins", 2)
    # what the live view shows: both wait for their account, and the grace they have
    assert worker.wait_metric("interlock_parked_quotes", 2) == 2
    assert worker.metric("interlock_parked_quotes", waiting_for="account") == 2
    assert worker.metric("interlock_join_grace_seconds") == 6
    assert proc_env.events(t.create_order) == []

    proc_env.send(t.account, account_event("acc-late"))
    commands = proc_env.wait_for(t.create_order, lambda ev: len(ev) >= 1)
    assert [c.payload.quote_id for c in commands if isinstance(c, OrderEvent)] == ["q-early"]

    dead = proc_env.wait_for_raw(f"dlq.{t.quote}", lambda recs: len(recs) >= 1)
    assert len(dead) == 1, worker.output()
    headers = dict(dead[0].headers)
    assert headers["interlock.dlq.reason"] == b"JOIN_TIMEOUT"
    assert dead[0].value == encode(orphan)  # the original bytes, intact
    assert dead[0].key == b"acc-never"
    decisions = [(r["decision"], r["ids"].get("quote_id")) for r in proc_env.audit()]
    assert ("parked", "q-early") in decisions
    assert ("released", "q-early") in decisions
    assert ("dead_lettered", "q-orphan") in decisions
    assert worker.wait_metric("interlock_parked_joins", 0) == 0
    assert (
        worker.metric("interlock_dead_letters_total", topic=f"dlq.{t.quote}", reason="JOIN_TIMEOUT")
        == 1
    )
    assert len(proc_env.events(t.create_order)) == 1
    # Table writes land in the changelog partition of the event that caused them (co-partitioned
    # state survives rebalances only then), also when events are handled in batches.
    quote_partition = {r.value: r.partition for r in proc_env.read_records(t.quote)}
    changelog = proc_env.read_records(f"{proc_env.app_id}-parked-changelog")
    partitions = {r.partition for r in changelog if r.key == b'"q:q-early"'}
    assert partitions == {quote_partition[encode(early)]}
