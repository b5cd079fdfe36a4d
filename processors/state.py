"""The processors' tables (Faust, changelogged, str keys) and the in-flight commands in memory.

Every table is co-partitioned with the canonical topics: a key is written while handling an
event of partition p, so it lives in changelog partition p beside that account's events. The
flows read and write them only through :mod:`processors.repositories`, which keeps the key
layouts below.

=====================  =======================================================================
``accounts``           canonical account id → merged account state
``identity``           ``crm:<id>`` / ``erp:<number>`` → canonical account id (cross-reference);
                       ``m|tax:`` / ``m|name:`` / ``m|domain:`` → the accounts of either side
                       found by that key, with a snapshot each (match index, in the key's
                       partition of ``link.account-match``)
``seen``               event id → ``[seen_at, partition]`` (TTL-bounded)
``orders``             quote id → order state (revision ordered, requested/cancelled, deal id);
                       written only from commands read back from their topics
``parked``             ``q:<quote id>`` → the parked quote (original bytes), ``a:<account id>``
                       → quote ids parked for that account
``correlation``        ``o:<order id>`` / ``n:<ERP order number>`` → quote id,
                       ``q:<quote id>`` → ERP order number
``writebacks``         CRM deal id → the deal fields we last wrote (to recognise echoes), with
                       the time and partition of the last write (TTL-bounded like ``seen``)
``lines``              quote id → its lines assembled from line events (HubSpot line items)
``cases``              case id → the exception desk's case (``contracts.review.Case`` as JSON)
                       with its partition and, for a quote's case, the quote's original bytes
                       (``processors.review``)
``ledger``             ``q:<quote id>`` → what the CRM promised, the ERP did and the CRM was
                       told, with the open drift findings; ``n:<ERP order number>`` → an ERP
                       order no quote claims; ``d:<deal id>`` → quote id (``processors.reconcile``)
=====================  =======================================================================
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import faust
import orjson
from faust.serializers.codecs import get_codec
from faust.stores.memory import Store as MemoryStore
from faust.streams import _current_event
from faust.tables.table import Table
from faust.types import TP
from faust.utils import json as faust_json

from interlock.settings import ProcessorSettings
from processors.domain.housekeeping import due_at, seen_at, written_at
from processors.monitor import LeanMonitor
from processors.rocksstore import CachedRocksDBStore

__all__ = [
    "CLEAN_STOP_MARKER",
    "ChangelogCheckpoints",
    "ChangelogEmit",
    "InFlight",
    "ProducedTable",
    "Tables",
    "in_partition",
    "keep_tables_after_clean_stop",
    "make_tables",
    "partition_items",
    "put_if_changed",
    "read_any_partition",
    "store_options",
    "uses_rocksdb",
]

log = logging.getLogger(__name__)

ChangelogEmit = Callable[[str, bytes | None, bytes | None, Any, int | None], None]
"""Queue one changelog record: (topic, key, value, headers, partition)."""

CLEAN_STOP_MARKER = "interlock-clean-stop"
"""File in the table directory: the last worker stopped with every table write in a changelog."""


class _AtPartition:
    """What Faust's tables read of an event, or of a sent changelog record: ``.message``'s
    partition (and, of an event, its topic)."""

    __slots__ = ("__weakref__", "message", "partition", "topic")

    def __init__(self, partition: int | None, topic: str | None = None) -> None:
        self.message = self
        self.partition = partition
        self.topic = topic


_JSON = get_codec("json")
_json_bytes = functools.partial(
    orjson.dumps, default=faust_json.on_default, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z
)
"""``_JSON.dumps`` without its layers, where it ends with orjson installed (same bytes, tested)."""
_PLAIN_JSON = frozenset((dict, list, str, int, float, bool))


class ProducedTable(Table):
    """A Faust table whose changelog records go through the shared batching producer.

    Faust sends every table write through its aiokafka producer, one Python-level produce per
    write (with a debug log record each): on the hot path that cost more than the business
    logic. Here the record (serialized exactly as Faust would, to the same changelog partition)
    is queued on the one confluent-kafka producer, which Faust's pre-commit flush hook makes
    durable before offsets are committed, as before. Faust's per-record callback that stores
    the written offset in a RocksDB store is replaced by :class:`ChangelogCheckpoints`, once per
    commit.
    """

    changelog_emit: ChangelogEmit | None = None
    cache_entries: int = 0
    """``rocksdb://``: decoded values each partition's store keeps for reads (0: none, every
    read goes to the database)."""
    marked_at: Callable[[Any], float | None] | None = None
    """``rocksdb://``: the time the store's time index keeps a value under (a mark's time, a
    ledger entry's due time; None: no index)."""
    _changelog_name: str | None = None
    encoded: tuple[Any, Any, bytes | None, bytes | None] | None = None
    """The last changelog record's (key, value, key bytes, value bytes)."""

    def _new_store_by_url(self, url: Any) -> Any:
        if not str(url).startswith("rocksdb"):
            return super()._new_store_by_url(url)
        return CachedRocksDBStore(
            url,
            self.app,
            self,
            table_name=self.name,
            key_type=self.key_type,
            key_serializer=self.key_serializer,
            value_serializer=self.value_serializer,
            value_type=self.value_type,
            loop=self.loop,
            options=self.options,
            cache_entries=self.cache_entries,
            marked_at=self.marked_at,
        )

    table_sensors: bool = True
    """Whether Faust's sensors are told of every read and write. The worker's one sensor,
    :class:`processors.monitor.LeanMonitor`, ignores them, at a cost above a ``memory://`` read:
    :func:`make_tables` turns them off then."""

    def get(self, key: Any, default: Any = None) -> Any:
        """``Mapping.get`` with one store read instead of two and no KeyError for a missing key.

        Faust's path asks the store ``key in data`` and then ``data[key]``, and a missing key
        raises through ``__missing__``. A table with a ``default`` keeps that path (its get
        never returns ``default``). A ``memory://`` store's ``get`` is ``Mapping.get``, a
        KeyError raised and caught per missing key: its dict (no ``__missing__``) is read.
        """
        if self.default is not None:
            return super().get(key, default)
        if self.table_sensors:
            self.on_key_get(key)
        data = self.data
        if type(data) is MemoryStore:
            return data.data.get(key, default)
        return data.get(key, default)

    def on_key_get(self, key: Any) -> None:
        """Faust's (``table[key]``, ``key in table``): the sensors only if :attr:`table_sensors`."""
        if self.table_sensors:
            super().on_key_get(key)

    def on_key_set(self, key: Any, value: Any) -> None:
        """Faust's, without telling the sensors unless :attr:`table_sensors`."""
        if self.table_sensors:
            super().on_key_set(key, value)
            return
        fut = self.send_changelog(self.partition_for_key(key), key, value)
        self._maybe_set_key_ttl(key, fut.message.partition)

    def on_key_del(self, key: Any) -> None:
        """Faust's, without telling the sensors unless :attr:`table_sensors`."""
        if self.table_sensors:
            super().on_key_del(key)
            return
        fut = self.send_changelog(self.partition_for_key(key), key, None, value_serializer="raw")
        self._maybe_del_key_ttl(key, fut.message.partition)

    def send_changelog(
        self,
        partition: int | None,
        key: Any,
        value: Any,
        key_serializer: Any = None,
        value_serializer: Any = None,
    ) -> Any:
        emit = self.changelog_emit
        if emit is None:
            return super().send_changelog(partition, key, value, key_serializer, value_serializer)
        topic: Any = self.changelog_topic  # a faust.Topic: serializes like Faust's send
        key_serializer = key_serializer or self.key_serializer
        value_serializer = value_serializer or self.value_serializer
        if (
            key_serializer == "json"
            and value_serializer == "json"
            and type(key) is str
            and type(value) in _PLAIN_JSON
        ):
            # what Faust's serializer registry ends in for a str key and a plain value,
            # without its layers (no model, no schema, no headers)
            key_bytes, value_bytes, headers = _json_bytes(key), _json_bytes(value), None
        else:
            key_bytes, headers = topic.prepare_key(key, key_serializer)
            value_bytes, headers = topic.prepare_value(value, value_serializer, None, headers)
        name = self._changelog_name
        if name is None:
            name = self._changelog_name = topic.get_topic_name()
        emit(name, key_bytes, value_bytes, headers, partition)
        # Faust writes the store right after (``ManagedUserDict.__setitem__``): a cached store
        # writes these bytes, which recovery would write too, instead of encoding both again
        self.encoded = (key, value, key_bytes, value_bytes)
        return _AtPartition(partition)


