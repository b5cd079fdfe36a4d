"""The simulated desk on a real broker: it decides each open case it reads once, by the seed,
keyed so the worker holding the case gets it, and stops deciding when the generation stops."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer

from contracts.review import Case, case_id_for, decode_decision, encode_case
from interlock.settings import Settings
from ops.simulator.desk import DeskDecision, SimulatedDesk, choose
from tests.conftest import consume_n

pytestmark = pytest.mark.integration


def a_case(n: int, status: str = "open") -> Case:
    return Case(
        case_id=case_id_for("policy", f"q{n}|1"),
        kind="policy",
        reason="POLICY_LIMIT_EXCEEDED",
        status=status,  # type: ignore[arg-type]
        team="finance",
        opened_at=0,
        updated_at=0,
        sla_due=1,
        partition_key=f"acct-{n}",
        quote_id=f"q{n}",
        deal_id=f"d{n}",
    )


def test_the_desk_decides_each_open_case_once_by_the_seed(
    settings: Settings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Producer],
    make_consumer: Callable[..., Consumer],
) -> None:
    cases_topic = make_topic(partitions=3, prefix="cases")
    decisions_topic = make_topic(partitions=3, prefix="decisions")
    producer = make_producer()
    made: list[DeskDecision] = []
    desk = SimulatedDesk(
        settings.kafka.librdkafka(),
        make_producer(),
        seed=5,
        record=made.append,
        cases_topic=cases_topic,
        decisions_topic=decisions_topic,
    )
    desk.start()
    try:
        for n in range(12):
            key, value = encode_case(a_case(n))
            producer.produce(cases_topic, value, key)
            producer.produce(cases_topic, value, key)  # a case record seen twice
        key, value = encode_case(a_case(99, status="approved"))  # decided already
        producer.produce(cases_topic, value, key)
        producer.flush(30)
        deadline = time.monotonic() + 60
        while len(made) < 12 and time.monotonic() < deadline:
            time.sleep(0.2)
        desk.stop_deciding()
        key, value = encode_case(a_case(50))  # after the generation: left open
        producer.produce(cases_topic, value, key)
        producer.flush(30)
    finally:
        desk.close()
    assert sorted(d.quote_id or "" for d in made) == sorted(f"q{n}" for n in range(12))
    consumer = make_consumer(decisions_topic)
    sent = sum(d.sent for d in made)
    assigned = sum(1 for d in made if d.assigned)
    messages = consume_n(consumer, sent + assigned, timeout=30)
    decisions = [decode_decision(m.value()) for m in messages]  # type: ignore[attr-defined]
    final = [d for d in decisions if d.action != "assign"]
    assert len(final) == sent
    assert len(decisions) - len(final) == assigned
    assert {d.case_id for d in final} == {a_case(n).case_id for n in range(12)}
    for message, decision in zip(messages, decisions, strict=True):
        assert message.key() == decision.partition_key.encode()  # type: ignore[attr-defined]
    expected = {a_case(n).case_id: choose(5, a_case(n))[0] for n in range(12)}
    assert {d.case_id: d.action for d in final} == expected
