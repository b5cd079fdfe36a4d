"""What the simulator sends is what the connectors accept: signatures, payload shapes, Debezium.

These tests hold the simulator to the connectors' own code (verification, HubSpot and
Standard-Webhooks mappings, the CDC decoder and mapper), so a drift in either shows here.
"""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from connectors.cdc.envelope import EnvelopeDecoder
from connectors.cdc.mapper import CdcMapper
from connectors.cdc.spec import load_mapping_dir
from connectors.hubspot.mapping import HubSpotContext, map_hubspot_payload
from connectors.webhooks.declarative import load_mappings, map_standard_event
from connectors.webhooks.signatures import SignatureError, verify_hubspot_v3, verify_standard
from ops.simulator.conventions import crm_account_id, crm_quote_id, erp_account_id
from ops.simulator.scenario import ChangeAction, FaultMix, Scenario, WebhookAction
from ops.simulator.wire import (
    Dialect,
    SignedRequest,
    _stamp,
    debezium_envelope,
    debezium_key,
    render_body,
    sign_request,
)

pytestmark = pytest.mark.unit

NOW_MS = 1_790_000_000_000
SECRET = "hubspot-client-secret"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _actions(n: int = 3000) -> list[WebhookAction]:
    stream = Scenario(21, FaultMix(revision=0.3)).actions()
    return [a for a in itertools.islice(stream, n) if isinstance(a, WebhookAction)]


def _accept() -> WebhookAction:
    return next(
        a
        for a in _actions()
        if a.fault is None
        and a.repeat is None
        and a.events[0].get("propertyValue") == "closedwon"
        and a.events[0]["lines"]
    )


def _verify_hubspot(req: SignedRequest) -> None:
    """Check a signed request as the receiver does (v3 signature, five-minute window)."""
    verify_hubspot_v3(
        SECRET,
        method="POST",
        uri=req.url,
        body=req.body,
        signature=req.headers["X-HubSpot-Signature-v3"],
        timestamp=req.headers["X-HubSpot-Request-Timestamp"],
        now_ms=NOW_MS,
        max_age_s=300,
    )


def test_hubspot_signature_verifies_and_a_bad_one_does_not() -> None:
    action = _accept()
    body = render_body(action, "hubspot", NOW_MS)
    assert body is not None
    req = sign_request(
        action, "hubspot", body, base_url="http://127.0.0.1:8080/", now_ms=NOW_MS, secret=SECRET
    )
    _verify_hubspot(req)
    bad = next(a for a in _actions() if a.fault == "bad_signature")
    bad_body = render_body(bad, "hubspot", NOW_MS)
    assert bad_body is not None
    req = sign_request(
        bad, "hubspot", bad_body, base_url="http://127.0.0.1:8080", now_ms=NOW_MS, secret=SECRET
    )
    with pytest.raises(SignatureError):
        _verify_hubspot(req)


def test_standard_signature_verifies_and_a_bad_one_does_not() -> None:
    # the standardwebhooks package checks its own 5-minute window against the real clock
    now_ms = int(time.time() * 1000)
    action = _accept()
    body = render_body(action, "standard", now_ms)
    assert body is not None
    req = sign_request(action, "standard", body, base_url="http://h", now_ms=now_ms, secret=WHSEC)
    assert req.url == "http://h/webhooks/standard/acme"
    verify_standard(WHSEC, req.body, req.headers, now_s=now_ms / 1000, tolerance_s=300)
    bad = WebhookAction("x", action.events, "bad_signature")
    req = sign_request(bad, "standard", body, base_url="http://h", now_ms=now_ms, secret=WHSEC)
    with pytest.raises(SignatureError):
        verify_standard(WHSEC, req.body, req.headers, now_s=now_ms / 1000, tolerance_s=300)


def test_malformed_bodies_are_not_json() -> None:
    bad = next(a for a in _actions() if a.fault == "bad_json")
    dialects: tuple[Dialect, ...] = ("hubspot", "standard")
    for dialect in dialects:
        body = render_body(bad, dialect, NOW_MS)
        assert body is not None
        with pytest.raises(json.JSONDecodeError):
            json.loads(body)


