"""A quote that arrives before its account waits for it; one whose account never comes times out.

In process: dict tables, a fake clock moved by ``tick``, the records the pipeline writes and the
dead letters the worker's writer would produce.
"""

from __future__ import annotations

import pytest

from contracts import encode
from contracts.review import decode_case
from tests.processors.events import account_event, quote_event
from tests.processors.harness import PipelineHarness, worker_config

pytestmark = pytest.mark.unit

GRACE = 6.0
PARKED = "quote_waiting_for_account"


def harness() -> PipelineHarness:
    return PipelineHarness(worker_config(join_grace_s=GRACE))


def test_a_quote_parked_before_its_account_is_released_when_the_account_arrives() -> None:
    h = harness()
    h.send(h.t.quote, quote_event("q-early", "acc-late"))
    assert h.commands(h.t.create_order) == []
    entry = h.tables.parked["q:q-early"]
    assert (entry["account_id"], entry["waiting_for"], entry["parked_at"]) == (
        "acc-late", "account", h.now,
    )  # fmt: skip
    assert h.tables.parked["a:acc-late"] == ["q-early"]
    assert h.metric("interlock_parked_joins", kind=PARKED) == 1
    h.tick(2)  # what the live view shows: what it waits for, for how long, and the grace
    assert h.metric("interlock_parked_quotes", waiting_for="account") == 1
    assert h.metric("interlock_parked_oldest_age_seconds", waiting_for="account") == 2
    assert h.metric("interlock_join_grace_seconds") == GRACE

    h.send(h.t.account, account_event("acc-late"))
    (order,) = h.commands(h.t.create_order)
    assert (order.payload.quote_id, order.payload.erp_customer_number) == ("q-early", "C-acc-late")
    decisions = [(r["decision"], r["ids"].get("quote_id")) for r in h.decisions()]
    assert decisions.index(("parked", "q-early")) < decisions.index(("released", "q-early"))
    # the command was read back: the entry and its index are gone, the order state is durable
    assert "q:q-early" not in h.tables.parked
    assert "a:acc-late" not in h.tables.parked
    assert h.tables.orders["q-early"]["status"] == "requested"
    assert h.metric("interlock_parked_joins", kind=PARKED) == 0
    h.tick(GRACE * 2)
    assert h.dead == []
    assert len(h.commands(h.t.create_order)) == 1


def test_a_released_quote_stays_parked_until_its_command_is_read_back() -> None:
    h = harness()
    h.send(h.t.quote, quote_event("q-1", "acc"))
    h.send(h.t.account, account_event("acc"), read_back=False)
    assert len(h.commands(h.t.create_order)) == 1
    assert "q:q-1" in h.tables.parked  # a crash now replays it: the command is not durable yet
    h.tick(GRACE + 1)  # overdue, but its command is on its way: neither timed out nor re-sent
    assert h.dead == []
    assert len(h.commands(h.t.create_order)) == 1
    h.read_back()
    assert "q:q-1" not in h.tables.parked


def test_a_quote_whose_account_never_comes_is_dead_lettered_as_join_timeout() -> None:
    h = harness()
    orphan = quote_event("q-orphan", "acc-never")
    h.send(h.t.quote, orphan)
    h.tick(GRACE - 0.5)
    assert h.dead_letters(h.t.quote) == []
    h.tick(1)
    (dead,) = h.dead_letters(h.t.quote)
    headers = dict(dead.headers)
    assert headers["interlock.dlq.reason"] == b"JOIN_TIMEOUT"
    assert b"waited 6.5s for account acc-never" in headers["interlock.dlq.error.message"]
    assert (dead.key, dead.value) == (b"acc-never", encode(orphan))  # the original bytes
    assert h.waited_for == [True]  # durable before the parked quote is forgotten
    (audit,) = h.decisions("dead_lettered")
    assert (audit["ids"]["quote_id"], audit["correlation_id"]) == ("q-orphan", "q-orphan")
    assert audit["details"]["reason"] == "JOIN_TIMEOUT"
    dlq = f"dlq.{h.t.quote}"
    assert h.metric("interlock_dead_letters_total", service="processors", topic=dlq,
                    reason="JOIN_TIMEOUT") == 1  # fmt: skip
    assert h.metric("interlock_parked_joins", kind=PARKED) == 0
    assert h.tables.parked == {}
    # with the exception desk on, a person sees it
    (case,) = [decode_case(v) for t, _, v, _ in h.records if t == h.t.cases]
    assert (case.kind, case.team, case.quote_id) == ("parked_timeout", "integration", "q-orphan")
    # timed out once: later ticks, and the account arriving at last, do nothing more
    h.tick(GRACE)
    h.send(h.t.account, account_event("acc-never"))
    assert len(h.dead_letters(h.t.quote)) == 1
    assert h.commands(h.t.create_order) == []


def test_the_grace_runs_from_the_first_arrival_not_from_a_redelivery() -> None:
    h = harness()
    quote = quote_event("q-1", "acc-never")
    h.send(h.t.quote, quote)
    h.tick(GRACE / 2)
    h.send(h.t.quote, quote)  # redelivered: still one parked quote, its clock not restarted
    assert h.metric("interlock_parked_joins", kind=PARKED) == 1
    assert h.tables.parked["q:q-1"]["parked_at"] == h.now - GRACE / 2
    h.tick(GRACE / 2 + 0.5)
    (dead,) = h.dead_letters(h.t.quote)
    assert dict(dead.headers)["interlock.dlq.reason"] == b"JOIN_TIMEOUT"


def test_a_quote_whose_account_never_links_to_an_erp_customer_times_out_as_not_linked() -> None:
    h = harness()
    h.send(h.t.account, account_event("crm-a", "crm", crm_record_id="co-1", name="Nobody BV"))
    h.send(h.t.quote, quote_event("q-1", "crm-a"))
    assert h.tables.parked["q:q-1"]["waiting_for"] == "link"
    h.tick(1)
    assert h.metric("interlock_parked_quotes", waiting_for="link") == 1
    assert h.metric("interlock_parked_quotes", waiting_for="account") == 0
    h.tick(GRACE)
    (dead,) = h.dead_letters(h.t.quote)
    headers = dict(dead.headers)
    assert headers["interlock.dlq.reason"] == b"VALIDATION_FAILED"
    assert headers["interlock.dlq.error.message"].startswith(b"QUOTE_ACCOUNT_NOT_LINKED")
    assert h.commands(h.t.create_order) == []
