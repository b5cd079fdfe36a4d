"""The hot path's shortcuts give exactly what the slow, fully validated path gives.

- order commands are built from dicts without pydantic validation: they must equal the
  validated model and survive the wire byte for byte;
- a durable command is read back from its ``interlock.order-state`` (order commands) or
  ``interlock.deal-write`` (update-deal) header instead of being decoded: the tables must end
  up the same as when it is decoded, and a bad header must fall back to decoding;
- audit records are JSON written by orjson: still one parseable JSON object per decision.
"""

from __future__ import annotations

import json
from datetime import UTC, timedelta, timezone, tzinfo
from typing import Any

import pytest

from contracts import decode, encode
from contracts.errors import InterlockError
from contracts.models import OrderEvent
from contracts.ownership import load_ownership
from interlock.instruments import Instruments
from interlock.metrics import new_registry
from interlock.records import RawRecord
from interlock.settings import Settings
from processors.audit import decision_record, encode_record
from processors.domain.quotes import build_order_command, decide_quote
from processors.domain.writeback import deal_update, deal_write_of, fold_written
from processors.output import Codecs
from processors.pipeline import READBACK_HEADER, Pipeline, PipelineConfig
from processors.readback import DEAL_WRITE_HEADER, deal_write_header, deal_write_readback
from processors.state import Tables
from processors.topic_names import ProcessorTopics
from tests.processors.events import (
    ACCOUNT_STATE,
    ADDRESS,
    account_event,
    erp_order_event,
    invoice_event,
    quote_event,
    shipment_event,
)

pytestmark = pytest.mark.unit

ACCOUNT: dict[str, Any] = {**ACCOUNT_STATE, "shipping_address": ADDRESS.model_dump(mode="json")}


@pytest.mark.parametrize("kind", ["create-order", "amend-order", "cancel-order"])
@pytest.mark.parametrize("ship_to_on_quote", [True, False])
def test_built_command_equals_the_validated_model(kind: str, ship_to_on_quote: bool) -> None:
    quote = quote_event("q1", "a", revision=3, **({} if ship_to_on_quote else {"ship_to": None}))
    command = build_order_command(kind, quote, ACCOUNT)  # type: ignore[arg-type]
    validated = OrderEvent.model_validate(command.model_dump())
    assert command == validated
    assert command.model_dump() == validated.model_dump()
    assert decode(encode(command)) == validated
    assert encode(command) == encode(validated)
    assert command.payload.ship_to == ADDRESS
    assert [line.line_number for line in command.payload.lines] == [1, 2]


def test_account_state_of_the_wrong_type_is_refused() -> None:
    account = {**ACCOUNT, "currency": 978}
    with pytest.raises(InterlockError, match="text is expected"):
        build_order_command("create-order", quote_event("q1", "a", currency=None), account)


