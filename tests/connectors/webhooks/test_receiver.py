"""The receiver over real HTTP on loopback, against the broker fixture, with the mapping stage."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest

from contracts import decode
from interlock.settings import Settings
from tests.conftest import consume_n, end_offsets
from tests.connectors.webhooks.conftest import (
    STANDARD_SECRET,
    Receiver,
    hubspot_company_change,
    hubspot_headers,
    standard_headers,
)

pytestmark = pytest.mark.integration


def _acme_quote_accepted(deal: str) -> bytes:
    return json.dumps(
        {
            "type": "quote.accepted",
            "timestamp": "2024-05-01T10:00:00Z",
            "data": {"deal_id": deal, "company_id": "c-1", "total": "99.50", "currency": "EUR"},
        }
    ).encode()


def test_signed_hubspot_and_standard_requests_land_and_become_canonical_events(
    receiver: Receiver, make_consumer: Callable[..., object]
) -> None:
    url = f"{receiver.url}/webhooks/hubspot"
    body = hubspot_company_change(4711, "Acme GmbH")
    with httpx.Client() as client:
        hub = client.post(url, content=body, headers=hubspot_headers(url, body))
        sbody = _acme_quote_accepted("d-9")
        std = client.post(
            f"{receiver.url}/webhooks/standard/acme",
            content=sbody,
            headers=standard_headers(sbody, f"msg_{uuid.uuid4().hex}"),
        )
    assert hub.status_code == 200, hub.text
    assert std.status_code == 200, std.text

    (account_msg,) = consume_n(make_consumer(receiver.canonical("account")), 1, 30)  # type: ignore[arg-type]
    account = decode(account_msg.value())  # type: ignore[attr-defined]
    assert account.event_type == "AccountChanged"
    assert account.payload.name == "Acme GmbH"
    assert account.changed_fields == ["name"]
    assert account_msg.key() == account.payload.account_id.encode()  # type: ignore[attr-defined]

    (quote_msg,) = consume_n(make_consumer(receiver.canonical("quote")), 1, 30)  # type: ignore[arg-type]
    quote = decode(quote_msg.value())  # type: ignore[attr-defined]
    assert quote.event_type == "QuoteAccepted"
    assert quote.payload.crm_deal_id == "d-9"
    assert quote.payload.total == Decimal("99.50")

    (raw,) = consume_n(make_consumer(receiver.raw_hubspot), 1, 10)  # type: ignore[arg-type]
    assert raw.value() == body  # type: ignore[attr-defined]
    # Keyed by the company, so one company's requests stay in order through the mapping stage;
    # the webhook id (the first eventId, also the answer's id) is kept as a header.
    assert raw.key() == b"company:4711"  # type: ignore[attr-defined]
    headers = dict(raw.headers())  # type: ignore[attr-defined]
    assert headers["interlock.webhook.id"] == hub.json()["id"].encode()
    names = {k for k, _ in raw.headers()}  # type: ignore[attr-defined]
    assert "interlock.webhook.received_at" in names
    assert "x-hubspot-signature-v3" not in names


def test_the_senders_headers_are_kept_on_the_raw_record_byte_for_byte(
    receiver: Receiver, make_consumer: Callable[..., object]
) -> None:
    body = _acme_quote_accepted("d-ua")
    agent = "Acme-Hooks/2 (Köln)".encode()  # UTF-8, which HTTP carries as opaque bytes
    headers = {**standard_headers(body, f"msg_{uuid.uuid4().hex}"), "user-agent": agent}
    answer = httpx.post(f"{receiver.url}/webhooks/standard/acme", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    (raw,) = consume_n(make_consumer(receiver.raw_standard), 1, 10)  # type: ignore[arg-type]
    kept = dict(raw.headers())  # type: ignore[attr-defined]
    assert kept["user-agent"] == agent
    assert kept["webhook-id"] == headers["webhook-id"].encode()


def test_bad_requests_get_the_right_status_and_a_reason(receiver: Receiver) -> None:
    url = f"{receiver.url}/webhooks/hubspot"
    body = hubspot_company_change(1, "x")
    sbody = _acme_quote_accepted("d-1")
    std_url = f"{receiver.url}/webhooks/standard/acme"
    with httpx.Client() as client:
        tampered = client.post(url, content=body + b" ", headers=hubspot_headers(url, body))
        wrong = client.post(url, content=body, headers=hubspot_headers(url, body, secret="nope"))
        stale = client.post(url, content=body, headers=hubspot_headers(url, body, age_s=600))
        missing = client.post(url, content=body)
        std_tampered = client.post(
            std_url, content=sbody.replace(b"99", b"10"), headers=standard_headers(sbody, "m1")
        )
        std_wrong = client.post(
            std_url,
            content=sbody,
            headers=standard_headers(sbody, "m2", secret=STANDARD_SECRET[:-4] + "AAA="),
        )
        std_stale = client.post(
            std_url, content=sbody, headers=standard_headers(sbody, "m3", age_s=900)
        )
        big = b"[" + b" " * 5000 + b"]"
        oversize = client.post(url, content=big, headers=hubspot_headers(url, big))
        chunked = client.post(
            url, content=iter([b"[", b" " * 3000, b" " * 3000, b"]"]), headers={"X": "y"}
        )
        bad = b"[{not json"
        malformed = client.post(url, content=bad, headers=hubspot_headers(url, bad))
        unknown = client.post(
            f"{receiver.url}/webhooks/standard/nobody",
            content=sbody,
            headers=standard_headers(sbody, "m4"),
        )
    for response in (tampered, wrong, stale, missing, std_tampered, std_wrong, std_stale):
        assert response.status_code == 401, response.text
    assert stale.json()["error"] == "signature_stale"
    assert std_stale.json()["error"] == "signature_stale"
    assert tampered.json()["error"] == "signature_invalid"
    assert oversize.status_code == 413
    assert chunked.status_code == 413  # no Content-Length: enforced while streaming
    assert malformed.status_code == 400
    assert malformed.json()["error"] == "malformed_json"
    assert unknown.status_code == 404
    for response in (tampered, oversize, malformed, unknown):
        assert set(response.json()) == {"error", "reason"}
    # nothing was landed for any of them
    ends = end_offsets(
        {"bootstrap.servers": _bootstrap(receiver)},
        [(receiver.raw_hubspot, 0), (receiver.raw_standard, 0)],
    )
    assert ends == {(receiver.raw_hubspot, 0): 0, (receiver.raw_standard, 0): 0}


def _bootstrap(receiver: Receiver) -> str:
    return _BOOTSTRAP[0]


_BOOTSTRAP: list[str] = []


@pytest.fixture(autouse=True)
def _remember_bootstrap(settings: Settings) -> None:
    _BOOTSTRAP[:] = [settings.kafka.bootstrap_servers or ""]


def test_the_same_webhook_three_times_yields_one_canonical_event(
    receiver: Receiver, make_consumer: Callable[..., object]
) -> None:
    url = f"{receiver.url}/webhooks/hubspot"
    body = hubspot_company_change(77, "Once Ltd", event_id=123456)
    sbody = _acme_quote_accepted("d-3")
    msg_id = f"msg_{uuid.uuid4().hex}"
    with httpx.Client() as client:
        for _ in range(3):
            assert (
                client.post(url, content=body, headers=hubspot_headers(url, body)).status_code
                == 200
            )
            std = client.post(
                f"{receiver.url}/webhooks/standard/acme",
                content=sbody,
                headers=standard_headers(sbody, msg_id),
            )
            assert std.status_code == 200
    raw = consume_n(make_consumer(receiver.raw_hubspot, receiver.raw_standard), 6, 20)  # type: ignore[arg-type]
    assert len(raw) == 6  # every delivery was landed and acknowledged
    # The mapper has handled all six once it counted four duplicates; then count the outputs.
    deadline = time.monotonic() + 30
    suppressed = 0.0
    while suppressed < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
        suppressed = (
            receiver.instruments.registry.get_sample_value(
                "interlock_duplicates_suppressed_total",
                {"service": "webhooks-test", "stage": "webhook-mapper"},
            )
            or 0.0
        )
    assert suppressed == 4
    account_t, quote_t = receiver.canonical("account"), receiver.canonical("quote")
    ends = end_offsets({"bootstrap.servers": _bootstrap(receiver)}, [(account_t, 0), (quote_t, 0)])
    assert ends == {(account_t, 0): 1, (quote_t, 0): 1}


def test_metrics_and_health_are_served(receiver: Receiver) -> None:
    with httpx.Client() as client:
        assert client.get(f"{receiver.url}/healthz").json() == {"status": "ok"}
        client.post(f"{receiver.url}/webhooks/hubspot", content=b"[]")
        text = client.get(f"{receiver.url}/metrics").text
    assert 'interlock_webhook_requests_total{source="hubspot",status="401"} 1.0' in text
