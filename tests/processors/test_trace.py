"""The journey of a correlation id: the right records, in the order they were written."""

from __future__ import annotations

import json

import pytest

from contracts import decode, encode
from processors.domain.quotes import decide_quote
from processors.trace import Record, journey
from tests.processors.events import quote_event

pytestmark = pytest.mark.unit

ACCOUNT = {"erp_customer_number": "C1", "currency": "EUR", "payment_terms": "NET30"}


def test_journey_keeps_only_the_correlation_id_and_orders_by_time() -> None:
    quote = quote_event("q-1", "a")
    command = decide_quote(quote, None, ACCOUNT).command
    assert command is not None
    other = quote_event("q-2", "a")
    decision = {
        "decision": "command_emitted",
        "correlation_id": "q-1",
        "event_id": command.event_id,
        "causation_id": quote.event_id,
        "at": quote.occurred_at.replace(microsecond=500000).isoformat(),
        "ids": {"quote_id": "q-1"},
        "details": {},
    }
    base = int(quote.occurred_at.timestamp() * 1000)  # audit decision at base + 500 ms
    records = [
        Record("commands.erp.create-order", base + 2000, b"a", encode(command)),
        Record("audit.decisions", base, b"q-1", json.dumps(decision).encode()),
        Record("canonical.quote.v1", base, b"a", encode(quote)),
        Record("canonical.quote.v1", base + 1100, b"a", encode(other)),
        Record("raw.crm.hubspot", base - 500, None, b'{"objectId": "q-1"}'),
    ]
    hops = journey(records, "q-1", "audit.decisions", decode)
    assert [h.topic for h in hops] == [
        "raw.crm.hubspot",
        "canonical.quote.v1",
        "audit.decisions",
        "commands.erp.create-order",
    ]
    assert hops[-1].causation_id == quote.event_id
