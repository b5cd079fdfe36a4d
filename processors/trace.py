"""``interlock trace <id>``: the journey of one quote across every hop, in time order.

Takes any id a user has: the webhook id the receiver answered with, the CRM deal (quote) id, the
canonical quote id, the ERP order number, the canonical order id, an event id or the correlation
id. Reads, to their true end, the raw CRM webhook topics, the canonical quote/account/order/
shipment/invoice topics, the command topics, their dead-letter topics and the audit topic
(decisions); resolves the id to the quote's correlation id; keeps what belongs to it: canonical
events with that correlation id (or about its quote, or its order), decisions recorded under it,
its dead letters (with their reason), and the raw webhooks its canonical events were mapped from.
Ends with where the quote stands when it is waiting (parked, held, in review, dead-lettered).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, cast

import typer
from confluent_kafka import Consumer, TopicPartition
from rich.console import Console
from rich.table import Table

from contracts.identity import crm_event_id
from contracts.models import Envelope
from contracts.serde import make_deserializer
from contracts.topics import DLQ_PREFIX, dlq_topic
from interlock.kafka import make_admin, true_end_offsets
from interlock.settings import Settings
from processors.domain.quotes import order_id_for
from processors.topic_names import ProcessorTopics

__all__ = [
    "Hop",
    "Record",
    "journey",
    "make_trace_command",
    "read_topics",
    "render",
    "resolve",
    "waiting",
]

_WEBHOOK = "interlock.webhook."
_DLQ_REASON = "interlock.dlq.reason"
_WAITING = {
    "parked",
    "held",
    "review_requested",
    "dead_lettered",
    "case_opened",
    "case_escalated",
    "held_for_approval",
}


@dataclass(frozen=True)
class Record:
    """One Kafka record as read for tracing."""

    topic: str
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name and value is not None:
                return value.decode("utf-8", errors="replace")
        return None

    def webhook_event_ids(self, vendors: Iterable[str]) -> set[str]:
        """The canonical event ids a raw webhook record can have been mapped to (empty: not a
        raw webhook), by the receiver's id rule (:func:`contracts.identity.crm_event_id`):
        a Standard-Webhooks request is one event, ``(mapping vendor, source, webhook id)``; a
        HubSpot request carries events named ``(hubspot, portalId, eventId)``."""
        webhook_id = self.header(_WEBHOOK + "id")
        kind, source = self.header(_WEBHOOK + "vendor"), self.header(_WEBHOOK + "source")
        if webhook_id is None or kind is None or source is None:
            return set()
        if kind != "hubspot":
            return {crm_event_id(v, source, webhook_id) for v in vendors}
        try:
            events = json.loads(self.value or b"")
        except ValueError:
            return set()
        portal = "portalId"
        return {
            crm_event_id("hubspot", str(e.get(portal) or ""), str(e["eventId"]))
            for e in (events if isinstance(events, list) else [events])
            if isinstance(e, dict) and e.get("eventId") is not None
        }


@dataclass(frozen=True)
class Hop:
    """One step of a journey."""

    at: datetime
    topic: str
    what: str
    event_id: str
    causation_id: str
    detail: str


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _event_hop(record: Record, event: Envelope) -> Hop:
    payload = event.payload.model_dump(mode="json", exclude_none=True)
    keys = ("quote_id", "revision", "order_id", "erp_order_number", "status", "status_reason")
    detail = " ".join(f"{k}={payload[k]}" for k in keys if k in payload)
    if event.origin:
        detail += f" origin={event.origin}"
    return Hop(
        _ts(record.timestamp_ms),
        record.topic,
        event.event_type,
        event.event_id,
        event.causation_id or "",
        detail,
    )


def _decoded(
    records: Iterable[Record], decode: Callable[[bytes], Envelope]
) -> Iterable[tuple[Record, Envelope | None]]:
    for record in records:
        if record.value is None:
            continue
        try:
            yield record, decode(record.value)
        except Exception:
            yield record, None


def resolve(
    records: Iterable[Record], wanted: str, audit_topic: str, decode: Callable[[bytes], Envelope]
) -> str | None:
    """The correlation id (the canonical quote id) that ``wanted`` names, or None.

    ``wanted`` may be a correlation id, a canonical quote or order id, a CRM deal id, an ERP
    order number, a canonical event id, or the id of the webhook that carried the quote.
    """
    records = list(records)
    by_event: dict[str, str] = {}
    vendors: set[str] = set()
    found: str | None = None
    for record, event in _decoded(records, decode):
        if event is None or record.topic == audit_topic:
            continue
        payload = event.payload
        quote_id = getattr(payload, "quote_id", None)
        correlation = str(quote_id) if quote_id else event.correlation_id
        by_event[event.event_id] = correlation
        if event.source.system == "crm":
            vendors.add(event.source.vendor)
        names = {
            event.correlation_id,
            event.event_id,
            str(quote_id or ""),
            str(getattr(payload, "order_id", None) or ""),
            str(getattr(payload, "crm_deal_id", None) or ""),
            str(getattr(payload, "erp_order_number", None) or ""),
        }
        if event.entity == "quote" and event.source.system == "crm":
            names.add(event.source.record_id)
        if wanted in names and found is None and (quote_id or event.entity == "quote"):
            found = correlation
    if found is not None:
        return found
    for record in records:
        if record.header(_WEBHOOK + "id") == wanted:
            for event_id in record.webhook_event_ids(vendors):
                if event_id in by_event:
                    return by_event[event_id]
    return None


def journey(
    records: Iterable[Record],
    correlation_id: str,
    audit_topic: str,
    decode: Callable[[bytes], Envelope],
) -> list[Hop]:
    """Hops of ``correlation_id`` among ``records``, ordered by the time they were written."""
    order_id = order_id_for(correlation_id)
    needle = correlation_id.encode()
    hops: list[Hop] = []
    raw: list[Record] = []
    vendors: set[str] = set()
    for record in records:
        if record.value is None:
            continue
        if record.topic == audit_topic:
            try:
                decision: dict[str, Any] = json.loads(record.value)
            except ValueError:
                continue
            if decision.get("correlation_id") != correlation_id:
                continue
            details = {**decision.get("ids", {}), **decision.get("details", {})}
            hops.append(
                Hop(
                    datetime.fromisoformat(decision["at"]),
                    record.topic,
                    f"decision: {decision['decision']}",
                    decision.get("event_id") or "",
                    decision.get("causation_id") or "",
                    json.dumps(details, default=str)[:200],
                )
            )
            continue
        try:
            event = decode(record.value)
        except Exception:
            if needle in record.value:  # a raw webhook (JSON) that mentions the id
                hops.append(_raw_hop(record))
            elif record.header(_WEBHOOK + "id") is not None:
                raw.append(record)
            continue
        payload = event.payload
        related = (
            event.correlation_id == correlation_id
            or getattr(payload, "quote_id", None) == correlation_id
            or getattr(payload, "order_id", None) == order_id
        )
        if not related:
            continue
        hop = _event_hop(record, event)
        reason = record.header(_DLQ_REASON)
        if record.topic.startswith(DLQ_PREFIX) or reason is not None:
            hop = Hop(
                hop.at,
                record.topic,
                f"dead-lettered: {reason or 'unknown reason'}",
                hop.event_id,
                hop.causation_id,
                hop.detail,
            )
        hops.append(hop)
        if event.source.system == "crm":
            vendors.add(event.source.vendor)
    mapped = {h.event_id for h in hops}
    hops += [_raw_hop(r) for r in raw if r.webhook_event_ids(vendors) & mapped]
    return sorted(hops, key=lambda h: h.at)


def _raw_hop(record: Record) -> Hop:
    webhook_id = record.header(_WEBHOOK + "id") or ""
    return Hop(
        _ts(record.timestamp_ms),
        record.topic,
        "webhook received",
        webhook_id,
        "",
        "the request as the CRM sent it (event id column: its webhook id)",
    )


def waiting(hops: list[Hop], join_grace_s: float, now: datetime | None = None) -> str | None:
    """Where the quote stands when its last decision leaves it waiting (None: it moved on)."""
    decisions = [h for h in hops if h.what.startswith(("decision: ", "dead-lettered"))]
    if not decisions:
        return None
    last = decisions[-1]
    kind = last.what.removeprefix("decision: ")
    if kind not in _WAITING and not last.what.startswith("dead-lettered"):
        return None
    if kind == "parked":
        left = join_grace_s - ((now or datetime.now(UTC)) - last.at).total_seconds()
        when = f"{left:.0f} s left of its {join_grace_s:g} s grace" if left > 0 else "grace over"
        return f"waiting: parked since {last.at:%H:%M:%S} ({last.detail}); {when}"
    if kind == "held":
        return f"waiting: held since {last.at:%H:%M:%S} ({last.detail})"
    if kind in ("case_opened", "case_escalated", "held_for_approval"):
        return (
            f"waiting: a case for a person since {last.at:%H:%M:%S} ({last.detail}); "
            "see `interlock review list`"
        )
    if kind == "review_requested":
        return f"waiting: an account match is in review since {last.at:%H:%M:%S}"
    return f"stopped: {last.what} at {last.at:%H:%M:%S} (see `interlock dlq show`)"


def read_topics(settings: Settings, topics: Iterable[str], timeout: float = 30.0) -> list[Record]:
    """Every record of ``topics`` that exist, read from the start to their true end."""
    conf = settings.kafka.librdkafka()
    metadata = make_admin(settings).list_topics(timeout=timeout)
    wanted = [
        (name, p)
        for name in topics
        if name in metadata.topics and metadata.topics[name].error is None
        for p in metadata.topics[name].partitions
    ]
    ends = true_end_offsets(conf, wanted, tansu=settings.kafka.tansu)
    ends = {tp: end for tp, end in ends.items() if end > 0}
    if not ends:
        return []
    consumer = Consumer({**conf, "group.id": f"trace-{uuid.uuid4()}", "enable.auto.commit": False})
    out: list[Record] = []
    try:
        consumer.assign([TopicPartition(t, p, 0) for t, p in ends])
        pending = dict(ends)
        while pending:
            batch = consumer.consume(1000, 1.0)
            if not batch:
                break
            for msg in batch:
                if msg.error() is not None:
                    continue
                tp = (msg.topic() or "", msg.partition() or 0)
                headers = cast(tuple[tuple[str, bytes | None], ...], tuple(msg.headers() or ()))
                out.append(Record(tp[0], msg.timestamp()[1], msg.key(), msg.value(), headers))
                if tp in pending and (msg.offset() or 0) + 1 >= pending[tp]:
                    del pending[tp]
    finally:
        consumer.close()
    return out


def trace_topics(settings: Settings, topics: ProcessorTopics) -> list[str]:
    """The topics a journey crosses, raw CRM webhooks and dead letters included."""
    metadata = make_admin(settings).list_topics(timeout=15)
    raw = sorted(n for n in metadata.topics if n.startswith(topics.name("raw.crm.")))
    crossed = [
        topics.quote,
        topics.account,
        *topics.commands(),
        topics.order,
        topics.shipment,
        topics.invoice,
    ]
    dead = [d for d in map(dlq_topic, crossed) if d in metadata.topics]
    return [*raw, *crossed, *dead, topics.audit]


def render(hops: list[Hop], correlation_id: str, console: Console) -> None:
    table = Table(title=f"journey of {correlation_id}", show_lines=False)
    for column in ("at (UTC)", "topic", "what", "event id", "caused by", "detail"):
        table.add_column(column, overflow="fold")
    for hop in hops:
        table.add_row(
            hop.at.strftime("%H:%M:%S.%f")[:-3],
            hop.topic,
            hop.what,
            hop.event_id[:8],
            hop.causation_id[:8],
            hop.detail,
        )
    console.print(table)


def make_trace_command(settings_factory: Callable[[], Settings]) -> Callable[..., None]:
    """The ``trace`` command, bound to how the CLI loads its settings."""

    def trace(
        wanted: Annotated[
            str,
            typer.Argument(
                metavar="ID",
                help="Webhook id, CRM deal id, quote id, ERP order number, order id, event id "
                "or correlation id.",
            ),
        ],
        prefix: Annotated[
            str | None, typer.Option(help="Topic prefix (default: the processors' setting).")
        ] = None,
    ) -> None:
        """Print the journey of one quote: webhook, quote, order command, ERP order, write-back."""
        settings = settings_factory()
        topics = ProcessorTopics(prefix if prefix is not None else settings.processors.topic_prefix)
        records = read_topics(settings, trace_topics(settings, topics))
        decoder = make_deserializer()
        console = Console()
        correlation_id = resolve(records, wanted, topics.audit, decoder.decode)
        hops = journey(records, correlation_id or wanted, topics.audit, decoder.decode)
        if not hops:
            console.print(f"nothing found for {wanted!r}")
            raise typer.Exit(1)
        render(hops, correlation_id or wanted, console)
        status = waiting(hops, settings.processors.join_grace_s)
        if status is not None:
            console.print(status)

    return trace