@dataclass
class Tables:
    """The Faust tables of one worker."""

    accounts: Any
    identity: Any
    seen: Any
    orders: Any
    parked: Any
    correlation: Any
    writebacks: Any
    lines: Any
    ledger: Any = None
    """The parity ledger of reconciliation (``processors.reconcile``); None: not kept."""
    cases: Any = None
    """The exception desk's cases (``processors.review``); None: no desk."""


def read_any_partition(table: Any, key: str) -> Any:
    """``table.get(key)`` from any partition this worker holds, not only the current event's.

    Inside an event, Faust's RocksDB store reads only the event's partition, where the memory
    store (one dict) reads them all. A lookup whose key may live in another partition (the
    match index of account linking) reads outside the event, so both stores answer alike.
    """
    token = _current_event.set(None)
    try:
        return table.get(key)
    finally:
        _current_event.reset(token)


def put_if_changed(table: Any, key: str, value: Any) -> bool:
    """Write ``value`` under ``key`` unless the table already holds it; True if written.

    For entries that every later change repeats (an account's cross-reference, an order's
    number): a table write is a store write and a changelog record, a read neither."""
    if table.get(key) == value:
        return False
    table[key] = value
    return True


def partition_items(table: Any, partition: int) -> Iterator[tuple[Any, Any]]:
    """The items ``table`` keeps in ``partition``, read one at a time, for a walk of one
    partition's entries.

    On ``rocksdb://`` only that partition's database is read (Faust's ``items()`` reads every
    partition's, so a walk of each partition in turn read the table once per partition). On
    ``memory://`` one dict holds every partition: all items come back, and the caller tells
    them apart by the partition it stored in each value. Writing an existing key while walking
    is safe on both (a RocksDB iterator reads a snapshot); remove keys after the walk.
    """
    store: Any = getattr(table, "data", None)  # a Faust table's store (a plain dict has none)
    dbs = getattr(store, "_dbs", None)
    if dbs is None:
        yield from table.items()
        return
    db = dbs.get(partition)
    if db is None:  # not held by this worker
        return
    for raw_key, raw_value in db.items():
        if raw_key != store.offset_key:
            yield store._decode_key(raw_key), store._decode_value(raw_value)


