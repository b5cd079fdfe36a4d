"""Dead letters as the tooling sees them, and the pure logic over them: filters, selection, stats.

Nothing here does I/O: a :class:`DeadLetter` is parsed from a :class:`RawRecord` read from a
``dlq.*`` topic; filters, "already replayed/purged" and statistics are plain functions.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.topics import DLQ_PREFIX, dlq_topic
from interlock.deadletter import DLQ_HEADER_PREFIX
from interlock.records import Header, RawRecord

__all__ = [
    "DeadLetter",
    "DeadLetterFilter",
    "ReasonStats",
    "TopicStats",
    "coordinate",
    "normalise_topic",
    "parse_time",
    "select",
    "topic_stats",
]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def coordinate(topic: str, partition: int, offset: int) -> str:
    """The key of a dead letter in ``audit.replays`` and ``audit.dlq-purges``."""
    return f"{topic}/{partition}/{offset}"


def normalise_topic(name: str) -> str:
    """``dlq.<t>`` as given, or ``<t>`` completed to its dead-letter topic."""
    return name if name.startswith(DLQ_PREFIX) else dlq_topic(name)


def parse_time(text: str, now: datetime) -> datetime:
    """An ISO-8601 time (naive = UTC) or a duration ago: ``30s``, ``15m``, ``2h``, ``7d``, ``1w``.

    Raises:
        ValueError: neither form.
    """
    match = _DURATION.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (want ISO-8601 like 2026-01-31T12:00 or a duration like 2h)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic: where it sits, the original record, why it failed."""

    record: RawRecord
    reason: str
    error_type: str
    error_message: str
    original_topic: str
    original_partition: int | None
    original_offset: int | None
    attempt: int | None
    processor: str
    failed_at: datetime | None
    dlq_headers: Mapping[str, str]

    @property
    def coordinate(self) -> str:
        return coordinate(self.record.topic, self.record.partition, self.record.offset)

    @property
    def original_headers(self) -> list[Header]:
        """The headers the record had before it was dead-lettered."""
        return [(k, v) for k, v in self.record.headers if not k.startswith(DLQ_HEADER_PREFIX)]

    def original(self) -> RawRecord:
        """The record as it was on its original topic (what a transform receives)."""
        return RawRecord(
            topic=self.original_topic,
            partition=self.original_partition if self.original_partition is not None else -1,
            offset=self.original_offset if self.original_offset is not None else -1,
            key=self.record.key,
            value=self.record.value,
            headers=tuple(self.original_headers),
            timestamp_ms=self.record.timestamp_ms,
        )

    @classmethod
    def parse(cls, record: RawRecord) -> DeadLetter:
        """From a record of a ``dlq.*`` topic; tolerant of missing or damaged headers."""
        found: dict[str, str] = {}
        for key, value in record.headers:
            if key.startswith(DLQ_HEADER_PREFIX) and value is not None:
                found[key[len(DLQ_HEADER_PREFIX) :]] = value.decode("utf-8", errors="replace")

        def number(name: str) -> int | None:
            try:
                return int(found[name])
            except (KeyError, ValueError):
                return None

        try:
            failed_at: datetime | None = datetime.fromisoformat(found["failed_at"])
        except (KeyError, ValueError):
            failed_at = None
        if failed_at is None and record.timestamp_ms is not None:
            failed_at = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
        fallback = record.topic.removeprefix(DLQ_PREFIX)
        return cls(
            record=record,
            reason=found.get("reason", "UNKNOWN"),
            error_type=found.get("error.type", ""),
            error_message=found.get("error.message", ""),
            original_topic=found.get("original.topic") or fallback,
            original_partition=number("original.partition"),
            original_offset=number("original.offset"),
            attempt=number("attempt"),
            processor=found.get("processor", ""),
            failed_at=failed_at,
            dlq_headers=found,
        )


@dataclass(frozen=True)
class DeadLetterFilter:
    """What ``show``, ``replay``, ``purge`` and ``stats`` act on (every given field must match)."""

    reasons: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None
    key: str | None = None
    limit: int | None = None

    @property
    def empty(self) -> bool:
        """True when it selects every record (``purge`` may then truncate the topic)."""
        return not self.reasons and self.since is None and self.until is None and self.key is None

    def matches(self, letter: DeadLetter) -> bool:
        if self.reasons and letter.reason not in self.reasons:
            return False
        if self.key is not None:
            key = letter.record.key
            if key is None or key.decode("utf-8", errors="replace") != self.key:
                return False
        if self.since is not None and (letter.failed_at is None or letter.failed_at < self.since):
            return False
        return not (
            self.until is not None and (letter.failed_at is None or letter.failed_at >= self.until)
        )


def select(
    letters: Iterable[DeadLetter],
    where: DeadLetterFilter,
    *,
    hidden: Iterable[str] = (),
    replayed: Mapping[str, int] | None = None,
    again: bool = True,
) -> list[DeadLetter]:
    """The letters ``where`` matches, oldest first, minus purged ones (``hidden``) and, unless
    ``again``, minus those already replayed; at most ``where.limit``."""
    gone = set(hidden)
    done = replayed or {}
    chosen = [
        letter
        for letter in letters
        if letter.coordinate not in gone
        and (again or letter.coordinate not in done)
        and where.matches(letter)
    ]
    chosen.sort(key=lambda x: (x.failed_at or datetime.min.replace(tzinfo=UTC), x.coordinate))
    return chosen if where.limit is None else chosen[: where.limit]


@dataclass(frozen=True)
class ReasonStats:
    reason: str
    count: int


@dataclass(frozen=True)
class TopicStats:
    """Counts by reason, age of the oldest, and the rate over the window."""

    topic: str
    count: int
    by_reason: Sequence[ReasonStats]
    oldest: datetime | None
    newest: datetime | None
    window_start: datetime | None
    window_end: datetime

    @property
    def oldest_age(self) -> timedelta | None:
        return None if self.oldest is None else self.window_end - self.oldest

    def rate(self, per: timedelta) -> float:
        """Dead letters per ``per`` over the window (0 when the window is empty)."""
        if self.window_start is None or self.count == 0:
            return 0.0
        span = max((self.window_end - self.window_start).total_seconds(), 1.0)
        return self.count * per.total_seconds() / span

    def as_json(self) -> dict[str, Any]:
        age = self.oldest_age
        return {
            "topic": self.topic,
            "count": self.count,
            "by_reason": {r.reason: r.count for r in self.by_reason},
            "oldest": self.oldest.isoformat() if self.oldest else None,
            "oldest_age_seconds": age.total_seconds() if age else None,
            "per_minute": self.rate(timedelta(minutes=1)),
            "per_hour": self.rate(timedelta(hours=1)),
        }


def topic_stats(
    topic: str, letters: Sequence[DeadLetter], now: datetime, since: datetime | None = None
) -> TopicStats:
    """Statistics of ``letters`` (already filtered); the window runs from ``since`` (or the
    oldest letter) to ``now``."""
    counts = Counter(x.reason for x in letters)
    times = [x.failed_at for x in letters if x.failed_at is not None]
    oldest = min(times) if times else None
    return TopicStats(
        topic=topic,
        count=len(letters),
        by_reason=[ReasonStats(r, n) for r, n in counts.most_common()],
        oldest=oldest,
        newest=max(times) if times else None,
        window_start=since or oldest,
        window_end=now,
    )
