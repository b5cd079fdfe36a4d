"""The sink against the fake ERP on loopback: retries without a second order, 422 dead-lettered."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from connectors.fakes import FakeApis, ServerThread, create_fake_app
from connectors.sinks.service import build_sink_loop
from contracts import Order, OrderEvent, Source, decode, encode
from interlock.instruments import Instruments
from interlock.metrics import new_registry
from interlock.settings import Settings, SinkSettings, SinkTargetSettings
from tests.conftest import consume_n

pytestmark = pytest.mark.integration


def _command(order_id: str) -> OrderEvent:
    now = datetime.now(UTC)
    return OrderEvent(
        event_id=f"cmd-{order_id}",
        event_type="CreateOrder",
        source=Source(system="crm", vendor="hubspot", record_id=order_id),
        correlation_id=f"flow-{order_id}",
        occurred_at=now,
        payload=Order(order_id=order_id, account_id="acct-1", quote_id="q-1", quote_revision=1),
    )


def test_503_twice_then_201_succeeds_with_one_key_and_422_is_dead_lettered(
    settings: Settings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., object],
    make_consumer: Callable[..., object],
) -> None:
    tag = uuid.uuid4().hex[:8]
    commands = make_topic(1, name=f"commands.erp.create-order.{tag}")
    for n in (1, 2, 3):
        make_topic(1, name=f"retry.{commands}.{n}")
    make_topic(1, name=f"dlq.{commands}")
    outcomes = make_topic(1, name=f"canonical.order.v1.{tag}")
    fake = FakeApis()
    fake.fail_next(2, 503)
    with ServerThread(create_fake_app(fake)) as server:
        configured = settings.model_copy(
            update={
                "sinks": SinkSettings(
                    erp=SinkTargetSettings(base_url=server.url, timeout_s=3),
                    retry_jitter_s=0.05,
                    breaker_failures=5,
                    inline_retries=0,  # this test is about the retry tiers
                ),
                "retry": settings.retry.model_copy(update={"delays": [0.2, 0.3, 0.5]}),
            }
        )
        instruments = Instruments(new_registry(process=False), "sinks-test")
        loop, client = build_sink_loop(
            configured,
            instruments,
            routes={commands: "create-order"},
            outcome_topic=outcomes,
            group_id=f"sinks-{tag}",
        )
        producer = make_producer()
        producer.produce(commands, key=b"acct-1", value=encode(_command("o-1")))  # type: ignore[attr-defined]
        producer.flush(10)  # type: ignore[attr-defined]
        deadline = time.monotonic() + 30
        while not fake.orders and time.monotonic() < deadline:
            loop.run_once()
        fake.fail_path("/orders", 422)
        producer.produce(commands, key=b"acct-1", value=encode(_command("o-2")))  # type: ignore[attr-defined]
        producer.flush(10)  # type: ignore[attr-defined]
        while loop.stats.dead_lettered == 0 and time.monotonic() < deadline:
            loop.run_once()
        loop.consumer.close()
        client.close()

    first = [c for c in fake.calls if c.json() and c.json().get("order_id") == "o-1"]
    assert [c.status for c in first] == [503, 503, 201]
    assert {c.idempotency_key for c in first} == {"cmd-o-1"}
    assert len(fake.orders) == 1
    second = [c for c in fake.calls if c.json() and c.json().get("order_id") == "o-2"]
    assert [c.status for c in second] == [422]
    assert loop.stats.held == 1  # o-1 first waited in its partition, once
    assert loop.stats.retried == 1  # then, failing alone again, went to a retry tier
    assert loop.stats.dead_lettered == 1

    (dead,) = consume_n(make_consumer(f"dlq.{commands}"), 1, 20)  # type: ignore[arg-type]
    headers = dict(dead.headers())  # type: ignore[attr-defined]
    assert headers["interlock.dlq.reason"] == b"SINK_REJECTED"
    assert decode(dead.value()).payload.order_id == "o-2"  # type: ignore[attr-defined]

    (out,) = consume_n(make_consumer(outcomes), 1, 20)  # type: ignore[arg-type]
    created = decode(out.value())  # type: ignore[attr-defined]
    assert created.event_type == "OrderCreated"
    assert created.payload.erp_order_number == "SO-000001"
    assert created.causation_id == "cmd-o-1"
    assert created.correlation_id == "flow-o-1"
    assert (
        instruments.registry.get_sample_value(
            "interlock_sink_calls_total", {"target": "erp", "outcome": "retry"}
        )
        == 2
    )
    _ = threading
