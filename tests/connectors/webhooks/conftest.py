"""A running receiver + mapping stage on unique topics, and signing helpers for its clients."""

from __future__ import annotations

import base64
import ctypes
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import confluent_kafka
import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook

from connectors.fakes.server import ServerThread
from connectors.webhooks.health import ServiceHealth
from connectors.webhooks.landing import Landing
from connectors.webhooks.service import build_mapper_supervisor, build_receiver
from connectors.webhooks.signatures import hubspot_v3_signature
from connectors.webhooks.supervision import MapperSupervisor
from interlock.apache_kafka import KafkaBroker
from interlock.broker import BrokerProcess, free_port
from interlock.instruments import Instruments
from interlock.metrics import new_registry
from interlock.settings import (
    HubSpotWebhookSettings,
    Settings,
    StandardWebhookSettings,
    WebhookSettings,
)
from interlock.tansu import TansuBroker
from tests.conftest import suite_broker_kind
from tests.connectors.proxy import TcpProxy

HUBSPOT_SECRET = "hubspot-client-secret"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"standard-secret-0123456789").decode()


def webhook_settings(**overrides: object) -> WebhookSettings:
    values: dict[str, object] = {
        "max_body_bytes": 4096,
        "delivery_timeout_s": 3.0,
        "hubspot": HubSpotWebhookSettings(client_secret=SecretStr(HUBSPOT_SECRET)),
        "standard": StandardWebhookSettings(secrets={"acme": SecretStr(STANDARD_SECRET)}),
        **overrides,
    }
    return WebhookSettings.model_validate(values)


def hubspot_headers(url: str, body: bytes, secret: str = HUBSPOT_SECRET, age_s: float = 0) -> dict:
    stamp = str(int((time.time() - age_s) * 1000))
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Request-Timestamp": stamp,
        "X-HubSpot-Signature-v3": hubspot_v3_signature(secret, "POST", url, body, stamp),
    }


def standard_headers(
    body: bytes, msg_id: str, secret: str = STANDARD_SECRET, age_s: float = 0
) -> dict:
    when = datetime.fromtimestamp(int(time.time() - age_s), UTC)
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, when, body.decode()),
    }


def hubspot_company_change(object_id: int, name: str, event_id: int | None = None) -> bytes:
    return json.dumps(
        [
            {
                "eventId": event_id or uuid.uuid4().int % 10**9,
                "subscriptionType": "company.propertyChange",
                "objectId": object_id,
                "portalId": 99,
                "occurredAt": int(time.time() * 1000),
                "propertyName": "name",
                "propertyValue": name,
            }
        ]
    ).encode()


def make_fatal(producer: Producer, code: int = KafkaError.PRODUCER_FENCED) -> None:
    """Put ``producer`` in librdkafka's fatal state, as a fenced idempotent producer is.

    librdkafka's own test hook, ``rd_kafka_test_fatal_error``, raises the very fatal error a
    broker would cause (the same purge, the same exception from ``poll``, ``_FATAL`` from every
    later ``produce``); confluent-kafka does not wrap it, so it is called through ctypes on the
    ``rd_kafka_t`` pointer, the first field after the object header of the C ``Handle``.
    Measured here: SIGSTOP-ing Apache Kafka 4.3 for 8-20 s does not make librdkafka 2.16's
    idempotent producer fatal (it bumps its epoch and goes on), so a stall cannot be the trigger.
    """
    lib = ctypes.CDLL(confluent_kafka.cimpl.__file__)
    trigger = lib.rd_kafka_test_fatal_error
    trigger.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]
    handle = ctypes.c_void_p.from_address(id(producer) + object.__basicsize__).value
    assert handle, "producer has no librdkafka handle"
    assert trigger(handle, code, b"fenced by the test") == 0


@dataclass
class Receiver:
    url: str
    raw_hubspot: str
    raw_standard: str
    canonical: Callable[[str], str]
    instruments: Instruments
    landing: Landing
    health: ServiceHealth
    mapper: MapperSupervisor | None


def start_receiver(
    settings: Settings,
    make_topic: Callable[..., str],
    *,
    mapper: bool = True,
    webhooks: WebhookSettings | None = None,
) -> Iterator[Receiver]:
    """Generator behind the ``receiver`` fixture (also used with a proxied broker)."""
    tag = uuid.uuid4().hex[:8]
    raw_h = make_topic(1, name=f"raw.crm.hubspot.{tag}")
    raw_s = make_topic(1, name=f"raw.crm.standard.{tag}")
    for raw in (raw_h, raw_s):
        make_topic(1, name=f"dlq.{raw}")
    for entity in ("account", "contact", "quote"):
        make_topic(1, name=f"canonical.{entity}.v1.{tag}")

    def canonical(entity: str) -> str:
        return f"canonical.{entity}.v1.{tag}"

    configured = settings.model_copy(update={"webhooks": webhooks or webhook_settings()})
    instruments = Instruments(new_registry(process=False), "webhooks-test")
    health = ServiceHealth()
    app, landing = build_receiver(
        configured, instruments, topics={"hubspot": raw_h, "standard": raw_s}, health=health
    )
    stop = threading.Event()
    thread = None
    supervisor = None
    if mapper:
        supervisor = build_mapper_supervisor(
            configured,
            instruments,
            health,
            raw_topics=[raw_h, raw_s],
            topic_for=canonical,
            group_id=f"mapper-{tag}",
        )
        thread = threading.Thread(target=supervisor.run, args=(stop,), daemon=True)
        thread.start()
    with ServerThread(app) as server:
        yield Receiver(
            server.url, raw_h, raw_s, canonical, instruments, landing, health, supervisor
        )
    stop.set()
    if thread is not None:
        thread.join(20)
    landing.close(2)


@pytest.fixture
def receiver(settings: Settings, make_topic: Callable[..., str]) -> Iterator[Receiver]:
    yield from start_receiver(settings, make_topic)


@dataclass
class ProxiedBroker:
    """A broker of its own that advertises the proxy's address, so every client goes through it."""

    proxy: TcpProxy
    bootstrap_servers: str
    admin: AdminClient

    def make_topic(self, partitions: int = 1, name: str | None = None, **_: object) -> str:
        topic = name or f"test.{uuid.uuid4().hex[:12]}"
        for future in self.admin.create_topics([NewTopic(topic, partitions, 1)]).values():
            future.result(timeout=30)
        return topic


@pytest.fixture
def proxied_broker() -> Iterator[ProxiedBroker]:
    """A broker of the suite's kind whose clients all connect through a TCP proxy."""
    broker_port = free_port()
    proxy = TcpProxy("127.0.0.1", broker_port).start()
    advertised = f"127.0.0.1:{proxy.port}"
    broker: BrokerProcess
    if suite_broker_kind() == "tansu":
        broker = TansuBroker(port=broker_port, advertised=advertised)
    else:
        broker = KafkaBroker(
            port=broker_port, properties={"advertised.listeners": f"PLAINTEXT://{advertised}"}
        )
    try:
        broker.start()
        admin = AdminClient({"bootstrap.servers": advertised, "log_level": 0})
        yield ProxiedBroker(proxy, advertised, admin)
    finally:
        proxy.close()
        broker.__exit__(None, None, None)
