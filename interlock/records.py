"""The record every stage handles: what was read from Kafka or received over HTTP, undecoded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Header", "RawRecord"]

Header = tuple[str, bytes | None]


@dataclass(frozen=True)
class RawRecord:
    """A record as read from Kafka (or received over HTTP), before anything was decoded."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[Header] = field(default_factory=tuple)
    timestamp_ms: int | None = None

    @classmethod
    def from_message(cls, msg: Any) -> RawRecord:
        """From a ``confluent_kafka.Message``."""
        _ts_type, ts = msg.timestamp()
        return cls(
            topic=msg.topic(),
            partition=msg.partition(),
            offset=msg.offset(),
            key=msg.key(),
            value=msg.value(),
            headers=tuple(msg.headers() or ()),
            timestamp_ms=ts if ts and ts > 0 else None,
        )
