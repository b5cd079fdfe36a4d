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

So on ``rocksdb://`` the stores of ``seen`` and ``writebacks`` keep a time index of their marks
beside them, in each partition's database (``processors.rocksstore``: written with every mark,
rebuilt by recovery from the marks' changelogs, no changelog of its own). A partition's sweep
reads its index from the start and stops at the first entry not yet due; it deletes the
entries it read and the marks they point to that are still expired (a mark made again later
has a later entry).
"""

from __future__ import annotations

from typing import Protocol

from processors.domain.housekeeping import (
    expired_event_ids,
    expired_event_ids_by_partition,
    expired_writebacks,
    expired_writebacks_by_partition,
)
from processors.rocksstore import index_ms
from processors.state import Tables

__all__ = [
    "DUE_BATCH",
    "Expiry",
    "ExpiryIndex",
    "ExpiryWalk",
]

DUE_BATCH = 2_000
"""Most index entries one partition's sweep handles per tick and table (each a table read, an
entry's removal and maybe a delete with its tombstone, on the event loop); the rest follow on
the next ticks, so a partition forgets up to this many marks of each table per tick interval.
The reconciliation tick reads as many due ledger entries per tick (``processors.reconcile``)."""


class Expiry(Protocol):
    """How the marks in ``seen`` and ``writebacks`` of a partition are found and forgotten."""

    def sweep(self, tables: Tables, partition: int, now: float, ttl_s: float) -> bool:
        """Forget ``partition``'s marks older than ``ttl_s``; True when more may be due (the
        next tick goes on without waiting for the sweep interval)."""


class ExpiryIndex:
    """``rocksdb://``: the due marks read from the time index the stores of ``seen`` and
    ``writebacks`` keep (:meth:`processors.rocksstore.CachedRocksDBStore.due`)."""

    def __init__(self, batch: int = DUE_BATCH) -> None:
        self.batch = batch

    def sweep(self, tables: Tables, partition: int, now: float, ttl_s: float) -> bool:
        """Forget ``partition``'s marks older than ``ttl_s``; True when more may be due.

        An entry goes once its mark is gone or was made again later (that made a later
        entry); a mark is deleted when it is older than ``ttl_s``. An entry whose mark is not
        yet expired by the exact time (the index keeps milliseconds) stays for a later sweep.
        """
        more = False
        for table in (tables.seen, tables.writebacks):
            store = table.data  # its ``marked_at`` reads the time a value holds
            marked_at = store.marked_at
            due = store.due(partition, now - ttl_s, self.batch)
            done: list[bytes] = []
            for entry, made_ms, key in due:
                at = marked_at(table.get(key))
                if at is not None and index_ms(at) <= made_ms:
                    if now - at < ttl_s:
                        continue
                    del table[key]
                done.append(entry)
            store.forget(partition, done)
            more = more or len(due) >= self.batch
        return more


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
