"""Faust's RocksDB table store with a bounded cache of decoded values per table partition.

Faust's RocksDB store encodes every key, reads the partition's database and JSON-decodes the
value on every read, and a table read asks twice (``key in data``, then ``data[key]``). On the
hot path that cost more than the business logic of a quote. This store answers reads inside an
event from a per-partition cache of the values it decoded or was given, so a ``rocksdb://``
table reads like a ``memory://`` one (the same objects come back), while every write still goes
to RocksDB at once (write-through): the database, its changelog offset and recovery are as
before.

The cache is only ever a copy of what the partition's database holds:

- a write in an event updates the entry of the event's partition after the database write;
- a delete drops the key from every partition's cache;
- changelog records applied by recovery or a standby, a revoked or (re)assigned partition and
  a reset drop the caches they touch;
- a read outside an event (:func:`processors.state.read_any_partition`) bypasses the cache,
  as Faust's store then searches every partition, first the one where the key was last read
  or written in an event: a read from the cache keeps that index up to date too.

A write stores the bytes of the changelog record queued for it
(:class:`processors.state.ProducedTable`), which are what recovery would store, rather than
encoding the key and value a second time.

Faust's own per-key layers are cut where they cost more than the work: a ``str`` key is encoded
by orjson directly (the bytes Faust's ``json`` key serializer gives, without its registry), and
the index of which partition holds a key (kept for reads and deletes outside an event) is a
plain bounded dict rather than Faust's locked LRU cache, as the store is only used on the
worker's event loop.

A store given ``marked_at`` (``seen`` and ``writebacks``, whose marks expire, and ``ledger``,
whose entries fall due) also keeps a time index of its keys in a second column family of each
partition's database, ``by_time``: ``<milliseconds, 13 digits>|<key bytes>`` → empty, written
with every put of a value that has a time (a mark's time, a ledger entry's due time). Its
readers (:class:`processors.expiry.ExpiryIndex`, ``processors.reconcile.Reconciler``) read it
in key order, so in time order, up to what is due. It is kept by the store, not as a table: it
has no changelog, and recovery rebuilds it from the values' own changelog records as it applies
them; a database that has values and no index (written before the index lived here) gets one
from a walk of its values when it is opened. Being in the same database as the values, it is
kept or removed with them. Entries are never updated in place: a value written again with
another time gets a new entry, and the readers drop entries whose value is gone or has another
time.

Absent keys are cached too (a dedup check on a new event id asks for a key that is not there).
Each partition keeps at most ``cache_entries`` keys; the oldest entry goes first.

Without the cache (``cache_entries=0``, the worker's default) a store still keeps what it read
or wrote in the current event, for that event only: a key the quote flow reads twice in one
event (its account, its order) is read from the database and decoded once, and an absent key
is asked once. These entries are also a copy of the database: the event's own writes update
them, and they are dropped at the first read of another event, at a write made in another
event's context (another task's), at any delete, and by changelog batches, rebalances and
resets. A value read twice in an event is the same object, as on ``memory://``.

The databases are written without RocksDB's write-ahead log. The log exists to recover a
database after a crash, and a worker never uses a database after a crash: tables are kept only
after a clean stop (:func:`processors.state.keep_tables_after_clean_stop`), and are otherwise
rebuilt from their changelogs. Without the log a put only goes into the memtable; a database
is flushed to its files when its partition is revoked and when the store stops, and RocksDB
flushes on close as well.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import rocksdict
from faust.stores import rocksdb
from faust.streams import _current_event, current_event
from faust.types import TP

__all__ = ["BY_TIME", "CachedRocksDBStore", "KeyIndex", "by_time_key", "due_entries", "index_ms"]

BY_TIME = "by_time"
"""The column family of a partition's database that holds its time index."""

_ABSENT = object()
"""Cached: the key is not in the partition's database."""
_MISS = object()


def index_ms(at: float) -> int:
    """The time ``at`` (epoch seconds) as the time index keeps it: whole milliseconds."""
    return max(0, int(at * 1000))


def by_time_key(at: float, key_bytes: bytes) -> bytes:
    """The time index entry of ``key_bytes`` at ``at`` (epoch seconds)."""
    return b"%013d|%b" % (index_ms(at), key_bytes)


