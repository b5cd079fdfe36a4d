"""Must-show: broker cut off → 503, nothing landed; the retried delivery lands once."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from confluent_kafka import Consumer

from interlock.settings import Settings
from tests.conftest import consume_n, end_offsets
from tests.connectors.webhooks.conftest import (
    ProxiedBroker,
    standard_headers,
    start_receiver,
    webhook_settings,
)

pytestmark = pytest.mark.integration


def test_unreachable_broker_gives_503_and_nothing_landed_then_a_retry_lands_once(
    settings: Settings, proxied_broker: ProxiedBroker
) -> None:
    proxied = settings.with_bootstrap(proxied_broker.bootstrap_servers)
    # reconnect quickly once the proxy forwards again (librdkafka backs off up to 10 s)
    fast = {"reconnect.backoff.ms": "50", "reconnect.backoff.max.ms": "300"}
    proxied = proxied.model_copy(update={"kafka": proxied.kafka.model_copy(update={"extra": fast})})
    config = webhook_settings(delivery_timeout_s=1.0, retry_after_s=1)
    receiver_gen = start_receiver(proxied, proxied_broker.make_topic, webhooks=config)
    receiver = next(receiver_gen)
    conf = {"bootstrap.servers": proxied_broker.bootstrap_servers}
    try:
        deadline = time.monotonic() + 20
        while proxied_broker.proxy.accepted < 2:  # the landing producer and the mapper are in
            assert time.monotonic() < deadline
            time.sleep(0.05)
        body = json.dumps(
            {
                "type": "company.updated",
                "timestamp": "2024-05-01T10:00:00Z",
                "data": {"id": "c-77", "name": "Cut Off GmbH"},
            }
        ).encode()
        msg_id = f"msg_{uuid.uuid4().hex}"
        url = f"{receiver.url}/webhooks/standard/acme"
        raw_ends = [(receiver.raw_standard, 0), (receiver.raw_hubspot, 0)]

        proxied_broker.proxy.cut()
        with httpx.Client(timeout=30) as client:
            down = client.post(url, content=body, headers=standard_headers(body, msg_id))
        assert down.status_code == 503, down.text
        assert down.headers["retry-after"] == "1"
        assert "\n" not in down.text.strip()
        assert down.json()["error"] == "broker_unavailable"
        assert set(down.json()) == {"error", "reason"}

        proxied_broker.proxy.restore()
        # nothing of the refused delivery shows up once the broker is reachable again
        assert set(end_offsets(conf, raw_ends).values()) == {0}

        answers = []
        with httpx.Client(timeout=30) as client:
            for _ in range(10):  # a sender retries the same delivery after Retry-After
                again = client.post(url, content=body, headers=standard_headers(body, msg_id))
                answers.append(again.status_code)
                if again.status_code == 200:
                    break
                time.sleep(float(again.headers["retry-after"]))
        assert answers[-1] == 200, answers
        assert set(answers[:-1]) <= {503}

        account = receiver.canonical("account")
        consumer = Consumer(
            {
                **conf,
                "group.id": f"check-{msg_id}",
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 6000,
            }
        )
        consumer.subscribe([account])
        try:
            (event,) = consume_n(consumer, 1, 30)  # type: ignore[arg-type]
        finally:
            consumer.close()
        assert event.key() is not None  # type: ignore[attr-defined]
        ends = end_offsets(conf, [*raw_ends, (account, 0)])
        assert ends == {
            (receiver.raw_standard, 0): 1,
            (receiver.raw_hubspot, 0): 0,
            (account, 0): 1,
        }
    finally:
        proxied_broker.proxy.restore()
        for _ in receiver_gen:  # run the generator's teardown
            pass
