"""The invariants of a run: ground truth against what the topics and the fake APIs show.

``check_invariants(truth, recorded, observed)`` is pure and returns one result per named
invariant with expected and actual counts; ``read_observed`` reads what it needs from the
topics (to their true end: ``interlock.kafka.true_end_offsets``, never the high watermark);
``render_results`` prints a rich table. A run passes when every invariant passes.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from rich.console import Console
from rich.table import Table

from ops.simulator.truth import ExpectedOrder, GroundTruth, Recorded

__all__ = [
    "DeadLetterSeen",
    "DealCommandSeen",
    "InvariantResult",
    "Observed",
    "check_invariants",
    "read_observed",
    "render_results",
]

log = logging.getLogger(__name__)
REASON_HEADER = "interlock.dlq.reason"
UPDATE_DEAL_TOPIC = "commands.crm.update-deal"


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


@dataclass
class Observed:
    """What the topics hold at check time."""

    dead_letters: list[DeadLetterSeen] = field(default_factory=list)
    deal_commands: list[DealCommandSeen] = field(default_factory=list)


@dataclass(frozen=True)
class InvariantResult:
    """One invariant: what was expected, what was found, and examples of what is wrong."""

    name: str
    description: str
    expected: int
    actual: int
    passed: bool
    examples: tuple[str, ...] = ()


def _result(
    name: str, description: str, expected: int, actual: int, bad: Iterable[str]
) -> InvariantResult:
    examples = tuple(sorted(bad))
    return InvariantResult(name, description, expected, actual, not examples, examples[:5])


def _orders(truth: GroundTruth, recorded: Recorded) -> list[InvariantResult]:
    expected = {o.quote_id: o for o in truth.expected_orders}
    per_quote = Counter(o.quote_id for o in recorded.erp_orders if o.quote_id)
    keys = {o.idempotency_key for o in recorded.erp_orders}
    numbers = {o.order_number for o in recorded.erp_orders}
    amended = {(a.order_number, a.revision) for a in recorded.erp_amendments if a.kind == "amend"}
    number_of = {o.quote_id: o.order_number for o in recorded.erp_orders}
    created_at = {o.quote_id: o.revision for o in recorded.erp_orders}
    revised = [o for o in truth.expected_orders if o.revision > 1]

    def at_revision(o: ExpectedOrder) -> bool:
        # Amended to the revision, or created at it (the revision arrived before the order).
        created = created_at.get(o.quote_id)
        if created is not None and created >= o.revision:
            return True
        return (number_of.get(o.quote_id), o.revision) in amended

    return [
        _result(
            "orders_exactly_once",
            "no quote got more than one ERP order",
            len(per_quote),
            len(per_quote),
            [f"quote {q} has {n} orders" for q, n in per_quote.items() if n > 1],
        ),
        _result(
            "orders_complete",
            "every valid accepted quote has its ERP order",
            len(expected),
            sum(1 for q in expected if per_quote[q]),
            [
                f"no order for quote {q} (deal {o.deal_id})"
                for q, o in expected.items()
                if not per_quote[q]
            ],
        ),
        _result(
            "no_unexpected_orders",
            "no order for an invalid, withdrawn or unknown quote",
            0,
            sum(n for q, n in per_quote.items() if q not in expected),
            [f"order for quote {q}" for q in per_quote if q not in expected],
        ),
        _result(
            "idempotency_keys",
            "each created order has its own Idempotency-Key",
            len(numbers),
            len(keys),
            [] if len(keys) == len(numbers) else [f"{len(numbers)} orders, {len(keys)} keys"],
        ),
        _result(
            "revisions_amended",
            "a re-accepted quote revision is what the ERP order holds (amended or created)",
            len(revised),
            sum(1 for o in revised if at_revision(o)),
            [
                f"quote {o.quote_id} revision {o.revision} not amended"
                for o in revised
                if not at_revision(o)
            ],
        ),
    ]


def _bad_inputs(
    truth: GroundTruth, recorded: Recorded, observed: Observed
) -> list[InvariantResult]:
    found = {(d.topic, d.quote_id): d.reason for d in observed.dead_letters if d.quote_id}
    missing = []
    for q in truth.invalid_quotes:
        reason = found.get((q.topic, q.quote_id))
        if reason is None or not reason.startswith(q.reason_prefix):
            missing.append(
                f"quote {q.quote_id} ({q.why}) not in {q.topic} with {q.reason_prefix}*"
                f" (found {reason})"
            )
    wrong = []
    for r in truth.rejected:
        got = recorded.rejected_responses.get(r.delivery_id)
        if got != r.expected_status:
            wrong.append(
                f"delivery {r.delivery_id} ({r.fault}) answered {got}, not {r.expected_status}"
            )
    explained = {(q.topic, q.quote_id) for q in truth.invalid_quotes}
    stray = Counter(
        f"{d.topic} {d.reason}"
        for d in observed.dead_letters
        if (d.topic, d.quote_id) not in explained
    )
    return [
        _result(
            "invalid_quotes_dead_lettered",
            "every business-invalid quote is dead-lettered with a VALIDATION reason",
            len(truth.invalid_quotes),
            len(truth.invalid_quotes) - len(missing),
            missing,
        ),
        _result(
            "bad_webhooks_rejected",
            "malformed → 400, badly signed → 401, never accepted",
            len(truth.rejected),
            len(truth.rejected) - len(wrong),
            wrong,
        ),
        _result(
            "no_unexpected_dead_letters",
            "nothing else was dead-lettered",
            0,
            sum(stray.values()),
            [f"{n} x {k}" for k, n in stray.items()],
        ),
    ]


def _crm_side(truth: GroundTruth, recorded: Recorded, observed: Observed) -> list[InvariantResult]:
    breach_values = {b.value for b in truth.ownership_breaches}
    leaks = [
        f"{c.object_type}/{c.object_id} received {k}={v!r}"
        for c in recorded.crm_calls
        for k, v in c.properties.items()
        if (isinstance(v, str) and v in breach_values) or (c.object_type != "deals" and k == "name")
    ]
    causes: Counter[tuple[str | None, str | None]] = Counter(
        (s.deal_id, s.status) for s in recorded.erp_status_changes
    )
    keys: dict[tuple[str, Any], set[str]] = defaultdict(set)
    for c in recorded.crm_calls:
        if c.object_type == "deals":
            keys[(c.object_id, c.properties.get("status"))].add(c.idempotency_key or repr(c))
    commands: dict[tuple[str | None, str | None], set[str]] = defaultdict(set)
    for d in observed.deal_commands:
        commands[(d.deal_id, d.status)].add(d.event_id)
    loops = [
        f"deal {d} status {s}: {len(k)} write-backs for {causes[(d, s)]} ERP changes"
        for (d, s), k in keys.items()
        if len(k) > causes[(d, s)]
    ]
    loops += [
        f"deal {d} status {s}: {len(e)} update-deal commands for {causes[(d, s)]} ERP changes"
        for (d, s), e in commands.items()
        if len(e) > causes[(d, s)]
    ]
    final: dict[str, tuple[str | None, str]] = {}
    for s in recorded.erp_status_changes:
        final[s.order_number] = (s.deal_id, s.status)
    written = {(c.object_id, c.properties.get("status")) for c in recorded.crm_calls}
    undelivered = [
        f"order {n}: {st} never reached deal {d}"
        for n, (d, st) in final.items()
        if (d, st) not in written
    ]
    return [
        _result(
            "crm_owned_fields_untouched",
            "no ERP change of a CRM-owned field reached the CRM",
            0,
            len(leaks),
            leaks,
        ),
        _result(
            "no_echo_loops",
            "each ERP status change is written back at most once; echoes cause no further command",
            sum(causes.values()),
            sum(len(k) for k in keys.values()),
            loops,
        ),
        _result(
            "write_backs_delivered",
            "every order's latest ERP status reached the CRM deal",
            len(final),
            len(final) - len(undelivered),
            undelivered,
        ),
    ]


def check_invariants(
    truth: GroundTruth, recorded: Recorded, observed: Observed
) -> list[InvariantResult]:
    """Every invariant of the run, in a stable order."""
    return [
        *_orders(truth, recorded),
        *_bad_inputs(truth, recorded, observed),
        *_crm_side(truth, recorded, observed),
    ]


def render_results(results: list[InvariantResult], console: Console) -> None:
    """A table: invariant, expected, actual, pass/fail, first examples of what is wrong."""
    table = Table("invariant", "expected", "actual", "result", "examples", title="Invariants")
    for r in results:
        table.add_row(
            r.name,
            str(r.expected),
            str(r.actual),
            "[green]pass[/]" if r.passed else "[red]FAIL[/]",
            "\n".join(r.examples),
        )
    console.print(table)


# reading the topics ---------------------------------------------------------------------------
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
    return observed
