"""Bounded state: which parked quotes have waited too long, which seen event ids and written
deal states expired; and the time each kept value is found by (``seen_at``, ``written_at``,
``due_at``: what a ``rocksdb://`` store's time index orders its keys by)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from processors.domain.writeback import WRITTEN_AT, WRITTEN_IN

__all__ = [
    "DUE_AT",
    "due_at",
    "expired_event_ids",
    "expired_event_ids_by_partition",
    "expired_writebacks",
    "expired_writebacks_by_partition",
    "is_duplicate",
    "overdue_parked",
    "seen_at",
    "written_at",
]


def seen_at(value: Any) -> float | None:
    """When a ``seen`` mark was made: its value's first item (None: not a mark)."""
    try:
        return float(value[0])
    except (TypeError, KeyError, IndexError, ValueError):
        return None


def written_at(value: Any) -> float | None:
    """When a ``writebacks`` mark was made: its value's ``WRITTEN_AT`` (None: not a mark)."""
    try:
        return float(value[WRITTEN_AT])
    except (TypeError, KeyError, IndexError, ValueError):
        return None


DUE_AT = "due_at"
"""The field of a ledger entry that holds when it is next due
(:func:`processors.domain.reconcile.next_due`, as of its last write)."""


def due_at(value: Any) -> float | None:
    """When a ledger entry is next due: its ``DUE_AT`` (None: not an entry, or never due)."""
    try:
        return float(value[DUE_AT])
    except (TypeError, KeyError, IndexError, ValueError):
        return None


def is_duplicate(seen_at: float | None, now: float, ttl_s: float) -> bool:
    """An event id seen less than ``ttl_s`` ago is a duplicate; older ones are forgotten."""
    return seen_at is not None and now - seen_at < ttl_s


def overdue_parked(
    parked: Iterable[tuple[str, Mapping[str, Any]]], partition: int, now: float, grace_s: float
) -> list[str]:
    """Keys of quotes parked on ``partition`` for longer than ``grace_s`` (JOIN_TIMEOUT)."""
    return [
        key
        for key, entry in parked
        if entry.get("partition") == partition and now - float(entry["parked_at"]) >= grace_s
    ]


def expired_event_ids_by_partition(
    seen: Iterable[tuple[str, Any]], now: float, ttl_s: float
) -> dict[int, list[str]]:
    """Event ids remembered for longer than ``ttl_s``, by the partition they were seen on."""
    out: dict[int, list[str]] = {}
    for key, value in seen:
        seen_at, part = value
        if now - float(seen_at) >= ttl_s:
            out.setdefault(part, []).append(key)
    return out


def expired_event_ids(
    seen: Iterable[tuple[str, Any]], partition: int, now: float, ttl_s: float
) -> list[str]:
    """Event ids of ``partition`` remembered for longer than ``ttl_s``."""
    return expired_event_ids_by_partition(seen, now, ttl_s).get(partition, [])


def expired_writebacks_by_partition(
    entries: Iterable[tuple[str, Mapping[str, Any]]], now: float, ttl_s: float
) -> dict[int, list[str]]:
    """Deals whose last write became durable more than ``ttl_s`` ago, by the partition of it.

    After that long, no echo of the write is still on its way and the deal's state is no
    longer needed to skip a redundant write; forgetting it costs at most one write again.
    Entries without a write time (written before it was kept) are left alone.
    """
    out: dict[int, list[str]] = {}
    for deal, shown in entries:
        written_at, part = shown.get(WRITTEN_AT), shown.get(WRITTEN_IN)
        if written_at is not None and isinstance(part, int) and now - float(written_at) >= ttl_s:
            out.setdefault(part, []).append(deal)
    return out


def expired_writebacks(
    entries: Iterable[tuple[str, Mapping[str, Any]]], partition: int, now: float, ttl_s: float
) -> list[str]:
    """Deals of ``partition`` whose last write became durable more than ``ttl_s`` ago."""
    return expired_writebacks_by_partition(entries, now, ttl_s).get(partition, [])
