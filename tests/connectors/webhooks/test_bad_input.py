"""Bad input gets a 4xx that says why, counted, and lands nothing (found by a tester).

Before: a signed body nested 3,000 levels deep got 500 with a RecursionError (and 500s were not
counted); a signed body of invalid UTF-8 got 401 signature_invalid; a 100 KB ``webhook-id`` was
accepted and became a 100 KB Kafka key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from interlock.settings import Settings
from tests.conftest import end_offsets
from tests.connectors.webhooks.conftest import (
    STANDARD_SECRET,
    Receiver,
    hubspot_headers,
    standard_headers,
    start_receiver,
    webhook_settings,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver(settings: Settings, make_topic: Callable[..., str]) -> Iterator[Receiver]:
    """The receiver with room for 64 KiB bodies (the suite's default cap is 4 KiB)."""
    roomy = webhook_settings(max_body_bytes=65_536)
    yield from start_receiver(settings, make_topic, mapper=False, webhooks=roomy)


def signed_bytes_headers(body: bytes, msg_id: str, stamp: str | None = None) -> dict[str, str]:
    """Standard Webhooks headers signed over the raw bytes (what the spec signs)."""
    stamp = stamp or str(int(time.time()))
    key = base64.b64decode(STANDARD_SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def _count(receiver: Receiver, source: str, status: int) -> float:
    value = receiver.instruments.registry.get_sample_value(
        "interlock_webhook_requests_total", {"source": source, "status": str(status)}
    )
    return value or 0.0


def _nothing_landed(receiver: Receiver, settings: Settings) -> None:
    conf = {"bootstrap.servers": settings.kafka.bootstrap_servers}
    raw = [(receiver.raw_hubspot, 0), (receiver.raw_standard, 0)]
    assert set(end_offsets(conf, raw).values()) == {0}


def test_signed_json_nested_3000_deep_gets_400_json_too_deep_counted(
    receiver: Receiver, settings: Settings
) -> None:
    deep = b"[" * 3000 + b"]" * 3000
    hub_url = f"{receiver.url}/webhooks/hubspot"
    with httpx.Client(timeout=30) as client:
        std = [
            client.post(
                f"{receiver.url}/webhooks/standard/acme",
                content=deep,
                headers=standard_headers(deep, f"msg_deep_{i}"),
            )
            for i in range(3)
        ]
        hub = client.post(hub_url, content=deep, headers=hubspot_headers(hub_url, deep))
    for answer in [*std, hub]:
        assert answer.status_code == 400, answer.text
        assert answer.json() == {
            "error": "json_too_deep",
            "reason": "body nests 3000 levels deep, more than 64",
        }
    assert _count(receiver, "acme", 400) == 3
    assert _count(receiver, "hubspot", 400) == 1
    _nothing_landed(receiver, settings)


def test_signed_body_that_is_not_utf8_gets_400_not_utf8(
    receiver: Receiver, settings: Settings
) -> None:
    latin1 = '{"type": "company.updated", "data": {"name": "Müller"}}'.encode("latin-1")
    hub_url = f"{receiver.url}/webhooks/hubspot"
    with httpx.Client(timeout=30) as client:
        std = client.post(
            f"{receiver.url}/webhooks/standard/acme",
            content=latin1,
            headers=signed_bytes_headers(latin1, "msg_latin1"),
        )
        hub = client.post(hub_url, content=latin1, headers=hubspot_headers(hub_url, latin1))
        forged = signed_bytes_headers(latin1, "msg_latin1")
        forged["webhook-signature"] = "v1," + base64.b64encode(b"x" * 32).decode()
        unsigned = client.post(
            f"{receiver.url}/webhooks/standard/acme", content=latin1, headers=forged
        )
    for answer in (std, hub):
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "not_utf8"
        assert answer.json()["reason"] == "body is not UTF-8 (byte 47: invalid start byte)"
    assert unsigned.status_code == 401  # an unsigned one is still refused as unsigned
    assert unsigned.json()["error"] == "signature_invalid"
    _nothing_landed(receiver, settings)


def test_overlong_ids_and_headers_are_refused_and_never_become_keys(
    receiver: Receiver, settings: Settings
) -> None:
    body = json.dumps({"type": "company.updated", "data": {"id": "c-1"}}).encode()
    std_url = f"{receiver.url}/webhooks/standard/acme"
    hub_url = f"{receiver.url}/webhooks/hubspot"
    huge_id = "m" * 100_000
    with httpx.Client(timeout=30) as client:
        long_id = client.post(std_url, content=body, headers=standard_headers(body, huge_id))
        headers = standard_headers(body, "msg_sig")
        headers["webhook-signature"] = " ".join([headers["webhook-signature"]] * 40)
        long_signature = client.post(std_url, content=body, headers=headers)
        headers = standard_headers(body, "msg_stamp")
        headers["webhook-timestamp"] = "9" * 400  # an int no float holds
        far_stamp = client.post(std_url, content=body, headers=headers)
        event = json.dumps([{"eventId": "e" * 5000, "subscriptionType": "company.creation"}])
        hub_body = event.encode()
        long_event_id = client.post(
            hub_url, content=hub_body, headers=hubspot_headers(hub_url, hub_body)
        )
        surrogate = b'[{"eventId": "\\ud800", "subscriptionType": "company.creation"}]'
        lone_surrogate_id = client.post(
            hub_url, content=surrogate, headers=hubspot_headers(hub_url, surrogate)
        )
        agent = standard_headers(body, "msg_agent")
        agent["User-Agent"] = "a" * 5000
        long_agent = client.post(std_url, content=body, headers=agent)
    assert long_id.status_code == 431, long_id.text
    assert long_id.json() == {
        "error": "header_too_large",
        "reason": "webhook-id header is 100000 bytes, more than 256",
    }
    assert long_signature.status_code == 431
    assert long_signature.json()["reason"].startswith("webhook-signature header is")
    assert long_agent.status_code == 431
    assert far_stamp.status_code == 401
    assert far_stamp.json()["error"] == "signature_stale"
    assert long_event_id.status_code == 400
    assert long_event_id.json() == {
        "error": "id_too_long",
        "reason": "eventId is longer than 256 bytes",
    }
    assert lone_surrogate_id.status_code == 400  # JSON can escape one; a key cannot hold it
    assert lone_surrogate_id.json()["error"] == "invalid_id"
    assert _count(receiver, "acme", 431) == 3
    _nothing_landed(receiver, settings)
