"""Expiry by time of the marks in ``seen`` and ``writebacks``: one rule, two ways to find them.

A mark (an event id seen, a deal's written state) is forgotten by the sweep of its partition
once it is ``dedup_ttl_s`` old. The pipeline runs one path on either store: every mark is
noted to an :class:`Expiry` when written, and a partition's tick asks it to sweep. What differs
by store is only how the due marks are found:

- ``memory://`` (:class:`ExpiryWalk`): one walk of both tables per sweep interval serves every
  partition. The memory store is one dict for all partitions with no key order, so an index
  there would cost more than the walk it saves.
- ``rocksdb://`` (:class:`ExpiryIndex`): a time-ordered index, read up to what is due.

``seen`` (event id → seen at) and ``writebacks`` (deal id → fields last written, with the time)
are keyed for their lookups, so finding the expired entries means walking them: linear in what
the worker keeps. On ``memory://`` that walk is a pass over a dict; on ``rocksdb://`` it would
read and decode every key of a week of event ids from disk, on the worker's event loop, every
sweep interval (measured: 3 µs per entry for RocksDB and JSON alone, so minutes for tens of
millions of ids).

So on ``rocksdb://`` each mark also writes an entry to the ``expiry`` table, keyed by its time
(``<milliseconds, 13 digits>|<kind>|<key>``). RocksDB keeps a partition's keys sorted, so a
partition's sweep reads its index from the start and stops at the first entry not yet due; it
deletes the entries it read and the marks they point to that are still expired (a mark made
again later has a later entry). The index is changelogged like every table, in the partition
of the mark it indexes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from processors.domain.housekeeping import (
    expired_event_ids,
    expired_event_ids_by_partition,
    expired_writebacks,
    expired_writebacks_by_partition,
)
from processors.domain.writeback import WRITTEN_AT
from processors.state import Tables

__all__ = [
    "DUE_BATCH",
    "SEEN",
    "WRITEBACK",
    "Expiry",
    "ExpiryIndex",
    "ExpiryWalk",
    "index_key",
    "rocksdb_partition_keys",
]

SEEN = "s"
WRITEBACK = "w"
DUE_BATCH = 2_000
"""Most index entries one partition's sweep handles per tick (each a table read and one or two
deletes with their tombstones, on the event loop); the rest follow on the next ticks, so a
partition forgets up to this many marks per tick interval."""

PartitionKeys = Callable[[int], Iterator[str]]
"""The index's keys in one partition, in key order."""


class Expiry(Protocol):
    """How the marks in ``seen`` and ``writebacks`` of a partition are found and forgotten."""

    def note(self, kind: str, key: str, at: float) -> None:
        """A mark of ``kind`` (:data:`SEEN`, :data:`WRITEBACK`) was made at ``at``."""

    def sweep(self, tables: Tables, partition: int, now: float, ttl_s: float) -> bool:
        """Forget ``partition``'s marks older than ``ttl_s``; True when more may be due (the
        next tick goes on without waiting for the sweep interval)."""


def index_key(at: float, kind: str, key: str) -> str:
    """The index entry of a mark made at ``at`` (epoch seconds); sorts by time."""
    return f"{max(0, int(at * 1000)):013d}|{kind}|{key}"


def rocksdb_partition_keys(table: Any) -> PartitionKeys:
    """Read the keys of one partition of a RocksDB-stored table in order (Faust's store: its
    open databases by partition, its raw key encoding, its offset key)."""
    store = table.data

    def keys(partition: int) -> Iterator[str]:
        db = store._dbs.get(partition)
        if db is None:  # not held by this worker
            return
        for raw in db.keys():  # noqa: SIM118 (a rocksdict.Rdict: keys in order, as Faust reads them)
            if raw != store.offset_key:
                yield store._decode_key(raw)

    return keys


class ExpiryIndex:
    """The ``expiry`` table: time-ordered entries of the marks in ``seen`` and ``writebacks``."""

    def __init__(self, table: Any, partition_keys: PartitionKeys, batch: int = DUE_BATCH) -> None:
        self.table = table
        self.partition_keys = partition_keys
        self.batch = batch

    def note(self, kind: str, key: str, at: float) -> None:
        """Index a mark of ``key`` made at ``at`` (in the current event's partition)."""
        self.table[index_key(at, kind, key)] = 1

    def due(self, partition: int, cutoff: float) -> list[str]:
        """``partition``'s entries made at or before ``cutoff``, oldest first, at most a batch."""
        bound = f"{max(0, int(cutoff * 1000)) + 1:013d}|"
        out: list[str] = []
        for key in self.partition_keys(partition):
            if key >= bound or len(out) >= self.batch:
                break
            out.append(key)
        return out

    def sweep(self, tables: Tables, partition: int, now: float, ttl_s: float) -> bool:
        """Forget ``partition``'s marks older than ``ttl_s``; True when more may be due.

        An entry goes once its mark is gone or was made again later (that made a later
        entry); a mark is deleted when it is older than ``ttl_s``. An entry whose mark is not
        yet expired by the exact time (the index keeps milliseconds) stays for a later sweep.
        """
        entries = self.due(partition, now - ttl_s)
        for entry in entries:
            made, kind, key = entry.split("|", 2)
            table = tables.seen if kind == SEEN else tables.writebacks
            value = table.get(key)
            at = _marked_at(kind, value)
            if at is not None and int(at * 1000) <= int(made):
                if now - at < ttl_s:
                    continue
                del table[key]
            del self.table[entry]
        return len(entries) >= self.batch


def _marked_at(kind: str, value: Any) -> float | None:
    """When a mark was made: a ``seen`` value's first item, a deal state's write time."""
    try:
        return float(value[0] if kind == SEEN else value[WRITTEN_AT])
    except (TypeError, KeyError, IndexError, ValueError):
        return None  # gone, or a value without a time (left to the entry's removal)


class ExpiryWalk:
    """``memory://``: the due marks found by walking ``seen`` and ``writebacks``.

    One pass over each table finds the expired keys of every partition; each partition's sweep
    then deletes its own share, checked again (a key may have been marked since), as a
    deletion's tombstone goes to the changelog partition of the tick being handled. A partition
    that already took its share starts the next pass, so P partitions cost one walk per
    interval, not P.
    """

    def __init__(self) -> None:
        self._expired: dict[int, tuple[list[str], list[str]]] | None = None
        self._swept: set[int] = set()

    def note(self, kind: str, key: str, at: float) -> None:
        """Nothing to keep: the walk finds every mark."""

    def sweep(self, tables: Tables, partition: int, now: float, ttl_s: float) -> bool:
        if self._expired is None or partition in self._swept:
            seen = expired_event_ids_by_partition(tables.seen.items(), now, ttl_s)
            deals = expired_writebacks_by_partition(tables.writebacks.items(), now, ttl_s)
            self._expired = {
                p: (seen.get(p, []), deals.get(p, [])) for p in seen.keys() | deals.keys()
            }
            self._swept = set()
        self._swept.add(partition)
        seen_keys, deal_keys = self._expired.pop(partition, ([], []))
        for table, keys, expired in (
            (tables.seen, seen_keys, expired_event_ids),
            (tables.writebacks, deal_keys, expired_writebacks),
        ):
            current = [(key, value) for key in keys if (value := table.get(key)) is not None]
            for key in expired(current, partition, now, ttl_s):
                del table[key]
        return False
