"""The mapping stage: raw.crm.* → canonical events, a stateless confluent-kafka batch loop.

consume a batch (:class:`interlock.stage.StageLoop`) → map each raw request (HubSpot or a
declarative Standard-Webhooks mapping) → produce canonical events keyed by the canonical account
id (linger, no flush per event) → flush once per batch → store offsets. A request that cannot be
mapped goes to ``dlq.<raw topic>`` with its bytes intact (``DECODE_FAILED``, ``MAPPING_FAILED``,
``VALIDATION_MISSING_FIELD``) and the partition goes on.

Per record: the body is parsed by orjson (:func:`interlock.jsonread.loads_like_json`, falling
back to ``json`` for what orjson reads differently or refuses), the ``interlock.webhook.*``
headers are read in one pass, the topic and serialization context of each entity are made once,
and the labelled metric children are kept (``Instruments.child``).

Redeliveries: canonical event ids are derived from the webhook/event id, and a bounded TTL/LRU
:class:`SeenSet` of produced ids drops repeats (counted in
``interlock_duplicates_suppressed_total``). Ids enter the set only once their batch was
acknowledged, so a failed flush does not turn a redelivery into a loss; after a crash the set is
empty and the deterministic ids let downstream dedupe.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from confluent_kafka.serialization import MessageField, SerializationContext

from connectors.hubspot.mapping import HubSpotContext, map_hubspot_payload
from connectors.webhooks.declarative import StandardMapping, map_standard_event
from contracts import DecodeError, Envelope, EventSerializer, InterlockError, Reason
from interlock.instruments import Instruments
from interlock.jsonread import loads_like_json
from interlock.kafka import produce
from interlock.records import Header, RawRecord

__all__ = ["SeenSet", "WebhookMapper", "canonical_topic", "landed_headers"]

HEADER_PREFIX = "interlock.webhook."
_VENDOR, _SOURCE, _ID, _RECEIVED_AT = (
    HEADER_PREFIX + name for name in ("vendor", "source", "id", "received_at")
)
_TIMESTAMP = "webhook-timestamp"


def canonical_topic(entity: str) -> str:
    """``canonical.<entity>.v1``."""
    return f"canonical.{entity}.v1"


class SeenSet:
    """Event ids seen recently: at most ``size`` ids, each forgotten after ``ttl_s``."""

    def __init__(self, size: int, ttl_s: float, clock: Callable[[], float] = time.monotonic):
        self._size = size
        self._ttl = ttl_s
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __contains__(self, event_id: object) -> bool:
        at = self._seen.get(str(event_id))
        return at is not None and self._clock() - at < self._ttl

    def add(self, event_id: str) -> None:
        self._seen[event_id] = self._clock()
        self._seen.move_to_end(event_id)
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)


def landed_headers(headers: Sequence[Header]) -> dict[str, bytes]:
    """The headers by name, read in one pass: of a repeated name, the first with a value (for
    ``webhook-timestamp``, the first not empty)."""
    found: dict[str, bytes] = {}
    for key, value in headers:
        if value is not None and key not in found and (value or key != _TIMESTAMP):
            found[key] = value
    return found


def _text(headers: dict[str, bytes], name: str) -> str | None:
    value = headers.get(name)
    return None if value is None else value.decode("utf-8", errors="replace")


class _Route(NamedTuple):
    """Where the events of one entity go (made once per entity)."""

    topic: str
    context: SerializationContext


class WebhookMapper:
    """The handler of the mapping stage, plus the batch-end flush that makes outputs durable.

    Args:
        producer: confluent-kafka producer (acks=all, linger) for canonical events.
        serializers: event serializer per entity.
        standard: declarative mapping per Standard-Webhooks source.
        hubspot: accepted deal stages and our HubSpot app id.
        instruments: metrics.
        seen: the dedup set.
        topic_for: canonical topic of an entity.
        clock: seconds since the epoch (for ``ingested_at`` when no receipt header is there).
    """

    def __init__(
        self,
        producer: Any,
        serializers: Mapping[str, EventSerializer],
        standard: Mapping[str, StandardMapping],
        hubspot: HubSpotContext,
        instruments: Instruments,
        seen: SeenSet,
        *,
        topic_for: Callable[[str], str] = canonical_topic,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._producer = producer
        self._serializers = serializers
        self._standard = standard
        self._hubspot = hubspot
        self._instruments = instruments
        self._seen = seen
        self._topic_for = topic_for
        self._clock = clock
        self._pending: set[str] = set()
        self._undelivered: list[str] = []
        self._routes: dict[str, _Route] = {}

    def _received_at(self, headers: dict[str, bytes]) -> datetime:
        ms = _text(headers, _RECEIVED_AT)
        stamp = int(ms) / 1000 if ms and ms.isdigit() else self._clock()
        return datetime.fromtimestamp(stamp, UTC)

    def _route(self, entity: str) -> _Route:
        route = self._routes.get(entity)
        if route is None:
            topic = self._topic_for(entity)
            route = _Route(topic, SerializationContext(topic, MessageField.VALUE))
            self._routes[entity] = route
        return route

    def map(self, record: RawRecord) -> list[Envelope]:
        """The canonical events of one raw request (pure apart from reading the record).

        Raises:
            InterlockError: the whole request cannot be mapped, or one of its events cannot
                (the request is then dead-lettered whole; the others are produced first, and
                their deterministic ids make a replay harmless).
        """
        try:
            body = loads_like_json(record.value or b"")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DecodeError(f"raw webhook body is not JSON: {exc}", raw=record.value) from exc
        headers = landed_headers(record.headers)
        vendor = _text(headers, _VENDOR) or record.topic.rsplit(".", 1)[-1]
        received_at = self._received_at(headers)
        if vendor == "hubspot":
            ctx = HubSpotContext(
                received_at=received_at,
                accepted_deal_stages=self._hubspot.accepted_deal_stages,
                app_id=self._hubspot.app_id,
            )
            results = map_hubspot_payload(body, ctx)
            events = [r for _e, r in results if isinstance(r, Envelope)]
            failures = [r for _e, r in results if isinstance(r, InterlockError)]
            if failures:
                self._emit(events)
                raise failures[0]
            return events
        source = _text(headers, _SOURCE) or ""
        mapping = self._standard.get(source)
        if mapping is None:
            raise InterlockError(
                f"no mapping for Standard-Webhooks source {source!r}", reason=Reason.MAPPING_FAILED
            )
        webhook_id = _text(headers, _ID) or ""
        stamp = headers.get(_TIMESTAMP)
        sent = datetime.fromtimestamp(int(stamp), UTC) if stamp else received_at
        event = map_standard_event(
            mapping, body, webhook_id=webhook_id, webhook_timestamp=sent, received_at=received_at
        )
        return [event] if event is not None else []

    def __call__(self, record: RawRecord) -> None:
        """Map and produce one raw request (the StageLoop handler)."""
        self._emit(self.map(record))

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._undelivered.append(f"{msg.topic()}: {err}")

    def _emit(self, events: list[Envelope]) -> None:
        instruments = self._instruments
        for event in events:
            if event.event_id in self._seen or event.event_id in self._pending:
                instruments.child(
                    instruments.duplicates_suppressed, instruments.service, "webhook-mapper"
                ).inc()
                continue
            route = self._route(event.entity)
            value = self._serializers[event.entity](event, route.context)
            key = getattr(event.payload, "account_id", None) or event.event_id
            produce(
                self._producer,
                route.topic,
                key=key.encode(),
                value=value,
                headers=[("interlock.event_type", event.event_type.encode())],
                on_delivery=self._on_delivery,
            )
            self._pending.add(event.event_id)
            instruments.child(instruments.events_produced, instruments.service, route.topic).inc()

    def end_batch(self, timeout: float = 30.0) -> None:
        """Flush the batch's events; only then are their ids remembered as seen.

        Raises:
            InterlockError: (BROKER_UNAVAILABLE) some events were not acknowledged; the batch's
                offsets must not be stored, so it is consumed again.
        """
        remaining = int(self._producer.flush(timeout))
        failed, self._undelivered = self._undelivered, []
        pending, self._pending = self._pending, set()
        if remaining or failed:
            raise InterlockError(
                f"canonical events not delivered: {'; '.join(failed[:3]) or remaining}",
                reason=Reason.BROKER_UNAVAILABLE,
                transient=True,
            )
        for event_id in pending:
            self._seen.add(event_id)
