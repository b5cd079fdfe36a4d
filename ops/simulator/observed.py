"""What the topics hold at the end of a run, as the invariants need it.

``read_observed`` reads every dead letter, every ``commands.crm.update-deal`` record and the
latest state of every exception-desk case, each partition to its true end
(``interlock.kafka.true_end_offsets``, never the high watermark).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from contracts.errors import DecodeError
from contracts.review import decode_case
from ops.simulator.drift import FindingSeen

__all__ = [
    "CaseSeen",
    "DeadLetterSeen",
    "DealCommandSeen",
    "Decode",
    "EndOffsets",
    "Observed",
    "read_observed",
]

log = logging.getLogger(__name__)
REASON_HEADER = "interlock.dlq.reason"
UPDATE_DEAL_TOPIC = "commands.crm.update-deal"
CASES_TOPIC = "review.cases"


@dataclass(frozen=True)
class DeadLetterSeen:
    """One record on a dead-letter topic: where, why, and the quote it carried (if any)."""

    topic: str
    reason: str
    quote_id: str | None = None


@dataclass(frozen=True)
class DealCommandSeen:
    """One ``commands.crm.update-deal`` record."""

    event_id: str
    deal_id: str | None
    status: str | None


@dataclass(frozen=True)
class CaseSeen:
    """A case of the exception desk in its latest state on ``review.cases``."""

    case_id: str
    kind: str
    status: str
    reason: str
    team: str
    quote_id: str | None = None
    deal_id: str | None = None
    revision: int | None = None


@dataclass
class Observed:
    """What the topics hold at check time."""

    dead_letters: list[DeadLetterSeen] = field(default_factory=list)
    deal_commands: list[DealCommandSeen] = field(default_factory=list)
    cases: list[CaseSeen] = field(default_factory=list)
    findings: list[FindingSeen] = field(default_factory=list)
    """The worker's reconciliation findings (``audit.reconciliation``), read in drift runs."""


EndOffsets = Callable[[Mapping[str, Any], list[tuple[str, int]]], dict[tuple[str, int], int]]
Decode = Callable[[bytes], Any]


def _read_all(conf: Mapping[str, Any], topics: list[str], end_offsets: EndOffsets) -> list[Any]:
    consumer = Consumer(
        {
            **conf,
            "group.id": f"interlock-simcheck-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        meta = consumer.list_topics(timeout=10)
        parts = [(t, p) for t in topics if t in meta.topics for p in meta.topics[t].partitions]
        ends = {tp: end for tp, end in end_offsets(conf, parts).items() if end > 0}
        if not ends:
            return []
        consumer.assign([TopicPartition(t, p, 0) for (t, p) in ends])
        records: list[Any] = []
        position = {tp: 0 for tp in ends}
        idle = 0
        while any(position[tp] < end for tp, end in ends.items()) and idle < 50:
            batch = consumer.consume(1000, 0.2)
            idle = 0 if batch else idle + 1
            for msg in batch:
                if msg.error() is not None:
                    continue
                tp = (msg.topic(), msg.partition())
                offset = int(msg.offset() or 0)
                if tp in ends and offset < ends[tp]:
                    position[tp] = offset + 1
                    records.append(msg)
        return records
    finally:
        consumer.close()


def _quote_id(decode: Decode, value: bytes | None) -> str | None:
    if not value:
        return None
    try:
        event = decode(value)
    except Exception:
        return None
    return getattr(getattr(event, "payload", None), "quote_id", None)


def read_observed(
    conf: Mapping[str, Any], dlq_topics: list[str], decode: Decode, end_offsets: EndOffsets
) -> Observed:
    """Read every dead letter and update-deal command, up to the true end of each partition."""
    observed = Observed()
    for msg in _read_all(conf, dlq_topics, end_offsets):
        headers = dict(msg.headers() or [])
        reason = (headers.get(REASON_HEADER) or b"").decode()
        observed.dead_letters.append(
            DeadLetterSeen(msg.topic(), reason, _quote_id(decode, msg.value()))
        )
    for msg in _read_all(conf, [UPDATE_DEAL_TOPIC], end_offsets):
        try:
            event = decode(msg.value())
        except Exception as exc:  # a poison command is the sinks' business, not ours
            log.debug("undecodable update-deal command at %s: %s", msg.offset(), exc)
            continue
        payload = event.payload
        observed.deal_commands.append(
            DealCommandSeen(event.event_id, payload.crm_record_id, payload.status)
        )
    latest: dict[bytes, Any] = {}
    for msg in _read_all(conf, [CASES_TOPIC], end_offsets):
        latest[msg.key() or b""] = msg.value()  # compacted: the latest state per case id
    for value in latest.values():
        seen = _case_seen(value)
        if seen is not None:
            observed.cases.append(seen)
    return observed


def _case_seen(value: bytes | None) -> CaseSeen | None:
    """A ``review.cases`` record as the invariants need it (None: a tombstone or not a case)."""
    if not value:
        return None
    try:
        case = decode_case(value)
    except DecodeError:
        return None
    quote = case.context.quote
    return CaseSeen(
        case.case_id,
        case.kind,
        case.status,
        case.reason,
        case.team,
        case.quote_id,
        case.deal_id,
        quote.revision if quote is not None else None,
    )
