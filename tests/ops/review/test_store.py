"""The console's case store on a real broker: every open case held, closed ones bounded."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient

from interlock.settings import Settings
from ops.review.store import CaseStore, review_topics
from tests.ops.review.conftest import review_settings, write_cases
from tests.ops.review.samples import make_case


def test_the_store_keeps_every_open_case_and_only_the_last_closed_ones(
    settings: Settings, admin: AdminClient
) -> None:
    desk = review_settings(settings, admin)
    opened = [make_case() for _ in range(3)]
    closed = [make_case(status="rejected", version=2) for _ in range(15)]
    # a closed case that is opened again (a newer version) is held like any open case
    reopened = make_case(status="approved", version=2)
    # the reopening comes before the closed cases of its partition, so that by the end ten
    # closed cases are held whichever partition is read first
    write_cases(desk, *opened, reopened)
    write_cases(desk, reopened.model_copy(update={"status": "escalated", "version": 3}))
    write_cases(desk, *closed)
    topic, _ = review_topics(desk)
    store = CaseStore(desk.kafka.librdkafka(), topic, poll_s=0.05, closed_kept=10).start()
    try:
        # caught up: every record the topic held at start is folded in
        assert store.caught_up.wait(30), store.problem
        held = store.cases()
    finally:
        store.stop()
    assert store.records == 20
    assert {c.case_id for c in opened} | {reopened.case_id} <= set(held)
    assert held[reopened.case_id].status == "escalated"
    kept = [c.case_id for c in held.values() if not c.is_open]
    # both partitions keep their own order, so which ten is not fixed; how many is
    assert len(kept) == 10
    assert set(kept) <= {c.case_id for c in closed}
    # five of the fifteen, and the reopened case's first closing if it was the oldest by then
    assert store.closed_forgotten in {5, 6}
