"""The receiver heals: a fatal producer error, a mapper failure, a stalled broker.

Before: a fatal error of the landing producer (PRODUCER_FENCED, raised by librdkafka from
``poll``) ended the poll thread, so no delivery was acknowledged again and every later webhook
got 503 while ``/healthz`` answered 200; a fatal error of the mapping stage's producer ended the
mapper thread silently. Now the producer is replaced, the mapping stage rebuilt, ``/readyz`` says
whether a record can land, and ``/healthz`` whether the service can still heal.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka import KafkaError, Producer

from connectors.webhooks.health import ServiceHealth
from connectors.webhooks.landing import Landing
from connectors.webhooks.service import build_mapper_supervisor, build_receiver
from contracts import decode
from interlock.broker import BrokerProcess, free_port
from interlock.settings import Settings
from interlock.tansu import TansuBroker
from tests.conftest import consume_n, end_offsets, frozen, private_broker, wait_for_leaders
from tests.connectors.webhooks.conftest import (
    STANDARD_SECRET,
    Receiver,
    make_fatal,
    standard_headers,
    start_receiver,
    webhook_settings,
)
from tests.connectors.webhooks.test_cli import _base_env, _start

pytestmark = pytest.mark.integration


def _company(name: str) -> bytes:
    return json.dumps(
        {
            "type": "company.updated",
            "timestamp": "2024-05-01T10:00:00Z",
            "data": {"id": f"c-{uuid.uuid4().hex[:6]}", "name": name},
        }
    ).encode()


def _post(client: httpx.Client, receiver: Receiver, body: bytes) -> httpx.Response:
    return client.post(
        f"{receiver.url}/webhooks/standard/acme",
        content=body,
        headers=standard_headers(body, f"msg_{uuid.uuid4().hex}"),
    )


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.05)


def test_a_fenced_landing_producer_is_replaced_and_later_webhooks_land(
    receiver: Receiver, settings: Settings
) -> None:
    with httpx.Client(timeout=30) as client:
        assert _post(client, receiver, _company("Before")).status_code == 200
        make_fatal(receiver.landing._producer)

        answers = []
        deadline = time.monotonic() + 15
        while len(answers) < 5 or set(answers[-5:]) != {200}:
            assert time.monotonic() < deadline, answers
            answers.append(_post(client, receiver, _company("After")).status_code)
        # at most the requests racing the replacement were refused, with 503
        assert set(answers) <= {200, 503}, answers
        assert receiver.landing.recreated == 1
        assert client.get(f"{receiver.url}/healthz").json() == {"status": "ok"}
        _until(lambda: client.get(f"{receiver.url}/readyz").status_code == 200, 10, "ready again")
    landed = answers.count(200) + 1
    conf = {"bootstrap.servers": settings.kafka.bootstrap_servers}
    assert end_offsets(conf, [(receiver.raw_standard, 0)]) == {(receiver.raw_standard, 0): landed}


def test_a_fenced_mapper_producer_is_rebuilt_and_maps_what_came_after(
    receiver: Receiver, make_consumer: Callable[..., object]
) -> None:
    assert receiver.mapper is not None
    accounts = make_consumer(receiver.canonical("account"))
    with httpx.Client(timeout=30) as client:
        assert _post(client, receiver, _company("First")).status_code == 200
        (first,) = consume_n(accounts, 1, 30)  # type: ignore[arg-type]
        loop = receiver.mapper.loop
        assert loop is not None
        make_fatal(loop.router.producer)
        assert _post(client, receiver, _company("Second")).status_code == 200
        events = [decode(first.value())]  # type: ignore[attr-defined]
        deadline = time.monotonic() + 60
        while events[-1].payload.name != "Second":
            assert time.monotonic() < deadline, [e.payload.name for e in events]
            events += [decode(m.value()) for m in consume_n(accounts, 1, 1)]  # type: ignore[arg-type, attr-defined]
        assert receiver.mapper.rebuilds >= 1
        assert receiver.mapper.loop is not loop
        assert client.get(f"{receiver.url}/healthz").json() == {"status": "ok"}
    # A batch whose offsets were not stored when the producer failed is mapped again: the same
    # event, with the same id, which downstream dedup drops.
    assert {e.event_id for e in events[:-1]} == {events[0].event_id}
    assert [e.payload.name for e in events[1:-1]] in ([], ["First"])


def test_a_mapper_that_keeps_failing_makes_the_service_dead(
    settings: Settings, make_topic: Callable[..., str]
) -> None:
    """A mapping stage that fails on every rebuild (here: its Kafka clients refuse their
    configuration) is rebuilt until ``mapper_restart_limit``; then /healthz answers 503."""
    gen: Iterator[Receiver] = start_receiver(settings, make_topic, mapper=False)
    receiver = next(gen)
    broken = settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(update={"extra": {"linger.ms": "soon"}}),
            "webhooks": webhook_settings(mapper_restart_limit=3),
        }
    )
    try:
        supervisor = build_mapper_supervisor(broken, receiver.instruments, receiver.health)
        supervisor._first_delay_s = 0.05
        stop = threading.Event()
        thread = threading.Thread(target=supervisor.run, args=(stop,), daemon=True)
        thread.start()
        thread.join(30)
        assert not thread.is_alive()
        assert supervisor.rebuilds == 2
        with httpx.Client(timeout=10) as client:
            health = client.get(f"{receiver.url}/healthz")
            ready = client.get(f"{receiver.url}/readyz")
        assert health.status_code == 503
        assert health.json()["status"] == "dead"
        (reason,) = health.json()["reasons"]
        assert reason.startswith("mapper: failed 3 times in a row, last: KafkaException")
        assert ready.status_code == 503
    finally:
        for _ in gen:
            pass


@pytest.fixture(params=["suite", "tansu"])
def stalled_broker(request: pytest.FixtureRequest) -> Iterator[BrokerProcess]:
    """A broker to stall: the suite's kind, and Tansu (the no-Java fallback), which answers
    every later produce of an idempotent producer whose record in flight timed out during a
    stall with PRODUCER_FENCED as a plain delivery error, never flagged fatal by librdkafka."""
    broker = TansuBroker() if request.param == "tansu" else private_broker()
    try:
        broker.start()
        yield broker
    finally:
        if broker.pid is not None:
            os.kill(broker.pid, signal.SIGCONT)
        broker.__exit__(None, None, None)


def test_a_stalled_broker_makes_readyz_false_and_the_receiver_recovers(
    settings: Settings, stalled_broker: BrokerProcess
) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    from connectors.fakes.server import ServerThread
    from interlock.instruments import Instruments
    from interlock.metrics import new_registry

    bootstrap = stalled_broker.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = {"hubspot": "raw.crm.hubspot.stall", "standard": "raw.crm.standard.stall"}
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in topics.values()]).values():
        future.result(30)
    wait_for_leaders(admin, list(topics.values()))
    private = settings.with_bootstrap(bootstrap).model_copy(
        update={
            "webhooks": webhook_settings(
                delivery_timeout_s=2.0, probe_interval_s=0.5, probe_timeout_s=0.5, retry_after_s=1
            )
        }
    )
    app, landing = build_receiver(
        private, Instruments(new_registry(process=False), "stall"), topics=topics
    )
    assert stalled_broker.pid is not None
    try:
        with ServerThread(app) as server, httpx.Client(timeout=30) as client:
            receiver_url = server.url

            def ready() -> int:
                return client.get(f"{receiver_url}/readyz").status_code

            def post() -> httpx.Response:
                body = _company("Stall")
                return client.post(
                    f"{receiver_url}/webhooks/standard/acme",
                    content=body,
                    headers=standard_headers(body, f"msg_{uuid.uuid4().hex}"),
                )

            _until(lambda: ready() == 200, 20, "ready at start")
            assert post().status_code == 200

            # the fault is held until a record in flight has timed out: the refused request
            # below is answered only once its delivery timeout has passed
            with frozen(stalled_broker.pid):
                _until(lambda: ready() == 503, 5, "not ready during the stall")
                why = client.get(f"{receiver_url}/readyz").json()
                assert why["status"] == "not_ready"
                assert why["reasons"][0].startswith("landing: ")
                refused = post()
                assert refused.status_code == 503
                assert refused.headers["retry-after"] == "1"
                assert client.get(f"{receiver_url}/healthz").status_code == 200  # it can heal

            _until(lambda: ready() == 200, 30, "ready after the stall")
            assert client.get(f"{receiver_url}/healthz").status_code == 200
            # a fenced producer is replaced and the refused record produced again on the new
            # one: every webhook after the stall lands (before: 503 for good, on Tansu)
            answers = [post().status_code for _ in range(5)]
            assert answers == [200] * 5
            # Kafka: the producer bumped its epoch and went on; Tansu fenced it
            assert landing.recreated == (1 if isinstance(stalled_broker, TansuBroker) else 0)
    finally:
        landing.close(2)


def test_the_command_exits_1_saying_why_once_a_part_cannot_heal(
    settings: Settings, tmp_path: Path
) -> None:
    """A mapping stage that can never be built (its mapping file is not YAML) makes
    ``interlock webhooks`` exit 1 with the reason, rather than serve on with no mapper."""
    (tmp_path / "broken.yaml").write_text("source: [unclosed\n")
    env = {
        **_base_env(settings, free_port()),
        "INTERLOCK_WEBHOOKS__STANDARD__SECRETS": f'{{"acme": "{STANDARD_SECRET}"}}',
        "INTERLOCK_WEBHOOKS__MAPPINGS_DIR": str(tmp_path),
    }
    proc = _start(["webhooks", "--port", str(free_port())], env)
    try:
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert code == 1, stderr
    assert "interlock webhooks cannot heal: mapper: " in stderr
    assert "broken.yaml: not valid YAML" in stderr


def test_a_producer_that_keeps_failing_fatally_makes_the_service_dead() -> None:
    """Each new producer fails at once: after ``recreate_limit`` replacements in a row (no
    delivery in between) the landing gives up and the service is dead."""
    health = ServiceHealth()

    def new_producer(on_error: Callable[[KafkaError], None]) -> Producer:
        return Producer(
            {
                "bootstrap.servers": "127.0.0.1:9",
                "enable.idempotence": True,
                "error_cb": on_error,
                "log_level": 0,
            }
        )

    landing = Landing(new_producer, 1.0, recreate_limit=2, health=health, probe_interval_s=0.2)
    try:
        fenced = 0
        deadline = time.monotonic() + 20
        while not health.died.is_set():
            assert time.monotonic() < deadline, health.readiness()
            if landing.recreated == fenced:  # fence each new producer once
                make_fatal(landing.producer)
                fenced += 1
            time.sleep(0.05)
        assert landing.recreated == 2
        (reason,) = health.liveness()
        assert reason.startswith("landing: producer failed fatally 2 times in a row")
        assert "PRODUCER_FENCED" in reason
    finally:
        landing.close(2)