def due_entries(index: Any, cutoff: float, limit: int) -> list[bytes]:
    """Entries of a time index (a column family) at or before ``cutoff``, oldest first, at
    most ``limit``: read from its start, stopping at the first entry not yet due."""
    bound = b"%013d|" % (index_ms(cutoff) + 1)
    out: list[bytes] = []
    for entry in index.keys():  # noqa: SIM118 (a rocksdict.Rdict: keys in order)
        if entry >= bound or len(out) >= limit:
            break
        out.append(entry)
    return out


def _unlogged() -> Any:
    options = rocksdict.WriteOptions()
    # see the module's docstring; rocksdict's stubs declare this property as a method
    options.disable_wal = True  # type: ignore[method-assign,assignment]
    return options


class KeyIndex(OrderedDict[bytes, int]):
    """Which partition's database holds a key, for Faust's reads and deletes outside an event:
    at most ``limit`` keys, the least recently written first to go. Faust's ``LRUCache`` takes a
    lock and reorders on every read and write; this store is used on the event loop alone.

    An ``OrderedDict``: a plain dict's oldest key (``next(iter(d))``) is found by a scan past
    the slots its earlier evictions left empty, up to hundreds per new key."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: bytes, partition: int) -> None:
        if self.pop(key, None) is None and len(self) >= self.limit > 0:
            self.popitem(last=False)
        super().__setitem__(key, partition)


class CachedRocksDBStore(rocksdb.Store):
    """``rocksdb://`` with reads in an event served from a bounded per-partition cache."""

    def __init__(
        self,
        *args: Any,
        cache_entries: int = 4096,
        marked_at: Callable[[Any], float | None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.cache_entries = cache_entries
        self.marked_at = marked_at
        """The time the index keeps a value under: when its mark was made, when a ledger
        entry is due (None: no time index; a value it gives no time: no entry)."""
        self._by_time: dict[int, Any] = {}
        """partition -> the ``by_time`` column family of its open database"""
        self._cache: dict[int, dict[Any, tuple[Any, bytes]]] = {}
        """partition -> key -> (value or _ABSENT, the key's bytes)"""
        self._key_index = KeyIndex(self.key_index_size)  # type: ignore[assignment]
        self._memo_of: Any = None
        """The reference to the event whose reads :attr:`_memo` holds (held, so that no later
        event's reference can take its identity)."""
        self._memo: dict[Any, Any] = {}
        """Without a cache: key -> value or _ABSENT, as read or written in that event."""
        self._event_reads = not (self.table.is_global or self.table.use_partitioner)
        self._str_keys_as_json = self.key_serializer == "json"
        self._values_as_json = self.value_serializer == "json"
        self._plain_json_values = self._values_as_json and self.value_type is None

    def _encode_key(self, key: Any) -> bytes:
        if type(key) is str and self._str_keys_as_json:
            return orjson.dumps(key)  # what Faust's json key serializer gives for a str
        return super()._encode_key(key)

    def _event_partition(self) -> int | None:
        """The partition Faust's store reads in the current event; None: it searches all."""
        event = current_event()
        if event is None or not self._event_reads:
            return None
        partition: int = event.message.partition
        return partition

    def _lookup(self, key: Any) -> Any:
        """The cached value, or _ABSENT, or _MISS outside an event (the caller reads through)."""
        ref = _current_event.get(None)
        event = ref() if ref is not None else None
        if event is None or not self._event_reads:
            return _MISS
        partition: int = event.message.partition
        if not self.cache_entries:
            if ref is self._memo_of:
                value = self._memo.get(key, _MISS)
                if value is not _MISS:
                    return value
            else:
                self._memo_of = ref
                self._memo = {}
            value = self._read(key, partition)[0]
            self._memo[key] = value
            return value
        part = self._cache.get(partition)
        if part is None:
            part = self._cache[partition] = {}
        entry = part.get(key)
        if entry is None:
            entry = self._read(key, partition)
            self._remember(part, key, entry)
            return entry[0]
        value, key_bytes = entry
        if value is not _ABSENT:
            # as Faust's read does: a read outside an event looks in this partition first
            self._key_index[key_bytes] = partition
        return value

    def _read(self, key: Any, partition: int) -> tuple[Any, bytes]:
        """(the value in the event's partition's database or _ABSENT, the key's bytes): what
        Faust's ``_get`` does in an event, with the partition already known."""
        key_bytes = self._encode_key(key)
        db = self._dbs.get(partition)
        if db is None:
            db = self._db_for_partition(partition)
        raw = db.get(key_bytes)
        if raw is None:
            return _ABSENT, key_bytes
        if self._key_index.get(key_bytes) != partition:  # as Faust's read; most already are
            self._key_index[key_bytes] = partition
        return self._decode(raw), key_bytes

    def _decode(self, raw: bytes) -> Any:
        """A stored value: for plain JSON values (no value type), what Faust's json serializer
        gives, by orjson directly from the bytes (Faust decodes them to a str first, then looks
        for a model); anything else, and any error, through Faust's own decoding."""
        if self._plain_json_values:
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return self._decode_value(raw)  # raises Faust's ValueDecodeError
            if type(value) is not dict or "__faust" not in value:
                return value
        return self._decode_value(raw)

    def _open_for_partition(self, partition: int) -> Any:
        self._by_time.pop(partition, None)
        db = super()._open_for_partition(partition)
        db.set_write_options(_unlogged())
        return db

    def _time_index(self, partition: int, db: Any) -> Any:
        """The ``by_time`` column family of ``partition``'s database ``db``, made (and filled
        from the marks the database holds) if it has none."""
        index = self._by_time.get(partition)
        if index is not None:
            return index
        try:
            index = db.get_column_family(BY_TIME)
        except Exception:  # rocksdict raises a bare Exception for a family it does not have
            index = db.create_column_family(BY_TIME, rocksdict.Options(raw_mode=True))
            index.set_write_options(_unlogged())
            self._index_marks(db, index)
        else:
            index.set_write_options(_unlogged())
        self._by_time[partition] = index
        return index

    def _index_marks(self, db: Any, index: Any) -> None:
        assert self.marked_at is not None
        for key_bytes, raw in db.items():
            if key_bytes != self.offset_key:
                at = self.marked_at(self._decode_mark(raw))
                if at is not None:
                    index.put(by_time_key(at, key_bytes), b"")

    def _decode_mark(self, raw: bytes) -> Any:
        """A stored value, for its time only: orjson directly for JSON values (what Faust's
        json serializer ends in), as recovery indexes every mark record it replays."""
        if self._values_as_json:
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError:
                return None  # not a mark: no entry
        return self._decode_value(raw)

    def due(self, partition: int, cutoff: float, limit: int) -> list[tuple[bytes, int, Any]]:
        """``partition``'s time index entries at or before ``cutoff``, oldest first, at most
        ``limit``: (entry, milliseconds, key) each. Nothing for a partition not held.

        The cutoff is in the index's own terms: for marks kept ``ttl`` seconds, ``now - ttl``;
        for due times, ``now``. An entry's milliseconds are its time rounded down, so an entry
        at the cutoff's millisecond may be up to a millisecond past it."""
        db = self._dbs.get(partition)
        if db is None or self.marked_at is None:
            return []
        entries = due_entries(self._time_index(partition, db), cutoff, limit)
        return [(entry, int(entry[:13]), self._decode_key(entry[14:])) for entry in entries]

    def forget(self, partition: int, entries: Iterable[bytes]) -> None:
        """Remove ``entries`` from ``partition``'s time index."""
        db = self._dbs.get(partition)
        if db is not None:
            index = self._time_index(partition, db)
            for entry in entries:
                index.delete(entry)

    def _drop_time_indexes(self, partitions: Iterable[int]) -> None:
        """Let go of the column families of databases Faust lets go of: a handle keeps its
        database open (and locked) for as long as it lives."""
        for partition in list(partitions):
            self._by_time.pop(partition, None)

    def _flush(self, partitions: Iterable[int]) -> None:
        """Write the memtables of ``partitions``' open databases to their files."""
        for partition in partitions:
            db = self._dbs.get(partition)
            if db is not None:
                db.flush(wait=True)
                index = self._by_time.get(partition)
                if index is not None:
                    index.flush(wait=True)

    async def stop(self) -> None:
        self._flush(self._dbs)  # before Faust drops the databases
        self._drop_time_indexes(self._dbs)
        await super().stop()

    def _remember(self, part: dict[Any, Any], key: Any, entry: tuple[Any, bytes]) -> None:
        if len(part) >= self.cache_entries:
            del part[next(iter(part))]
        part[key] = entry

    def __getitem__(self, key: Any) -> Any:
        value = self._lookup(key)
        if value is _MISS:
            return super().__getitem__(key)
        if value is _ABSENT:
            raise KeyError(key)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        value = self._lookup(key)
        if value is _MISS:
            return super().get(key, default)
        return default if value is _ABSENT else value

    def __contains__(self, key: object) -> bool:
        value = self._lookup(key)
        if value is _MISS:
            return super().__contains__(key)
        return value is not _ABSENT

    def __setitem__(self, key: Any, value: Any) -> None:
        encoded = getattr(self.table, "encoded", None)
        if encoded is not None and encoded[0] is key and encoded[1] is value:
            # the bytes of the changelog record just queued for this very write
            self.table.encoded = None  # type: ignore[attr-defined]
            key_bytes, value_bytes = encoded[2], encoded[3]
        else:
            key_bytes, value_bytes = self._encode_key(key), self._encode_value(value)
        ref = _current_event.get(None)
        event = ref() if ref is not None else None
        if event is None:
            self._memo_of = None
            self._set(key_bytes, value_bytes)  # Faust's own, which refuses a write outside one
            return
        written = event.message.partition  # Faust's ``_set``, the event looked up once
        db = self._dbs.get(written)
        if db is None:
            db = self._db_for_partition(written)
        self._key_index[key_bytes] = written
        db.put(key_bytes, value_bytes)
        if self.marked_at is not None:
            at = self.marked_at(value)
            if at is not None:
                index = self._by_time.get(written)
                if index is None:
                    index = self._time_index(written, db)
                index.put(by_time_key(at, key_bytes), b"")
        if not self.cache_entries:
            if ref is self._memo_of:
                self._memo[key] = value  # what a read in this event now answers
            else:
                self._memo_of = None
            return
        partition = self._event_partition()
        if partition is None:
            self._forget(key)
            return
        part = self._cache.get(partition)
        if part is None:
            part = self._cache[partition] = {}
        part.pop(key, None)  # the newest write goes last: the last to be evicted
        self._remember(part, key, (value, key_bytes))

    def __delitem__(self, key: Any) -> None:
        self._forget(key)
        self._memo_of = None
        super().__delitem__(key)

    def _forget(self, key: Any) -> None:
        for part in self._cache.values():
            part.pop(key, None)

    def apply_changelog_batch(self, batch: Iterable[Any], to_key: Any, to_value: Any) -> None:
        self._cache.clear()  # recovery and standbys write the databases directly
        self._memo_of = None
        if self.marked_at is None:
            super().apply_changelog_batch(batch, to_key, to_value)
            return
        events = list(batch)
        indexes = {  # opened (and filled from what they hold) before the batch is written
            p: self._time_index(p, self._db_for_partition(p))
            for p in {event.message.partition for event in events}
        }
        super().apply_changelog_batch(events, to_key, to_value)
        for event in events:
            message = event.message
            if message.value is not None:
                at = self.marked_at(self._decode_mark(message.value))
                if at is not None:
                    indexes[message.partition].put(by_time_key(at, message.key), b"")

    def revoke_partitions(self, table: Any, tps: set[TP]) -> None:
        self._drop(table, tps)
        mine = table.changelog_topic.topics
        revoked = [tp.partition for tp in tps if tp.topic in mine]
        self._flush(revoked)
        self._drop_time_indexes(revoked)
        super().revoke_partitions(table, tps)

    async def assign_partitions(self, table: Any, tps: set[TP], generation_id: int = 0) -> None:
        self._drop(table, tps)
        await super().assign_partitions(table, tps, generation_id)

    def _drop(self, table: Any, tps: set[TP]) -> None:
        self._memo_of = None
        mine = table.changelog_topic.topics
        for tp in tps:
            if tp.topic in mine:
                self._cache.pop(tp.partition, None)

    def reset_state(self) -> None:
        self._cache.clear()
        self._memo_of = None
        self._by_time.clear()
        super().reset_state()
