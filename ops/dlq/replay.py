"""Replay: send dead letters' original bytes back, paced, audited, at most once unless asked.

A replayed record carries the original key, value and headers (minus ``interlock.dlq.*``) plus
``interlock.replay.id`` (one id per replay run), ``interlock.replay.count`` (1 for the first
replay of that dead letter) and ``interlock.replay.at``; it gets a fresh timestamp, so that the
target's retention counts from the replay (the original time is in the dead letter's headers).
Each replayed record gets one JSON audit record on ``audit.replays``, keyed by the dead letter's
``dlq topic/partition/offset``; that is how a later replay knows it was already replayed.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts.errors import InterlockError
from contracts.serde import decode
from contracts.topics import TopicCatalog
from interlock.kafka import produce
from interlock.records import Header, RawRecord
from ops.dlq.delivery import DeliveryErrors
from ops.dlq.model import DeadLetter

__all__ = [
    "REPLAY_HEADER_PREFIX",
    "ReplayItem",
    "ReplayRejectedError",
    "TokenBucket",
    "Transform",
    "audit_value",
    "load_transform",
    "plan_replay",
    "send_replay",
]

REPLAY_HEADER_PREFIX = "interlock.replay."
Transform = Callable[[RawRecord], RawRecord | bytes | None]


class ReplayRejectedError(InterlockError):
    """A transformed record no longer passes its contract, or the transform is unusable."""


class TokenBucket:
    """Paces sends to ``rate`` per second, with at most ``burst`` sent back to back.

    Implemented as its equivalent virtual schedule (GCRA): each token has a due time
    ``1/rate`` after the previous one, so oversleeping never accumulates into drift. The clock
    and sleep are passed in, so the pacing logic is testable without waiting.
    """

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self.capacity = max(1.0, burst)
        self._clock = clock
        self._sleep = sleep
        self._next = clock()

    def acquire(self) -> None:
        """Take one token, sleeping until it is due."""
        now = self._clock()
        self._next = max(self._next, now - (self.capacity - 1.0) / self.rate)
        wait = self._next - now
        if wait > 0:
            self._sleep(wait)
        self._next += 1.0 / self.rate


def load_transform(spec: str) -> Transform:
    """``module:function`` → the function (``RawRecord -> RawRecord | bytes``)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ReplayRejectedError(f"--transform wants module:function, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
        fn = getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise ReplayRejectedError(f"cannot load transform {spec!r}: {exc}") from exc
    if not callable(fn):
        raise ReplayRejectedError(f"transform {spec!r} is not callable")
    return fn


@dataclass(frozen=True)
class ReplayItem:
    """One record to send: where from (the dead letter), where to, and what."""

    letter: DeadLetter
    target: str
    key: bytes | None
    value: bytes | None
    headers: Sequence[Header]
    count: int


def _contract_of(catalog: TopicCatalog | None, topic: str) -> str | None:
    if catalog is None:
        return None
    try:
        return catalog.get(topic).contract
    except KeyError:
        return None


def _apply(transform: Transform, letter: DeadLetter) -> RawRecord:
    original = letter.original()
    try:
        fixed = transform(original)
    except Exception as exc:
        raise ReplayRejectedError(f"{letter.coordinate}: transform raised {exc!r}") from exc
    if isinstance(fixed, RawRecord):
        return fixed
    if fixed is None or isinstance(fixed, bytes):
        return RawRecord(
            original.topic,
            original.partition,
            original.offset,
            original.key,
            fixed,
            original.headers,
            original.timestamp_ms,
        )
    raise ReplayRejectedError(
        f"{letter.coordinate}: transform returned {type(fixed).__name__}, want RawRecord or bytes"
    )


def _check_contract(letter: DeadLetter, target: str, contract: str, value: bytes | None) -> None:
    try:
        event = decode(value or b"")
    except InterlockError as exc:
        raise ReplayRejectedError(
            f"{letter.coordinate}: the transformed value does not pass contract {contract!r} "
            f"of {target}: {exc.reason}: {exc}"
        ) from exc
    if contract != type(event).ENTITY:
        raise ReplayRejectedError(
            f"{letter.coordinate}: the transformed value is a {type(event).ENTITY!r} event, "
            f"but {target} carries {contract!r}"
        )


def plan_replay(
    letters: Sequence[DeadLetter],
    *,
    replay_id: str,
    at: datetime,
    to: str | None = None,
    replayed: Mapping[str, int] | None = None,
    transform: Transform | None = None,
    catalog: TopicCatalog | None = None,
) -> list[ReplayItem]:
    """What to send for each selected dead letter (pure: no I/O).

    Raises:
        ReplayRejectedError: a transformed record fails its target's contract (nothing is sent).
    """
    done = replayed or {}
    items: list[ReplayItem] = []
    for letter in letters:
        target = to or letter.original_topic
        source = letter.original()
        if transform is not None:
            source = _apply(transform, letter)
            contract = _contract_of(catalog, target)
            if contract:
                _check_contract(letter, target, contract, source.value)
        count = done.get(letter.coordinate, 0) + 1
        added = {"id": replay_id, "count": str(count), "at": at.isoformat()}
        headers = [(k, v) for k, v in source.headers if not k.startswith(REPLAY_HEADER_PREFIX)] + [
            (REPLAY_HEADER_PREFIX + k, v.encode()) for k, v in added.items()
        ]
        items.append(ReplayItem(letter, target, source.key, source.value, headers, count))
    return items


def audit_value(item: ReplayItem, replay_id: str, at: datetime, dry_run: bool = False) -> bytes:
    """The JSON audit record of one replayed dead letter."""
    rec = item.letter.record
    return json.dumps(
        {
            "replay_id": replay_id,
            "dlq_topic": rec.topic,
            "dlq_partition": rec.partition,
            "dlq_offset": rec.offset,
            "target_topic": item.target,
            "reason": item.letter.reason,
            "count": item.count,
            "transformed": item.value != rec.value or item.key != rec.key,
            "dry_run": dry_run,
            "at": at.isoformat(),
        },
        sort_keys=True,
    ).encode()


def send_replay(
    producer: Any,
    items: Sequence[ReplayItem],
    *,
    replay_id: str,
    audit_topic: str,
    at: datetime | None = None,
    bucket: TokenBucket | None = None,
    on_sent: Callable[[ReplayItem], None] | None = None,
    flush_timeout: float = 60.0,
) -> list[str]:
    """Produce every item, then its audit record; returns delivery errors (empty: all acked)."""
    at = at or datetime.now(UTC)
    delivered = DeliveryErrors()
    for item in items:
        if bucket is not None:
            bucket.acquire()
        for topic, kwargs in (
            (item.target, {"key": item.key, "value": item.value, "headers": list(item.headers)}),
            (
                audit_topic,
                {
                    "key": item.letter.coordinate.encode(),
                    "value": audit_value(item, replay_id, at),
                },
            ),
        ):
            produce(producer, topic, on_delivery=delivered, **kwargs)
        producer.poll(0)
        if on_sent is not None:
            on_sent(item)
    return delivered.flush(producer, flush_timeout, "record(s)")
