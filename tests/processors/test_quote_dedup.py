"""One create-order per quote across a duplicate and a worker restart.

Duplicates, replays, amend and cancel are ``test_dedup_flow.py`` (in process); what only a
process shows is that what a worker knew survives its restart (the ids it has seen, the order
state read back), so a quote redelivered to the new worker gives no second order.
"""

from __future__ import annotations

import pytest

from contracts import OrderEvent
from tests.processors.conftest import ProcessorsEnv
from tests.processors.events import account_event, quote_event

pytestmark = pytest.mark.integration


def test_duplicate_quote_and_redelivery_after_restart_yield_one_order(
    proc_env: ProcessorsEnv,
) -> None:
    t = proc_env.topics
    proc_env.send(t.account, account_event("acc-1"))
    quote = quote_event("q-1", "acc-1")
    proc_env.send(t.quote, quote, quote)
    worker = proc_env.start_worker()
    commands = proc_env.wait_for(t.create_order, lambda ev: len(ev) >= 1)
    # the command was read back into the order state before we stop
    worker.wait_metric("interlock_events_consumed_total", 1, topic=t.create_order, outcome="ok")
    assert len(commands) == 1, worker.output()
    assert worker.stop() == 0, worker.output()

    proc_env.send(t.quote, quote)  # redelivered after a graceful restart
    proc_env.send(t.quote, quote_event("q-2", "acc-1"))  # proves the new worker is processing
    worker = proc_env.start_worker()
    commands = proc_env.wait_for(t.create_order, lambda ev: len(ev) >= 2)
    # q-1's redelivery is before q-2 in the same partition: a duplicate would already be here
    by_quote = sorted(c.payload.quote_id for c in commands if isinstance(c, OrderEvent))
    assert by_quote == ["q-1", "q-2"], worker.output()
