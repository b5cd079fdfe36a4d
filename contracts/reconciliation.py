"""Records of ``audit.reconciliation``: drift findings, their resolution, and repairs.

The worker writes a ``finding`` record when it finds a drift between what the CRM promised,
what the ERP did and what the CRM was told, and a ``resolved`` record when that drift is gone;
``interlock reconcile repair`` writes a ``repair`` record for each command it re-drives. All
are JSON, keyed by the subject (quote id, ERP order number or deal id). A finding's id is
derived from its kind and subject, so the same drift found twice has the same id.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from contracts.errors import Reason
from contracts.ids import deterministic_event_id

__all__ = [
    "DRIFT_KINDS",
    "REPAIRABLE",
    "RecordType",
    "decode_record",
    "encode_record",
    "finding_id",
    "parse_kind",
]

RecordType = Literal["finding", "resolved", "repair"]

DRIFT_KINDS: tuple[Reason, ...] = (
    Reason.RECON_ORDER_MISSING,
    Reason.RECON_ORDER_MISMATCH,
    Reason.RECON_ORDER_WITHOUT_QUOTE,
    Reason.RECON_DEAL_STILL_OPEN,
    Reason.RECON_FULFILMENT_NOT_REPORTED,
    Reason.RECON_CRM_VALUE_OVERWRITTEN,
    Reason.RECON_DEAL_MISSING,
)
"""Every kind of drift, as the reason code a finding carries."""

REPAIRABLE: frozenset[Reason] = frozenset(
    {
        Reason.RECON_ORDER_MISSING,
        Reason.RECON_DEAL_STILL_OPEN,
        Reason.RECON_FULFILMENT_NOT_REPORTED,
    }
)
"""Kinds that ``interlock reconcile repair`` can re-drive: a create-order or an update-deal."""


def finding_id(kind: Reason | str, subject: str, *detail: str) -> str:
    """The id of a drift: the same kind, subject and detail always give the same id."""
    return deterministic_event_id("reconciliation", str(kind), subject, *detail)


def parse_kind(text: str) -> Reason:
    """A drift kind from its reason code, case-insensitive, with or without ``RECON_``."""
    wanted = text.strip().upper().replace("-", "_")
    if not wanted.startswith("RECON_"):
        wanted = f"RECON_{wanted}"
    for kind in DRIFT_KINDS:
        if kind.value == wanted:
            return kind
    names = ", ".join(k.value for k in DRIFT_KINDS)
    raise ValueError(f"unknown drift kind {text!r}; one of {names}")


def encode_record(
    record_type: RecordType, subject: str, at: float, **fields: Any
) -> tuple[bytes, bytes]:
    """Kafka key (the subject) and JSON value of one ``audit.reconciliation`` record."""
    record = {
        "record": record_type,
        "subject": subject,
        "at": datetime.fromtimestamp(at, UTC).isoformat(),
        **fields,
    }
    return subject.encode(), orjson.dumps(record, default=str)


def decode_record(value: bytes | None) -> Mapping[str, Any] | None:
    """One ``audit.reconciliation`` record, or None when it is not one (not JSON, no type)."""
    if not value:
        return None
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict) or record.get("record") not in (
        "finding",
        "resolved",
        "repair",
    ):
        return None
    return record
