"""Decision records for ``audit.decisions``: one JSON line per decision, keyed by correlation id."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from contracts.models import Envelope

__all__ = ["Decision", "decision_record", "encode_record"]

Decision = Literal[
    "merged",
    "stripped",
    "rejected",
    "deduplicated",
    "parked",
    "released",
    "command_emitted",
    "echo_suppressed",
    "dead_lettered",
    "linked",
    "review_requested",
    "ignored",
    "held",
    "case_opened",
    "case_escalated",
    "held_for_approval",
    "forwarded",
]


def decision_record(
    decision: Decision,
    event: Envelope | None,
    *,
    at: float,
    entity: str | None = None,
    ids: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A decision about ``event`` (or about an event id when the event could not be decoded)."""
    return {
        "decision": decision,
        "entity": entity or (type(event).ENTITY if event is not None else None),
        "ids": dict(ids or {}),
        "correlation_id": correlation_id or (event.correlation_id if event else None),
        "causation_id": causation_id or (event.causation_id if event else None),
        "event_id": event_id or (event.event_id if event else None),
        "at": datetime.fromtimestamp(at, UTC).isoformat(),
        "details": dict(details or {}),
    }


def encode_record(record: Mapping[str, Any]) -> tuple[bytes | None, bytes]:
    """Kafka key (the correlation id) and JSON value of a decision record."""
    corr = record.get("correlation_id")
    value = orjson.dumps(record, default=str, option=orjson.OPT_NON_STR_KEYS)
    return (corr.encode() if corr else None), value