class _Emitted:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes, tuple[tuple[str, bytes], ...]]] = []

    def __call__(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self.records.append((topic, key, value, tuple(headers or ())))


def _pipeline(
    decode_calls: list[bytes] | None = None, *, ledger: bool = False
) -> tuple[Pipeline, _Emitted]:
    codecs = Codecs(Settings(_env_file=None))  # type: ignore[call-arg]

    def counting_decode(data: bytes) -> Any:
        if decode_calls is not None:
            decode_calls.append(data)
        return codecs.decode(data)

    emitted = _Emitted()
    pipeline = Pipeline(
        PipelineConfig(ProcessorTopics("t."), load_ownership(), 300.0, 3600.0, 0.85),
        Tables(*({} for _ in range(8)), ledger={} if ledger else None),
        decode=counting_decode,
        encode=codecs.encode,
        emit=emitted,
        dead_letter=lambda raw, exc, durable: None,
        instruments=Instruments(new_registry(), "test"),
        clock=lambda: 1_000.0,
    )
    return pipeline, emitted


def _run(header: str) -> tuple[Pipeline, list[bytes]]:
    """Account, two quotes, then their commands read back with the header kept/bad/dropped."""
    pipeline, emitted = _pipeline()
    topics = pipeline.topics
    pipeline.handle(RawRecord(topics.account, 0, 0, b"a", encode(account_event("a")), ()))
    for n, quote in enumerate([quote_event("q1", "a"), quote_event("q2", "a", revision=2)]):
        pipeline.handle(RawRecord(topics.quote, 0, n, b"a", encode(quote), ()))
    commands = [r for r in emitted.records if r[0] == topics.create_order]
    assert len(commands) == 2
    assert all(h[0][0] == READBACK_HEADER for *_, h in commands)
    decoded: list[bytes] = []
    pipeline.decode = lambda data: decoded.append(data) or decode(data)  # type: ignore[func-returns-value]
    for n, (topic, key, value, headers) in enumerate(commands):
        if header == "bad":
            headers = ((READBACK_HEADER, b'{"state": {"quote_id": "q1"}}'),)
        elif header == "none":
            headers = ()
        pipeline.on_command(RawRecord(topic, 0, n, key, value, headers))
    return pipeline, decoded


def test_read_back_from_the_header_equals_read_back_by_decoding() -> None:
    fast, fast_decoded = _run("keep")
    slow, slow_decoded = _run("none")
    bad, bad_decoded = _run("bad")
    assert fast_decoded == []  # the header was used
    assert len(slow_decoded) == 2
    assert len(bad_decoded) == 2
    for other in (slow, bad):
        assert fast.tables.orders == other.tables.orders
        assert fast.tables.correlation == other.tables.correlation
        assert fast.tables.seen == other.tables.seen
        assert fast.inflight.orders == other.inflight.orders == {}
        assert fast.inflight.causes == other.inflight.causes == set()
    assert set(fast.tables.orders) == {"q1", "q2"}
    assert fast.tables.orders["q2"]["revision"] == 2


def test_the_header_carries_the_state_the_command_folds_into() -> None:
    command = decide_quote(quote_event("q1", "a"), None, ACCOUNT).command
    assert command is not None
    pipeline, emitted = _pipeline()
    pipeline.send_command("create-order", command)
    (_, _, _, headers) = next(r for r in emitted.records if r[0] == pipeline.topics.create_order)
    data = json.loads(headers[0][1])
    assert data["cause"] == command.causation_id
    assert data["state"]["event_id"] == command.event_id
    assert data["state"]["status"] == "requested"


def test_audit_records_are_plain_json() -> None:
    event = quote_event("q1", "a")
    key, value = encode_record(
        decision_record("parked", event, at=0.0, ids={"quote_id": "q1"}, details={"n": 1})
    )
    assert key == event.correlation_id.encode()
    record = json.loads(value)
    assert record["decision"] == "parked"
    assert record["at"] == "1970-01-01T00:00:00+00:00"
    assert record["ids"] == {"quote_id": "q1"}
    assert record["details"] == {"n": 1}


def test_a_deals_written_state_is_kept_until_the_dedup_ttl_then_swept_by_its_partition() -> None:
    pipeline, emitted = _pipeline()
    now = [1_000.0]
    pipeline.clock = lambda: now[0]
    ttl = pipeline.config.dedup_ttl_s
    state = {"quote_id": "q", "order_id": "o", "account_id": "a", "revision": 1,
             "deal_id": "deal-q", "correlation_id": "q"}  # fmt: skip
    command = deal_update(erp_order_event("o", "a", "q", status="CONFIRMED"), state)
    assert command is not None
    pipeline.send_command("update-deal", command)
    assert "deal-q" in pipeline.inflight.writebacks
    ((topic, key, value, headers),) = [
        r for r in emitted.records if r[0] == pipeline.topics.update_deal
    ]
    pipeline.on_command(RawRecord(topic, 2, 0, key, value, headers))
    kept = pipeline.tables.writebacks["deal-q"]
    assert kept["status"] == "CONFIRMED"
    assert (kept["_written_at"], kept["_partition"]) == (1_000.0, 2)
    assert pipeline.inflight.writebacks == {}  # the bookkeeping does not hide the read-back
    # the bookkeeping never enters what the deal shows, nor its earlier states
    refolded = fold_written(kept, deal_write_of(command))
    assert "_written_at" not in refolded
    assert all("_written_at" not in earlier for earlier in refolded["_recent"])

    now[0] += ttl - 1
    pipeline.on_tick(2, sweep=True)
    assert "deal-q" in pipeline.tables.writebacks  # not yet
    now[0] += 1
    pipeline.on_tick(1, sweep=True)
    assert "deal-q" in pipeline.tables.writebacks  # another partition's tick leaves it
    pipeline.on_tick(2, sweep=False)
    assert "deal-q" in pipeline.tables.writebacks  # only a sweeping tick expires
    pipeline.on_tick(2, sweep=True)
    assert "deal-q" not in pipeline.tables.writebacks


def _run_deal_writes(header: str) -> tuple[Pipeline, list[bytes]]:
    """An ordered quote, then ERP changes whose update-deal commands are read back with their
    header kept, bad or dropped; the ledger kept."""
    pipeline, emitted = _pipeline(ledger=True)
    now = [1_000.0]
    pipeline.clock = lambda: now[0]
    topics = pipeline.topics
    pipeline.handle(RawRecord(topics.account, 0, 0, b"a", encode(account_event("a")), ()))
    pipeline.handle(RawRecord(topics.quote, 0, 1, b"a", encode(quote_event("q1", "a")), ()))
    ((topic, key, value, headers),) = [r for r in emitted.records if r[0] == topics.create_order]
    pipeline.on_command(RawRecord(topic, 0, 2, key, value, headers))
    order_id = pipeline.tables.orders["q1"]["order_id"]
    changes = [
        (topics.order, erp_order_event(order_id, "a", "q1", promised_date="2026-04-01")),
        (topics.order, erp_order_event(order_id, "a", "q1", status="ON_CREDIT_HOLD", version=2)),
        (topics.shipment, shipment_event("a", order_id, "SO-1", "1Z9")),
        (topics.invoice, invoice_event("a", order_id, "SO-1", "PAID")),
    ]  # fmt: skip
    decoded: list[bytes] = []
    read_back: list[bytes] = []
    pipeline.decode = lambda data: decoded.append(data) or decode(data)  # type: ignore[func-returns-value]
    for n, (change_topic, change) in enumerate(changes):
        now[0] += 10
        read = len(emitted.records)
        pipeline.handle(RawRecord(change_topic, 0, 10 + n, b"a", encode(change), ()))
        for topic, key, value, headers in emitted.records[read:]:
            if topic != topics.update_deal:
                continue
            assert [h for h, _ in headers] == [DEAL_WRITE_HEADER]
            if header == "bad":
                headers = ((DEAL_WRITE_HEADER, b'["deal-q1", "q1"]'),)
            elif header == "none":
                headers = ()
            now[0] += 1
            decoded.clear()
            pipeline.on_command(RawRecord(topic, 3, 20 + n, key, value, headers))
            read_back.extend(decoded)
    return pipeline, read_back


def test_deal_write_read_back_from_the_header_equals_read_back_by_decoding() -> None:
    fast, fast_decoded = _run_deal_writes("keep")
    slow, slow_decoded = _run_deal_writes("none")
    bad, bad_decoded = _run_deal_writes("bad")
    assert fast_decoded == []  # the header was used
    assert len(slow_decoded) == len(bad_decoded) == 4
    for other in (slow, bad):
        assert fast.tables.writebacks == other.tables.writebacks
        assert fast.tables.ledger == other.tables.ledger
        assert fast.tables.seen == other.tables.seen
        assert fast.inflight.writebacks == other.inflight.writebacks == {}
        assert fast.inflight.causes == other.inflight.causes == set()
    shown = fast.tables.writebacks["deal-q1"]
    assert (shown["status"], shown["_partition"]) == ("PAID", 3)
    told = fast.tables.ledger["q:q1"]["told"]
    assert told["last"] == "PAID"
    assert set(told["at"]) == {"CONFIRMED", "ON_CREDIT_HOLD", "SHIPPED", "PAID"}


@pytest.mark.parametrize(
    "value",
    [b"", b"{", b"{}", b"[1, 2]", b'["d", "q", "a", "o", {}, [], "2026-03-02T10:00:00Z", null]',
     b'["d", "q", "a", "o", [], [], 0, null]', b'["d", "q", "a", "o", {}, [1], 0, null]',
     b'["d", "q", "a", "o", {}, [], 1.5, null]', b'["d", "q", "a", "o", {}, [], true, null]',
     b'["d", "q", "a", "o", {}, [], 99999999999999999999, null]'],
)  # fmt: skip
def test_a_deal_write_header_that_does_not_read_is_decoded_instead(value: bytes) -> None:
    assert deal_write_readback(((DEAL_WRITE_HEADER, value),)) is None


@pytest.mark.parametrize("zone", [UTC, timezone(timedelta(hours=2))])
def test_the_deal_write_header_reads_as_the_decoded_command_does(zone: tzinfo) -> None:
    state = {"quote_id": "q", "order_id": "o", "account_id": "a", "revision": 1,
             "deal_id": "deal-q", "correlation_id": "q"}  # fmt: skip
    event = erp_order_event("o", "a", "q", status="CONFIRMED", promised_date="2026-04-01")
    command = deal_update(event, state)
    assert command is not None
    at = command.occurred_at.astimezone(zone).replace(microsecond=123456)
    command = command.model_copy(update={"occurred_at": at})
    header = deal_write_header(deal_write_of(command))
    assert header is not None
    assert deal_write_readback([header]) == deal_write_of(decode(encode(command)))
    naive = command.model_copy(update={"occurred_at": at.replace(tzinfo=None)})
    assert deal_write_header(deal_write_of(naive)) is None  # no header: its read-back decodes it
