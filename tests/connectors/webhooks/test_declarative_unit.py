"""The Standard-Webhooks YAML mapping (acme.yaml) and the fake API's failure injection."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from connectors.fakes import FakeApis
from connectors.webhooks.declarative import (
    compile_path,
    load_mappings,
    map_standard_event,
    resolve_path,
    resolve_steps,
)
from contracts import ConfigError, InterlockError, Reason
from contracts.identity import crm_account_id, crm_event_id, crm_quote_id

pytestmark = pytest.mark.unit

SENT = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
RECEIVED = datetime(2024, 5, 1, 9, 0, 1, tzinfo=UTC)


def _map(body: dict[str, object], webhook_id: str = "msg_1"):  # type: ignore[no-untyped-def]
    acme = load_mappings()["acme"]
    return map_standard_event(
        acme, body, webhook_id=webhook_id, webhook_timestamp=SENT, received_at=RECEIVED
    )


def test_acme_company_update_is_a_partial_account_change_keyed_by_canonical_id() -> None:
    event = _map({"type": "company.updated", "timestamp": "2024-05-01T08:59:00Z",
                  "data": {"id": "c-1", "name": "Acme", "domain": "acme.io"}})  # fmt: skip
    assert event is not None
    assert event.event_type == "AccountChanged"
    assert sorted(event.changed_fields) == ["crm_record_id", "name", "web_domain"]
    assert event.payload.account_id == crm_account_id("acme", "c-1")  # type: ignore[attr-defined]
    assert event.payload.web_domain == "acme.io"  # type: ignore[attr-defined]
    assert event.occurred_at == datetime(2024, 5, 1, 8, 59, tzinfo=UTC)
    assert event.source.system == "crm"
    assert event.source.record_id == "c-1"
    again = _map({"type": "company.updated", "data": {"id": "c-1", "name": "Other"}})
    assert again is not None
    assert again.event_id == event.event_id  # same webhook id → same event id
    assert event.event_id == crm_event_id("acme", "acme", "msg_1")
    assert again.occurred_at == SENT  # no timestamp in the body: the webhook-timestamp


def test_acme_quote_accepted_uses_constants_and_unlisted_types_give_nothing() -> None:
    event = _map({"type": "quote.accepted", "data": {"deal_id": "d-1", "company_id": "c-1",
                  "total": "10.50", "currency": "EUR", "revision": 2}})  # fmt: skip
    assert event is not None
    assert event.event_type == "QuoteAccepted"
    assert event.payload.status == "ACCEPTED"  # type: ignore[attr-defined]
    assert event.payload.total == Decimal("10.50")  # type: ignore[attr-defined]
    assert event.payload.account_id == crm_account_id("acme", "c-1")  # type: ignore[attr-defined]
    assert event.payload.quote_id == crm_quote_id("acme", "d-1")  # type: ignore[attr-defined]
    assert event.payload.revision == 2  # type: ignore[attr-defined]
    assert _map({"type": "invoice.paid", "data": {"id": "i-1"}}) is None


def test_a_path_compiles_to_its_steps_and_resolves_as_the_path_does() -> None:
    assert compile_path("$") == ()
    assert compile_path("$.data.lines[0].sku") == ("data", "lines", 0, "sku")
    assert compile_path("$.a.0[12]") == ("a", "0", 12)  # a name of digits stays a name
    doc: dict[str, Any] = {
        "data": {"lines": [{"sku": "S-1"}], "none": None, "text": "abc", "0": "zero"},
        "view": MappingProxyType({"k": "v"}),  # any Mapping, not only dicts
    }
    cases = {
        "$": doc,
        "$.data.lines[0].sku": "S-1",
        "$.data.lines[1].sku": None,  # index past the end
        "$.data.lines.sku": None,  # a name on a list
        "$.data[0]": None,  # an index on an object
        "$.data.text.length": None,  # a name on a string
        "$.data.text[0]": None,  # an index on a string
        "$.data.none.x": None,
        "$.data.0": "zero",
        "$.view.k": "v",
        "$.missing.x": None,
    }
    for path, value in cases.items():
        assert resolve_steps(doc, compile_path(path)) == value, path
        assert resolve_path(doc, path) == value, path
    assert resolve_path([1, 2], "$[1]") == 2
    assert resolve_path(None, "$.a") is None


def test_acme_missing_record_id_and_unfit_value_are_distinct_failures() -> None:
    with pytest.raises(InterlockError) as missing:
        _map({"type": "company.updated", "data": {"name": "No Id"}})
    assert missing.value.reason is Reason.VALIDATION_MISSING_FIELD
    with pytest.raises(InterlockError) as unfit:
        _map({"type": "quote.accepted", "data": {"deal_id": "d", "company_id": "c",
              "total": {"not": "a number"}}})  # fmt: skip
    assert unfit.value.reason is Reason.MAPPING_FAILED
    assert "QuoteEvent" in str(unfit.value)
    assert "payload.total" in str(unfit.value)  # names the event's field
    with pytest.raises(InterlockError, match=r"d-1: account missing at \$\.data\.company_id"):
        _map({"type": "quote.accepted", "data": {"deal_id": "d-1"}})


def test_a_yaml_error_names_file_mapping_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text(
        "source: broken\nvendor: broken\ntype: $.type\nevents:\n"
        "  x.y:\n    entity: invoice\n    event_type: X\n    record_id: $.id\n"
    )
    with pytest.raises(ConfigError) as err:
        load_mappings(tmp_path)
    text = str(err.value)
    assert "broken.yaml" in text
    assert "events.x.y.entity" in text
    bad.write_text("source: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML"):
        load_mappings(tmp_path)
    bad.write_text("source: s\nvendor: v\ntype: not-a-path\nevents: {}\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: type: .*not a JSON path"):
        load_mappings(tmp_path)
    bad.write_text(
        "source: s\nvendor: v\nevents:\n  deal.updated:\n    entity: quote\n"
        "    record_id: $.id\n    fields: {total: amount}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_mappings(tmp_path)
    assert "events.deal.updated.fields" in str(err.value)
    assert "total" in str(err.value)


def test_fake_api_failure_injection_and_idempotent_answers() -> None:
    fake = FakeApis()
    body = b'{"order_id": "o-1"}'
    fake.fail_next(2, 503)
    statuses = [fake.handle("POST", "/orders", {"idempotency-key": "k1"}, body).status_code
                for _ in range(3)]  # fmt: skip
    assert statuses == [503, 503, 201]
    repeat = fake.handle("POST", "/orders", {"idempotency-key": "k1"}, body)
    assert repeat.status_code == 201
    assert len(fake.orders) == 1  # the repeated key did not create a second order
    fake.fail_path("/deals/*", 422)
    assert fake.handle("PATCH", "/deals/d-1", {}, b"{}").status_code == 422
    assert fake.handle("POST", "/orders", {}, body).status_code == 201  # other paths unaffected
    fake.clear_failures()
    assert fake.handle("PATCH", "/deals/d-1", {}, b"{}").status_code == 200
    assert [c.status for c in fake.calls_to("PATCH", "/deals/")] == [422, 200]
