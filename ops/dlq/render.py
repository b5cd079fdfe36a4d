"""How a dead letter is shown: decoded through the contracts where possible, raw otherwise."""

from __future__ import annotations

import json
from typing import Any

from contracts.errors import InterlockError
from contracts.serde import decode
from ops.dlq.model import DeadLetter

__all__ = ["letter_json", "render_bytes", "render_value"]


def render_bytes(data: bytes | None) -> tuple[str, Any]:
    """``("utf-8", text)`` (parsed JSON when it is JSON) or ``("hex", hex)``; None stays None."""
    if data is None:
        return "null", None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "hex", data.hex()
    try:
        return "json", json.loads(text)
    except ValueError:
        return "utf-8", text


def render_value(data: bytes | None) -> tuple[str, Any]:
    """The value as a canonical event (``("contract:<entity>", fields)``) or as raw bytes."""
    if data:
        try:
            event = decode(data)
        except InterlockError:
            pass
        else:
            return f"contract:{type(event).ENTITY}", event.model_dump(mode="json")
    return render_bytes(data)


def letter_json(letter: DeadLetter, *, with_stacktrace: bool = False) -> dict[str, Any]:
    """Everything about one dead letter, JSON-ready."""
    rec = letter.record
    value_kind, value = render_value(rec.value)
    key_kind, key = render_bytes(rec.key)
    dlq = dict(letter.dlq_headers)
    if not with_stacktrace:
        dlq.pop("error.stacktrace", None)
    return {
        "coordinate": letter.coordinate,
        "dlq_topic": rec.topic,
        "dlq_partition": rec.partition,
        "dlq_offset": rec.offset,
        "reason": letter.reason,
        "failed_at": letter.failed_at.isoformat() if letter.failed_at else None,
        "original_topic": letter.original_topic,
        "key": key if key_kind != "hex" else {"hex": key},
        "value_format": value_kind,
        "value": value,
        "timestamp_ms": rec.timestamp_ms,
        "headers": {
            k: (render_bytes(v)[1] if render_bytes(v)[0] != "hex" else {"hex": v.hex()})
            if v is not None
            else None
            for k, v in letter.original_headers
        },
        "dlq": dlq,
    }