def test_hubspot_acceptance_maps_to_the_quote_of_the_ground_truth() -> None:
    action = _accept()
    event = action.events[0]
    body = render_body(action, "hubspot", NOW_MS)
    assert body is not None
    ctx = HubSpotContext(received_at=datetime.now(UTC))
    [(_, mapped)] = map_hubspot_payload(json.loads(body), ctx)
    assert mapped is not None
    assert not isinstance(mapped, Exception)
    assert mapped.event_type == "QuoteAccepted"
    assert mapped.payload.quote_id == crm_quote_id(str(event["objectId"]))  # type: ignore[attr-defined]
    assert mapped.payload.account_id == crm_account_id(str(event["associatedCompanyId"]))  # type: ignore[attr-defined]


def test_every_valid_hubspot_delivery_maps_without_failure() -> None:
    ctx = HubSpotContext(received_at=datetime.now(UTC))
    for action in _actions(1500):
        if action.fault is None:
            body = render_body(action, "hubspot", NOW_MS)
            assert body is not None
            for _, outcome in map_hubspot_payload(json.loads(body), ctx):
                assert not isinstance(outcome, Exception), outcome


def test_standard_acceptance_carries_its_lines() -> None:
    action = _accept()
    body = render_body(action, "standard", NOW_MS)
    assert body is not None
    mapping = load_mappings()["acme"]
    now = datetime.now(UTC)
    mapped = map_standard_event(
        mapping, json.loads(body), webhook_id="m1", webhook_timestamp=now, received_at=now
    )
    assert mapped is not None
    assert mapped.event_type == "QuoteAccepted"
    quote = mapped.payload
    deal = str(action.events[0]["objectId"])
    assert quote.quote_id == deterministic_quote("acme", deal) == crm_quote_id(deal, "acme")  # type: ignore[attr-defined]
    assert len(quote.lines) == len(action.events[0]["lines"])  # type: ignore[attr-defined]
    assert quote.revision == action.events[0]["quoteRevision"]  # type: ignore[attr-defined]


def deterministic_quote(vendor: str, deal: str) -> str:
    from contracts.identity import crm_quote_id as connector_quote_id

    return connector_quote_id(vendor, deal)


def test_debezium_changes_decode_and_map_to_canonical_accounts() -> None:
    stream = Scenario(4).actions()
    changes = [a for a in itertools.islice(stream, 400) if isinstance(a, ChangeAction)]
    customer = next(c for c in changes if c.table == "customers")
    decoder = EnvelopeDecoder()
    mapper = CdcMapper(load_mapping_dir())
    for change in changes:
        decoded = decoder.decode(debezium_envelope(change, NOW_MS), f"raw.erp.{change.table}")
        assert decoded is not None
        assert decoded.table == change.table
        mapper.map(decoded)
    decoded = decoder.decode(debezium_envelope(customer, NOW_MS), "raw.erp.customers")
    assert decoded is not None
    mapped = mapper.map(decoded)
    assert mapped.event.payload.account_id == erp_account_id(customer.key["customer_number"])  # type: ignore[attr-defined]
    assert mapped.event.payload.shipping_address is not None  # type: ignore[attr-defined]


def test_debezium_records_read_as_json_wrote_them() -> None:
    """The envelope and key are written by orjson; they read back as ``json`` wrote them, values
    ``json`` could not write (a datetime, a Decimal) as their ``str``; the key (it partitions the
    record) is compact, sorted JSON byte for byte, text as UTF-8, as Debezium writes text."""
    stream = Scenario(4).actions()
    changes = [a for a in itertools.islice(stream, 400) if isinstance(a, ChangeAction)]
    when = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
    row = {"placed_at": when, "amount": Decimal("12.30"), "note": "café", "updated_at": None}
    odd = ChangeAction("orders", "u", {"order_number": "SO-ü1", "line": 2}, None, row, 7)
    iso = datetime.fromtimestamp(NOW_MS / 1000, UTC).isoformat().replace("+00:00", "Z")
    for change in [*changes, odd]:
        envelope = json.loads(debezium_envelope(change, NOW_MS))
        for side in ("before", "after"):
            written = json.dumps(_stamp(getattr(change, side), iso), default=str)
            assert envelope[side] == json.loads(written)
        key = json.dumps(change.key, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        assert debezium_key(change) == key.encode()
    after = json.loads(debezium_envelope(odd, NOW_MS))["after"]
    assert after == {"placed_at": str(when), "amount": "12.30", "note": "café", "updated_at": iso}
