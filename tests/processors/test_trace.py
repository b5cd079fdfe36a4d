"""The journey of a correlation id: the right records, in the order they were written."""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import typer
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from typer.testing import CliRunner

from contracts import decode, encode
from contracts.ids import deterministic_event_id
from contracts.models import Envelope
from interlock.settings import Settings
from processors.domain.quotes import decide_quote, order_id_for
from processors.topic_names import ProcessorTopics
from processors.trace import Hop, Record, journey, make_trace_command, resolve, waiting
from tests.processors.conftest import all_topics, create_topics
from tests.processors.events import account_event, erp_order_event, quote_event
from tests.processors.harness import PipelineHarness, worker_config

ACCOUNT = {"erp_customer_number": "C1", "currency": "EUR", "payment_terms": "NET30"}


@pytest.mark.unit
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


@pytest.mark.unit
def test_any_id_a_user_has_resolves_to_the_quote_and_its_raw_webhook_is_a_hop() -> None:
    webhook_id = "msg_42"
    quote = quote_event("q-7", "a")
    # the id a Standard-Webhooks mapping gives: (mapping vendor, source, webhook id)
    mapped_id = deterministic_event_id("crm", quote.source.vendor, "acme", webhook_id)
    quote = quote.model_copy(update={"event_id": mapped_id})
    order = erp_order_event("o-7", "a", "q-7", number="SO-000007")
    other = quote_event("q-8", "a")
    base = int(quote.occurred_at.timestamp() * 1000)
    headers = (
        ("interlock.webhook.source", b"acme"),
        ("interlock.webhook.vendor", b"standard"),
        ("interlock.webhook.id", webhook_id.encode()),
    )
    records = [
        Record("raw.crm.standard", base - 100, b"k", b'{"type": "deal.accepted"}', headers),
        Record("canonical.quote.v1", base, b"a", encode(quote)),
        Record("canonical.quote.v1", base + 1, b"a", encode(other)),
        Record("canonical.order.v1", base + 900, b"a", encode(order)),
    ]
    for wanted in (webhook_id, "deal-q-7", "q-7", "SO-000007", "o-7", quote.event_id):
        assert resolve(records, wanted, "audit.decisions", decode) == "q-7", wanted
    assert resolve(records, "no-such-id", "audit.decisions", decode) is None
    hops = journey(records, "q-7", "audit.decisions", decode)
    assert [h.what for h in hops] == ["webhook received", "QuoteAccepted", "OrderStatusChanged"]
    assert hops[0].event_id == webhook_id


@pytest.mark.unit
def test_a_parked_quote_says_what_it_waits_for_and_how_long_it_has_left() -> None:
    at = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    parked = Hop(at, "audit.decisions", "decision: parked", "e", "", '{"waiting_for": "account"}')
    status = waiting([parked], 300.0, now=at + timedelta(seconds=100))
    assert status is not None
    assert "parked" in status
    assert "account" in status
    assert "200 s left" in status
    moved = Hop(at, "audit.decisions", "decision: released", "e", "", "")
    assert waiting([parked, moved], 300.0) is None


@pytest.mark.integration
def test_the_trace_command_reads_a_journey_back_from_the_topics(
    settings: Settings, admin: AdminClient
) -> None:
    """A quote's journey as the pipeline writes it (the quote, its create-order, the ERP's
    confirmation, the update-deal and the CRM's echo of it), on a broker: ``interlock trace``
    reads it back from the topics and prints it in order, the echo's decision included."""
    topics = ProcessorTopics(f"tr{uuid.uuid4().hex[:10]}.")
    create_topics(admin, all_topics(topics))
    h = PipelineHarness(dataclasses.replace(worker_config(), topics=topics), now=time.time())
    producer = Producer(settings.kafka.librdkafka())
    written = 0
    stamps = itertools.count(int(time.time() * 1000), 10)

    def send(topic: str, event: Envelope) -> None:
        """Handle ``event`` and write it, then what the pipeline wrote for it, to the topics,
        each record 10 ms after the one before (the journey is ordered by record time)."""
        nonlocal written
        key = event.payload.account_id.encode()  # type: ignore[attr-defined]
        producer.produce(topic, encode(event), key=key, timestamp=next(stamps))
        h.send(topic, event)
        for out_topic, out_key, value, headers in h.records[written:]:
            producer.produce(out_topic, value, key=out_key, headers=headers, timestamp=next(stamps))
        written = len(h.records)

    order = erp_order_event(order_id_for("q-t"), "acc-t", "q-t", status="CONFIRMED", number="SO-7")
    send(topics.account, account_event("acc-t"))
    send(topics.quote, quote_event("q-t", "acc-t"))
    send(topics.order, order)
    (update,) = h.commands(topics.update_deal)
    echo = erp_order_event(
        order_id_for("q-t"), "acc-t", "q-t", version=2, system="crm",
        crm_record_id="deal-q-t", status="CONFIRMED", number="SO-7",
    )  # fmt: skip
    send(topics.order, echo)
    assert producer.flush(30) == 0

    app = typer.Typer()
    app.command()(make_trace_command(lambda: settings))
    result = CliRunner().invoke(app, ["q-t", "--prefix", topics.prefix])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()

    def first(text: str) -> int:
        """The first row whose topic or kind is ``text`` (a decision's details name topics too)."""
        return next(i for i, line in enumerate(lines) if f"│ {text} " in line)

    assert (
        first(topics.quote)
        < first(topics.create_order)
        < first("OrderStatusChanged")
        < first(topics.update_deal)
    ), result.output
    assert "decision: echo_suppressed" in result.output
    assert update.event_id[:8] in result.output
