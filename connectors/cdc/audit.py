"""Truncates reported to ``audit.decisions``, so an operator sees them in the audit trail.

A TRUNCATE is never applied downstream (it would delete every record of the table); the
stage dead-letters it. Dead letters are easy to miss, so each truncate also becomes a
decision record ``truncate_reported`` on ``audit.decisions``, keyed by its correlation id,
in the same JSON shape as the processors' decision records (``decision``, ``entity``,
``ids``, ``correlation_id``, ``causation_id``, ``event_id``, ``at``, ``details``) plus the
``table``, ``lsn`` and ``ts_ms`` of the truncate at the top level.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from connectors.cdc.envelope import ChangeEvent
from contracts.ids import deterministic_event_id
from interlock.kafka import produce
from interlock.records import RawRecord

__all__ = ["AUDIT_TOPIC", "TruncateReporter", "truncate_record"]

log = logging.getLogger(__name__)
AUDIT_TOPIC = "audit.decisions"


def truncate_record(
    change: ChangeEvent, record: RawRecord, dlq_topic: str, at: datetime
) -> dict[str, Any]:
    """The ``truncate_reported`` decision of one TRUNCATE read from ``record``.

    The correlation id is the one the mapper gives every change of the truncate's source
    transaction (``deterministic_event_id("cdc-tx", db, tx)``), so ``interlock trace`` of that
    transaction shows the truncate next to its other changes.
    """
    qualified = f"{change.schema or change.db or ''}.{change.table}"
    event_id = deterministic_event_id("cdc", qualified, "*", change.position, "t")
    tx = change.transaction_key
    correlation = deterministic_event_id("cdc-tx", change.db or "", tx) if tx else event_id
    return {
        "decision": "truncate_reported",
        "entity": None,
        "table": qualified,
        "lsn": change.lsn,
        "ts_ms": change.ts_ms,
        "ids": {"table": qualified, "position": change.position},
        "correlation_id": correlation,
        "causation_id": None,
        "event_id": event_id,
        "at": at.isoformat(),
        "details": {
            "action": "not applied; re-snapshot the table or delete its records deliberately",
            "db": change.db,
            "tx_id": tx,
            "dead_letter_topic": dlq_topic,
            "original": {
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
            },
        },
    }


class TruncateReporter:
    """Writes the ``truncate_reported`` decision of a dead-lettered TRUNCATE.

    Called by the CDC stage with the change it has already decoded, so nothing is decoded twice.

    Args:
        producer: the stage's producer (audit records are flushed with its batch).
        audit_topic: where decisions go (default ``audit.decisions``).
        clock: time of the record's ``at``.
    """

    def __init__(
        self,
        producer: Any,
        *,
        audit_topic: str = AUDIT_TOPIC,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._producer = producer
        self._audit_topic = audit_topic
        self._now = clock

    def __call__(self, change: ChangeEvent, record: RawRecord, dlq_topic: str) -> None:
        decision = truncate_record(change, record, dlq_topic, self._now())
        value = json.dumps(decision, default=str).encode()
        key = str(decision["correlation_id"]).encode()
        produce(self._producer, self._audit_topic, value, key)