@contextmanager
def in_partition(partition: int) -> Iterator[None]:
    """Read and write the tables as if handling an event of ``partition`` of the same topic.

    A Faust table keys its store (RocksDB: one database per partition) and its changelog
    partition by the current event's partition; a handler that must touch state kept in another
    partition (an ERP change reaching its quote's entries) runs that part inside this block.
    Outside an event, or already in ``partition``, it changes nothing.
    """
    current = _current_event.get(None)
    event = current() if current is not None else None
    if event is None or event.message.partition == partition:
        yield
        return
    proxy = _AtPartition(partition, event.message.topic)
    token = _current_event.set(weakref.ref(proxy))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


def uses_rocksdb(proc: ProcessorSettings) -> bool:
    """Whether the tables live in RocksDB (on disk, kept across restarts)."""
    return proc.store.startswith("rocksdb")


class ChangelogSource(Protocol):
    """What :class:`ChangelogCheckpoints` reads of the output (``processors.output.Output``)."""

    changelog_failed: bool

    def take_delivered(self) -> dict[tuple[str, int], int]: ...


class ChangelogCheckpoints:
    """Write into each RocksDB table partition the changelog offset its local data is up to.

    A RocksDB table partition keeps, beside its data, the offset of the last changelog record
    it holds (Faust's ``set_persisted_offset``), and a restarted worker's recovery replays only
    the changelog after it. Faust writes that offset from the delivery report of each
    changelog record; :class:`ProducedTable`'s records go through the shared producer instead,
    so :meth:`persist` runs as a flush hook right after that producer's flush: for every
    changelog partition it writes the last offset delivered since the previous flush. A table
    write reaches the local store before its changelog record is queued, so the store holds
    everything up to that offset. A partition this worker no longer holds (revoked) is left
    alone: its store is closed and its next owner recovers it.

    The offsets are only trusted after a clean stop (:meth:`mark_clean_stop`,
    :func:`keep_tables_after_clean_stop`): between two flushes the store is ahead of its
    changelog, and after a crash its writes whose records were never delivered (a parked quote
    released, say) must not outlive the crash, or the event replayed from the last commit
    would find them done.
    """

    def __init__(self, tables: Tables, output: ChangelogSource) -> None:
        self._tables = [t for t in vars(tables).values() if t is not None]
        self._output = output
        self._by_topic: dict[str, Any] = {}

    async def persist(self) -> None:
        """Write the offsets delivered since the last call into their partitions' stores."""
        delivered = self._output.take_delivered()
        if not delivered:
            return
        if not self._by_topic:
            self._by_topic = {t.changelog_topic.get_topic_name(): t for t in self._tables}
        for (topic, partition), offset in delivered.items():
            table = self._by_topic.get(topic)
            if table is None:
                continue
            store = table.data
            if partition in getattr(store, "_dbs", ()):  # open: this worker holds it
                store.set_persisted_offset(TP(topic, partition), offset)

    def mark_clean_stop(self, tabledir: Path, undelivered: int) -> bool:
        """After the worker stopped and its producer was flushed (``undelivered`` records left):
        mark the tables as matching their changelogs, unless a changelog record was lost."""
        if undelivered or self._output.changelog_failed:
            log.warning(
                "changelog records were not delivered: the next start rebuilds the RocksDB "
                "tables in %s from their changelogs",
                tabledir,
            )
            return False
        marker = tabledir / CLEAN_STOP_MARKER
        tabledir.mkdir(parents=True, exist_ok=True)
        with marker.open("w") as out:
            out.write("every table write of the last run is in its changelog\n")
            out.flush()
            os.fsync(out.fileno())
        return True


