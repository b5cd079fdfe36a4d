"""Raw records as JSON (bytes in base64), so a parked record can be dead-lettered byte for byte."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from interlock.records import RawRecord

__all__ = ["raw_from_json", "raw_to_json"]


def raw_to_json(raw: RawRecord) -> dict[str, Any]:
    """A raw record as JSON (bytes base64), to park it and dead-letter it later byte for byte."""
    return {
        "topic": raw.topic,
        "partition": raw.partition,
        "offset": raw.offset,
        "key": base64.b64encode(raw.key).decode() if raw.key is not None else None,
        "value": base64.b64encode(raw.value).decode() if raw.value is not None else None,
        "headers": [
            [k, base64.b64encode(v).decode() if v is not None else None] for k, v in raw.headers
        ],
        "timestamp_ms": raw.timestamp_ms,
    }


def raw_from_json(data: Mapping[str, Any]) -> RawRecord:
    """Inverse of :func:`raw_to_json`."""

    def b(v: str | None) -> bytes | None:
        return base64.b64decode(v) if v is not None else None

    return RawRecord(
        topic=data["topic"],
        partition=int(data["partition"]),
        offset=int(data["offset"]),
        key=b(data.get("key")),
        value=b(data.get("value")),
        headers=tuple((k, b(v)) for k, v in data.get("headers") or ()),
        timestamp_ms=data.get("timestamp_ms"),
    )
