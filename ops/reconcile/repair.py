"""``reconcile repair``: re-drive the command a finding misses, through the normal topics.

A missing ERP order is repaired by producing its create-order command again, byte for byte
(same key, value, headers, so the same event id: the ERP's Idempotency-Key makes a second
order impossible). A missing write-back is repaired by producing the update-deal command the
worker attached to the finding (its id derived from the finding's id). A finding already
re-driven is skipped, so running repair twice produces nothing more; each command produced is
recorded on ``audit.reconciliation``. Nothing else is ever written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from contracts.models import Envelope, OrderEvent
from contracts.reconciliation import encode_record
from interlock.records import RawRecord
from ops.reconcile.model import Finding, LedgerView

__all__ = ["RepairItem", "command_topics", "plan_repairs", "send_repairs"]

_READBACK = "interlock.order-state"
"""The worker's read-back header on order commands (its ``state.event_id`` is the command's)."""


def command_topics(prefix: str) -> dict[str, str]:
    """The command topics a repair may write, by command kind."""
    return {
        "create-order": f"{prefix}commands.erp.create-order",
        "update-deal": f"{prefix}commands.crm.update-deal",
    }


@dataclass(frozen=True)
class RepairItem:
    """What repair does for one finding: the record to produce, or why it does nothing."""

    finding: Finding
    command: str
    event_id: str
    topic: str
    record: RawRecord | None = None
    skipped: str | None = None


def _event_id_of(record: RawRecord, decode: Callable[[bytes], Envelope]) -> str | None:
    for name, value in record.headers:
        if name == _READBACK and value:
            try:
                return str(orjson.loads(value)["state"]["event_id"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                break
    if record.value is None:
        return None
    try:
        return decode(record.value).event_id
    except Exception:  # not ours to judge here: a record we cannot read is not the one
        return None


def plan_repairs(
    view: LedgerView,
    findings: Iterable[Finding],
    prefix: str,
    read_topic: Callable[[str], Sequence[RawRecord]],
    decode: Callable[[bytes], Envelope],
    encode: Callable[[OrderEvent, str], bytes],
) -> list[RepairItem]:
    """One item per finding: the command to re-drive, or why it is skipped."""
    topics = command_topics(prefix)
    created: dict[str, RawRecord] | None = None
    items: list[RepairItem] = []
    for finding in findings:
        plan = finding.repair
        if not plan:
            items.append(
                RepairItem(finding, "", "", "", skipped="not repairable: a person decides")
            )
            continue
        command, event_id = str(plan["command"]), str(plan["event_id"])
        topic = topics[command]
        done = view.repairs.get(finding.finding_id)
        if done:
            when = done[-1].get("at")
            items.append(
                RepairItem(finding, command, event_id, topic, skipped=f"re-driven at {when}")
            )
            continue
        if command == "create-order":
            if created is None:
                created = {}
                for record in read_topic(topic):
                    found = _event_id_of(record, decode)
                    if found is not None:
                        created.setdefault(found, record)
            original = created.get(event_id)
            if original is None:
                items.append(
                    RepairItem(
                        finding, command, event_id, topic, skipped="command not on its topic"
                    )
                )
                continue
            items.append(RepairItem(finding, command, event_id, topic, record=original))
        else:
            event = OrderEvent.model_validate(plan["value"])
            key = event.payload.account_id.encode()
            value = encode(event, topic)
            record = RawRecord(topic, -1, -1, key, value, ())
            items.append(RepairItem(finding, command, event_id, topic, record=record))
    return items


def send_repairs(
    producer: Any, items: Iterable[RepairItem], audit_topic: str, now: float
) -> list[RepairItem]:
    """Produce each item's command, then its repair record; returns what was produced."""
    sent: list[RepairItem] = []
    for item in items:
        if item.record is None:
            continue
        record = item.record
        headers = [(k, v) for k, v in record.headers if v is not None]
        producer.produce(item.topic, value=record.value, key=record.key, headers=headers or None)
        sent.append(item)
    if sent and producer.flush(30) > 0:
        raise TimeoutError("the repaired commands were not acknowledged")
    for item in sent:
        key, value = encode_record(
            "repair",
            item.finding.subject,
            now,
            finding_id=item.finding.finding_id,
            kind=item.finding.kind,
            command=item.command,
            command_topic=item.topic,
            event_id=item.event_id,
            dry_run=False,
        )
        producer.produce(audit_topic, value=value, key=key)
    if sent and producer.flush(30) > 0:
        raise TimeoutError("the repair records were not acknowledged")
    return sent
