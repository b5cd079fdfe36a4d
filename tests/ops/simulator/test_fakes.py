"""The fake ERP and CRM on loopback: Idempotency-Key, 503s, the Debezium trail, echo webhooks."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Producer

from connectors.webhooks.signatures import verify_hubspot_v3
from ops.simulator.fake_erp import ErpTimings
from ops.simulator.runner import SimulationConfig, Simulator
from tests.conftest import consume_n
from tests.ops.simulator.receiver import TABLES, Receiver

pytestmark = pytest.mark.integration

SECRET = "fake-crm-secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.stop()


@pytest.fixture
def simulator_factory(
    tmp_path: Path,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Producer],
    receiver: Receiver,
) -> Iterator[Callable[..., tuple[Simulator, list[float], str]]]:
    started: list[Simulator] = []

    def factory(unavailable: float = 0.0) -> tuple[Simulator, list[float], str]:
        prefix = f"sim{uuid.uuid4().hex[:8]}."
        for table in TABLES:
            make_topic(name=prefix + table)
        now = [1000.0]
        config = SimulationConfig(
            rate=10,
            duration_s=0,
            seed=3,
            webhooks_url=receiver.server.url,
            secret=SECRET,
            ground_truth=tmp_path / "run.json",
            app_id="4242",
            cdc_prefix=prefix,
            senders=2,
            timings=ErpTimings(unavailable=unavailable, order_hold=0.0),
        )
        sim = Simulator(config, make_producer(), clock=lambda: now[0])
        sim.start()
        started.append(sim)
        return sim, now, prefix

    yield factory
    for sim in started:
        sim.close()


def _order(quote: str = "q-1", quantity: str = "3") -> dict[str, Any]:
    return {
        "order_id": "o-1",
        "account_id": "a-1",
        "quote_id": quote,
        "quote_revision": 1,
        "crm_record_id": "555",
        "erp_customer_number": "C000001",
        "currency": "EUR",
        "status": "REQUESTED",
        "lines": [
            {"line_number": 1, "sku": "SKU-00001", "quantity": quantity, "unit_price": "12.50"}
        ],
    }


def _rows(consumer: Consumer, n: int) -> list[dict[str, Any]]:
    messages: list[Any] = consume_n(consumer, n, 20)
    return [json.loads(m.value()) for m in messages]


def test_one_order_per_idempotency_key_and_its_debezium_trail(
    simulator_factory: Callable[..., tuple[Simulator, list[float], str]],
    make_consumer: Callable[..., Consumer],
) -> None:
    sim, now, prefix = simulator_factory()
    url = sim.erp_server.url + "/orders"
    with httpx.Client() as http:
        first = http.post(url, json=_order(), headers={"Idempotency-Key": "k1"})
        again = http.post(url, json=_order(), headers={"Idempotency-Key": "k1"})
        other = http.post(url, json=_order("q-2"), headers={"Idempotency-Key": "k2"})
        invalid = http.post(url, json=_order("q-3", "0"), headers={"Idempotency-Key": "k3"})
        keyless = http.post(url, json=_order("q-4"))
    assert first.status_code == 201
    assert again.status_code == 201
    assert first.json() == again.json() == {"order_number": "SO-000001", "status": "REQUESTED"}
    assert other.json()["order_number"] == "SO-000002"
    assert invalid.status_code == 422
    assert keyless.status_code == 400
    assert [o.quote_id for o in sim.recorded.erp_orders] == ["q-1", "q-2"]
    assert sim.recorded.erp_replays == 1

    now[0] += 60  # every lifecycle step is due
    assert sim.book.advance() == 6
    sim.producer.flush(10)
    orders = _rows(make_consumer(prefix + "sales_orders"), 8)
    first_order = [r for r in orders if r["after"]["order_number"] == "SO-000001"]
    assert [r["op"] for r in first_order] == ["c", "u", "u", "u"]
    assert [r["after"]["status"] for r in first_order] == [
        "OPEN",
        "CONFIRMED",
        "SHIPPED",
        "INVOICED",
    ]
    assert first_order[0]["after"]["quote_id"] == "q-1"
    assert first_order[0]["source"]["table"] == "sales_orders"
    shipments = _rows(make_consumer(prefix + "shipments"), 2)
    invoices = _rows(make_consumer(prefix + "invoices"), 2)
    assert {r["after"]["order_number"] for r in shipments} == {"SO-000001", "SO-000002"}
    assert {r["after"]["status"] for r in invoices} == {"OPEN"}
    statuses = [
        (s.order_number, s.status)
        for s in sim.recorded.erp_status_changes
        if s.order_number == "SO-000001"
    ]
    assert statuses == [
        ("SO-000001", "CONFIRMED"),
        ("SO-000001", "SHIPPED"),
        ("SO-000001", "SHIPPED"),
        ("SO-000001", "INVOICED"),
        ("SO-000001", "INVOICED"),
    ]


def test_an_unavailable_erp_answers_503_and_creates_nothing(
    simulator_factory: Callable[..., tuple[Simulator, list[float], str]],
) -> None:
    sim, _, _ = simulator_factory(unavailable=1.0)
    response = httpx.post(
        sim.erp_server.url + "/orders", json=_order(), headers={"Idempotency-Key": "k1"}
    )
    assert response.status_code == 503
    assert "retry-after" not in response.headers  # a blip: the sinks retry it inline
    assert sim.recorded.erp_orders == []
    assert sim.recorded.erp_unavailable == 1


def test_a_write_back_is_echoed_once_signed_and_marked_as_ours(
    simulator_factory: Callable[..., tuple[Simulator, list[float], str]], receiver: Receiver
) -> None:
    sim, _, _ = simulator_factory()
    sim.desk.know_deal("555", "77")
    url = sim.crm_server.url + "/deals/555"
    with httpx.Client() as http:
        for key, status in (("u1", "CONFIRMED"), ("u1", "CONFIRMED"), ("u2", "SHIPPED")):
            answer = http.patch(
                url,
                json={"status": status, "erp_order_number": "SO-1"},
                headers={"Idempotency-Key": key},
            )
            assert answer.status_code == 200
    # one deal's deliveries keep their order: an echo of the repeated u1 call would arrive
    # before the echo of u2, so the first two deliveries tell the whole story
    requests = receiver.wait_for(2)[:2]
    assert len(sim.recorded.crm_calls) == 3
    assert sim.recorded.echoes_sent == 2
    values = []
    for url_seen, headers, body in requests:
        verify_hubspot_v3(
            SECRET,
            method="POST",
            uri=url_seen,
            body=body,
            signature=headers["x-hubspot-signature-v3"],
            timestamp=headers["x-hubspot-request-timestamp"],
            now_ms=int(time.time() * 1000),
            max_age_s=300,
        )
        events = json.loads(body)
        assert {e["changeSource"] for e in events} == {"INTEGRATION"}
        assert {e["sourceId"] for e in events} == {"4242"}
        assert {e["associatedCompanyId"] for e in events} == {"77"}
        assert {e["objectId"] for e in events} == {555}
        values.append({e["propertyName"]: e["propertyValue"] for e in events})
    assert values == [
        {"erp_status": "CONFIRMED", "erp_order_number": "SO-1"},
        {"erp_status": "SHIPPED", "erp_order_number": "SO-1"},
    ]