def keep_tables_after_clean_stop(tabledir: Path) -> bool:
    """Before a ``rocksdb://`` worker starts: keep its tables only if the last one stopped clean.

    Returns whether they were kept. Otherwise (a crash, a kill, a lost changelog record) every
    table database in ``tabledir`` is removed and recovery rebuilds it from its changelog, as on
    ``memory://``. The marker is removed either way: until this run stops cleanly, its tables
    may run ahead of their changelogs.
    """
    marker = tabledir / CLEAN_STOP_MARKER
    if marker.exists():
        marker.unlink()
        return True
    stale = sorted(tabledir.glob("*.db")) if tabledir.is_dir() else []
    for path in stale:
        shutil.rmtree(path)
    if stale:
        log.warning(
            "the last worker on %s did not stop cleanly: %d table databases removed, "
            "rebuilt from their changelogs",
            tabledir,
            len(stale),
        )
    return False


def store_options(proc: ProcessorSettings) -> dict[str, int] | None:
    """Options of each table's store: the memory bounds of a ``rocksdb://`` one, else none.

    Faust's RocksDB defaults let every table partition's database hold 3 memtables of 64 MB and
    a 2 GB block cache, so a worker's memory grows with its state until those fill. Each
    database now holds at most ``ROCKSDB_WRITE_BUFFER_MB * ROCKSDB_WRITE_BUFFERS +
    ROCKSDB_BLOCK_CACHE_MB``.
    """
    if not uses_rocksdb(proc):
        return None
    mib = 1024 * 1024
    return {
        "write_buffer_size": proc.rocksdb_write_buffer_mb * mib,
        "max_write_buffer_number": proc.rocksdb_write_buffers,
        "block_cache_size": proc.rocksdb_block_cache_mb * mib,
    }


def make_tables(
    app: faust.App,
    partitions: int,
    changelog_emit: ChangelogEmit | None = None,
    options: dict[str, int] | None = None,
    expiry_index: bool = False,
    cache_entries: int = 0,
) -> Tables:
    """Declare every table on ``app`` with str keys and JSON values.

    With ``changelog_emit``, changelog records go through it (see :class:`ProducedTable`);
    ``options`` go to each table's store (see :func:`store_options`); with ``expiry_index``
    (``rocksdb://``) the stores of ``seen`` and ``writebacks`` keep a time index of their marks,
    and the store of ``ledger`` one of its entries' due times;
    ``cache_entries``: on ``rocksdb://``, decoded values each table partition keeps for reads
    (both: :class:`processors.rocksstore.CachedRocksDBStore`).
    """

    # only the lean monitor, which ignores table reads and writes (a sensor added to the app
    # later is not told of them either: add it before the tables, or leave the monitor)
    monitor: Any = app.conf.Monitor
    lean = issubclass(monitor, LeanMonitor) and not list(app.sensors)

    def table(name: str, help_: str, marked_at: Callable[[Any], float | None] | None = None) -> Any:
        created = ProducedTable(
            app,
            name=name,
            key_type=str,
            partitions=partitions,
            help=help_,
            beacon=app.tables.beacon,
            # a copy each: Faust's RocksDB store pops keys off the mapping it is given
            options=dict(options) if options else None,
        )
        created.changelog_emit = changelog_emit
        created.table_sensors = not lean
        created.cache_entries = cache_entries
        created.marked_at = marked_at if expiry_index else None
        return app.tables.add(created)

    return Tables(
        accounts=table("accounts", "Merged canonical account state."),
        identity=table("identity", "Cross-reference and match index to canonical account ids."),
        seen=table("seen", "Event ids already acted on (TTL-bounded).", seen_at),
        orders=table("orders", "Order state per quote, from durable order commands."),
        parked=table("parked", "Quotes waiting for their account."),
        correlation=table("correlation", "Order ↔ quote correlation for write-back."),
        writebacks=table("writebacks", "Deal fields last written to the CRM.", written_at),
        lines=table("lines", "Quote lines assembled from line events."),
        ledger=table("ledger", "Parity ledger: promised, done and told, per quote.", due_at),
        cases=table("cases", "The exception desk's cases, with the quotes they hold."),
    )


@dataclass
class InFlight:
    """Commands produced but not yet read back from their topic (lost on restart, by design).

    Between producing a command and reading it back, these stop a second command for the same
    cause. After a crash they are gone, and what was not yet durable is produced again with the
    same deterministic id: a duplicate the sinks drop by Idempotency-Key, never a loss.
    """

    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    causes: set[str] = field(default_factory=set)
    writebacks: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Deal id -> the values of the latest update-deal produced for it and not yet read back."""

    def clear(self) -> None:
        self.orders.clear()
        self.causes.clear()
        self.writebacks.clear()
