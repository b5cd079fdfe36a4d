"""``interlock trace <correlation-id>``: the journey of one quote across every hop, in time order.

Reads, to their true end, the audit topic (decisions), the canonical quote/order/shipment/invoice
topics, the command topics and the raw CRM webhook topics, and keeps what belongs to the one
correlation id: canonical events with that correlation id (or about its quote, or its order),
decisions recorded under it, and raw webhooks whose bytes mention it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from confluent_kafka import Consumer, TopicPartition
from rich.console import Console
from rich.table import Table

from contracts.models import Envelope
from contracts.serde import make_deserializer
from interlock.kafka import make_admin, true_end_offsets
from interlock.settings import Settings
from processors.domain.quotes import order_id_for
from processors.topics import ProcessorTopics

__all__ = ["Hop", "Record", "journey", "make_trace_command", "read_topics", "render"]


@dataclass(frozen=True)
class Record:
    """One Kafka record as read for tracing."""

    topic: str
    timestamp_ms: int
    key: bytes | None
    value: bytes | None


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
                hops.append(
                    Hop(_ts(record.timestamp_ms), record.topic, "webhook received", "", "", "")
                )
            continue
        payload = event.payload
        related = (
            event.correlation_id == correlation_id
            or getattr(payload, "quote_id", None) == correlation_id
            or getattr(payload, "order_id", None) == order_id
        )
        if related:
            hops.append(_event_hop(record, event))
    return sorted(hops, key=lambda h: h.at)


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
                out.append(Record(tp[0], msg.timestamp()[1], msg.key(), msg.value()))
                if tp in pending and (msg.offset() or 0) + 1 >= pending[tp]:
                    del pending[tp]
    finally:
        consumer.close()
    return out


def trace_topics(settings: Settings, topics: ProcessorTopics) -> list[str]:
    """The topics a journey crosses, raw CRM webhooks included."""
    metadata = make_admin(settings).list_topics(timeout=15)
    raw = sorted(n for n in metadata.topics if n.startswith(topics.name("raw.crm.")))
    return [
        *raw,
        topics.quote,
        topics.account,
        *topics.commands(),
        topics.order,
        topics.shipment,
        topics.invoice,
        topics.audit,
    ]


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
        correlation_id: Annotated[str, typer.Argument(help="Correlation id (the quote id).")],
        prefix: Annotated[
            str | None, typer.Option(help="Topic prefix (default: the processors' setting).")
        ] = None,
    ) -> None:
        """Print the journey of one quote: webhook, quote, order command, ERP order, write-back."""
        settings = settings_factory()
        topics = ProcessorTopics(prefix if prefix is not None else settings.processors.topic_prefix)
        records = read_topics(settings, trace_topics(settings, topics))
        decoder = make_deserializer()
        hops = journey(records, correlation_id, topics.audit, decoder.decode)
        console = Console()
        if not hops:
            console.print(f"nothing found for correlation id {correlation_id!r}")
            raise typer.Exit(1)
        render(hops, correlation_id, console)

    return trace
