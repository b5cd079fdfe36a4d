"""Pure mapping, signature and breaker logic."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.hubspot.mapping import HubSpotContext, map_hubspot_event
from connectors.sinks.breaker import CircuitBreaker
from connectors.webhooks.signatures import SignatureError, hubspot_v3_signature, verify_hubspot_v3
from contracts import InterlockError, Reason
from contracts.identity import crm_account_id

pytestmark = pytest.mark.unit
CTX = HubSpotContext(received_at=datetime(2024, 1, 1, tzinfo=UTC))


def _event(kind: str, **extra: object) -> dict[str, object]:
    return {"eventId": 1, "subscriptionType": kind, "objectId": 42, "portalId": 7,
            "occurredAt": 1_700_000_000_000, **extra}  # fmt: skip


def test_company_property_change_is_a_partial_account_change() -> None:
    event = map_hubspot_event(_event("company.propertyChange", propertyName="domain",
                                     propertyValue="acme.io"), CTX)  # fmt: skip
    assert event is not None
    assert event.changed_fields == ["web_domain"]
    assert event.payload.account_id == crm_account_id("hubspot", "42")  # type: ignore[attr-defined]


def test_deal_to_closedwon_is_quote_accepted_and_needs_its_company() -> None:
    change = _event("deal.propertyChange", propertyName="dealstage", propertyValue="closedwon")
    with pytest.raises(InterlockError) as err:
        map_hubspot_event(change, CTX)
    assert err.value.reason is Reason.VALIDATION_MISSING_FIELD
    event = map_hubspot_event({**change, "associatedCompanyId": 9}, CTX)
    assert event is not None
    assert event.event_type == "QuoteAccepted"
    assert event.payload.status == "ACCEPTED"  # type: ignore[attr-defined]


def test_same_event_id_same_canonical_id_and_unmapped_property_is_skipped() -> None:
    a = map_hubspot_event(_event("company.deletion"), CTX)
    b = map_hubspot_event(_event("company.deletion"), CTX)
    assert a is not None
    assert b is not None
    assert a.event_id == b.event_id
    skipped = _event("company.propertyChange", propertyName="x_custom", propertyValue="1")
    assert map_hubspot_event(skipped, CTX) is None


def test_hubspot_signature_rejects_tampering_and_staleness() -> None:
    sig = hubspot_v3_signature("s", "POST", "http://h/x", b"[]", "1000")
    verify_hubspot_v3("s", method="POST", uri="http://h/x", body=b"[]", signature=sig,
                      timestamp="1000", now_ms=2000, max_age_s=300)  # fmt: skip
    with pytest.raises(SignatureError, match="does not match"):
        verify_hubspot_v3("s", method="POST", uri="http://h/x", body=b"[1]", signature=sig,
                          timestamp="1000", now_ms=2000, max_age_s=300)  # fmt: skip
    with pytest.raises(SignatureError, match="older"):
        verify_hubspot_v3("s", method="POST", uri="http://h/x", body=b"[]", signature=sig,
                          timestamp="1000", now_ms=400_000, max_age_s=300)  # fmt: skip


def test_breaker_opens_probes_and_closes() -> None:
    now = [0.0]
    breaker = CircuitBreaker(2, 10, clock=lambda: now[0])
    breaker.failure()
    assert breaker.allow()
    breaker.failure()
    assert breaker.state == "open"
    assert not breaker.allow()
    now[0] = 11
    assert breaker.allow()  # the one probe
    assert not breaker.allow()
    breaker.success()
    assert breaker.state == "closed"
