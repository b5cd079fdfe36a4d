"""The cached RocksDB store: reads in an event come from the cache, which never disagrees with
the partition's database (writes, deletes, recovery, rebalance)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.streams import _current_event
from faust.types import TP

from processors.rocksstore import BY_TIME, CachedRocksDBStore, KeyIndex, by_time_key
from processors.state import ProducedTable, make_tables, partition_items, read_any_partition

pytestmark = pytest.mark.unit

pytest.importorskip("rocksdict")


class _Event:
    """What Faust's tables read of the current event: ``.message.partition`` and ``.topic``."""

    def __init__(self, partition: int) -> None:
        self.message = self
        self.partition = partition
        self.topic = "canonical"


@contextmanager
def event_of(partition: int) -> Iterator[None]:
    event = _Event(partition)
    token = _current_event.set(weakref.ref(event))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


def _orders(tmp_path: Path, cache_entries: int = 3) -> tuple[Any, list[tuple[Any, ...]]]:
    app = faust.App("cache-test", store="rocksdb://", datadir=str(tmp_path), broker="kafka://x:1")
    emitted: list[tuple[Any, ...]] = []
    tables = make_tables(
        app, 2, changelog_emit=lambda *record: emitted.append(record), cache_entries=cache_entries
    )
    return tables.orders, emitted


def test_a_written_value_is_read_back_without_decoding_and_is_in_the_database(
    tmp_path: Path,
) -> None:
    orders, emitted = _orders(tmp_path)
    assert isinstance(orders.data, CachedRocksDBStore)
    value = {"status": "REQUESTED", "revision": 1}
    with event_of(0):
        orders["q1"] = value
        assert orders["q1"] is value  # the cached object, as on memory://
        assert "q1" in orders
        assert orders.get("q2") is None
        assert "q2" not in orders
    # outside an event the cache is bypassed: this is what the database holds
    stored = read_any_partition(orders, "q1")
    assert stored == value
    assert stored is not value
    assert [(key, partition) for _, key, _, _, partition in emitted] == [(b'"q1"', 0)]


def test_partitions_are_cached_apart(tmp_path: Path) -> None:
    orders, _ = _orders(tmp_path)
    with event_of(0):
        orders["k"] = "zero"
    with event_of(1):
        assert orders.get("k") is None  # partition 1's database has no such key
        orders["k"] = "one"
    with event_of(0):
        assert orders["k"] == "zero"


def test_a_delete_is_seen_at_once(tmp_path: Path) -> None:
    orders, _ = _orders(tmp_path)
    with event_of(0):
        orders["q1"] = {"n": 1}
        assert "q1" in orders
        del orders["q1"]
        assert "q1" not in orders
        assert orders.get("q1") is None
    assert read_any_partition(orders, "q1") is None


def _changelog_record(partition: int, key: bytes, value: bytes | None, offset: int) -> Any:
    message = SimpleNamespace(
        key=key,
        value=value,
        partition=partition,
        offset=offset,
        tp=TP("cache-test-orders-changelog", partition),
    )
    return SimpleNamespace(message=message)


def test_recovery_writes_replace_what_was_cached(tmp_path: Path) -> None:
    """Changelog records applied by recovery (or a standby) go to the database directly: a key
    read as absent, or with an older value, reads the new one after."""
    orders, _ = _orders(tmp_path)
    with event_of(0):
        assert orders.get("q1") is None  # absent, and cached so
        orders["q2"] = {"n": 1}
    batch = [
        _changelog_record(0, b'"q1"', b'{"n":7}', 10),
        _changelog_record(0, b'"q2"', b'{"n":2}', 11),
    ]
    orders.data.apply_changelog_batch(batch, None, None)
    with event_of(0):
        assert orders["q1"] == {"n": 7}
        assert orders["q2"] == {"n": 2}
    assert orders.data.persisted_offset(TP("cache-test-orders-changelog", 0)) == 11


def _one_key_in_each_partition(tmp_path: Path) -> tuple[Any, CachedRocksDBStore]:
    """The orders table with ``q1`` written in partition 0 and ``q9`` in partition 1."""
    orders, _ = _orders(tmp_path)
    with event_of(0):
        orders["q1"] = {"n": 1}
    with event_of(1):
        orders["q9"] = {"n": 9}
    return orders, orders.data


def test_a_revoked_partition_forgets_its_cache(tmp_path: Path) -> None:
    orders, store = _one_key_in_each_partition(tmp_path)
    # another worker held partition 0 meanwhile and its changelog brought a newer value
    store._db_for_partition(0).put(b'"q1"', b'{"n":5}')
    tp0 = TP(orders.changelog_topic.get_topic_name(), 0)
    store.revoke_partitions(orders, {tp0})
    with event_of(0):
        assert orders["q1"] == {"n": 5}
    assert 1 in store._cache  # partition 1 kept its cache


def test_the_cache_is_bounded_and_every_key_stays_readable(tmp_path: Path) -> None:
    orders, _ = _orders(tmp_path, cache_entries=3)
    with event_of(0):
        for n in range(10):
            orders[f"q{n}"] = {"n": n}
        assert len(orders.data._cache[0]) <= 3
        assert [orders[f"q{n}"]["n"] for n in range(10)] == list(range(10))
        assert len(orders.data._cache[0]) <= 3


def test_no_cache_entries_caches_nothing_and_reads_the_database(tmp_path: Path) -> None:
    orders, _ = _orders(tmp_path, cache_entries=0)
    assert isinstance(orders.data, CachedRocksDBStore)  # unlogged writes, keys by orjson
    with event_of(0):
        orders["q1"] = {"n": 1}
        assert orders["q1"] == {"n": 1}
        assert orders.get("q2") is None
        assert not any(orders.data._cache.values())
    orders.data._db_for_partition(0).put(b'"q1"', b'{"n": 2}')  # behind the table's back
    with event_of(0):
        assert orders["q1"] == {"n": 2}


def test_the_database_holds_the_bytes_of_the_changelog_record(tmp_path: Path) -> None:
    """A write stores the bytes queued for its changelog record, which recovery would store."""
    orders, emitted = _orders(tmp_path)
    with event_of(1):
        orders["q1"] = {"status": "REQUESTED", "lines": [1, 2]}
        orders["q1"] = {"status": "CONFIRMED", "lines": [1, 2]}
    _, key, value, _, partition = emitted[-1]
    assert partition == 1
    assert orders.data._db_for_partition(1).get(key) == value
    assert read_any_partition(orders, "q1") == {"status": "CONFIRMED", "lines": [1, 2]}


@pytest.mark.parametrize(
    "value",
    [
        {"status": "REQUESTED", "revision": 2, "total": 12.5, "held": None, "ok": True},
        [1700000000.25, 3],
        'text with ünïcode and "quotes"',
        7,
        {"nested": {"lines": [{"n": 1}], "empty": {}}, "big": 2**60},
    ],
)
def test_changelog_records_are_serialized_as_faust_serializes_them(
    tmp_path: Path, value: Any
) -> None:
    """The short path for str keys and plain values gives Faust's own bytes (recovery reads
    them with Faust's deserializer)."""
    orders, emitted = _orders(tmp_path)
    with event_of(0):
        orders["k-ü"] = value
    _, key, value_bytes, headers, _ = emitted[-1]
    topic = orders.changelog_topic
    assert (key, headers) == topic.prepare_key("k-ü", "json")
    assert value_bytes == topic.prepare_value(value, "json", None, None)[0]


def test_a_read_outside_an_event_looks_first_where_the_key_was_last_read(tmp_path: Path) -> None:
    """Faust's store answers a read outside an event from the partition where the key was last
    read or written in an event; a read served by the cache keeps that so."""
    orders, _ = _orders(tmp_path)
    with event_of(0):
        orders["k"] = "zero"
    with event_of(1):
        orders["k"] = "one"
    assert read_any_partition(orders, "k") == "one"
    with event_of(0):
        assert orders["k"] == "zero"  # from the cache
    assert read_any_partition(orders, "k") == "zero"


@pytest.mark.parametrize("cache_entries", [3, 0])
def test_get_answers_as_faust_s_own_get(tmp_path: Path, cache_entries: int) -> None:
    """``table.get`` reads the store once; what it answers is what ``Mapping.get`` answers."""
    orders, _ = _orders(tmp_path, cache_entries)
    with event_of(0):
        orders["q1"] = {"n": 1}
        orders["none"] = None
        for key, expected in (("q1", {"n": 1}), ("none", None), ("q2", "fallback")):
            assert (key in orders) is (expected != "fallback")
            assert orders.get(key, "fallback") == expected
        assert orders.get("q2") is None
    with event_of(1):
        assert orders.get("q1", "fallback") == "fallback"  # another partition's database
    assert orders.get("q1") == {"n": 1}  # outside an event: any partition
    assert orders.get("q2", 0) == 0


def test_get_on_a_table_with_a_default_keeps_faust_s_path(tmp_path: Path) -> None:
    app = faust.App("default-test", store="rocksdb://", datadir=str(tmp_path), broker="kafka://x:1")
    counts = ProducedTable(app, name="counts", default=int, partitions=2, beacon=app.tables.beacon)
    with event_of(0):
        assert counts.get("missing", "ignored") == 0  # a defaulting table never returns it


def _read_only_copy(store: CachedRocksDBStore, partition: int) -> dict[bytes, bytes]:
    """What a partition's database holds in its files (a read-only handle beside the store's:
    it sees what was flushed, not the store's memtable)."""
    import rocksdict

    path = str(store.partition_path(partition))
    copy = rocksdict.Rdict(
        path, rocksdict.Options(raw_mode=True), access_type=rocksdict.AccessType.read_only()
    )
    try:
        return {k: v for k, v in copy.items() if k != store.offset_key}
    finally:
        copy.close()


def test_writes_skip_the_write_ahead_log_and_reach_the_files_when_the_store_stops(
    tmp_path: Path,
) -> None:
    """A worker never opens a table after a crash (it rebuilds it from the changelog), so the
    log is not written; what the memtable holds is flushed when the store stops."""
    orders, _ = _orders(tmp_path)
    store = orders.data
    with event_of(0):
        for n in range(50):
            orders[f"q{n}"] = {"n": n}
    db = store._dbs[0]  # held, as anything may hold it when Faust drops its own reference
    logs = list(Path(store.partition_path(0)).glob("*.log"))
    assert logs
    assert all(log.stat().st_size == 0 for log in logs)  # no write-ahead log written
    assert _read_only_copy(store, 0) == {}  # in the memtable only
    asyncio.run(store.stop())
    kept = _read_only_copy(store, 0)
    assert len(kept) == 50
    assert kept[b'"q7"'] == b'{"n":7}'
    del db


def test_a_revoked_partition_is_flushed_to_its_files(tmp_path: Path) -> None:
    orders, store = _one_key_in_each_partition(tmp_path)
    held = store._dbs[0]
    store.revoke_partitions(orders, {TP(orders.changelog_topic.get_topic_name(), 0)})
    assert _read_only_copy(store, 0) == {b'"q1"': b'{"n":1}'}
    assert _read_only_copy(store, 1) == {}  # still held: not flushed
    del held


def test_a_walk_of_one_partition_reads_only_its_database(tmp_path: Path) -> None:
    orders, _ = _orders(tmp_path)
    with event_of(0):
        orders["a"] = {"partition": 0}
        orders["b"] = {"partition": 0}
    with event_of(1):
        orders["c"] = {"partition": 1}
    orders.data.set_persisted_offset(TP(orders.changelog_topic.get_topic_name(), 0), 41)
    assert sorted(partition_items(orders, 0)) == [("a", {"partition": 0}), ("b", {"partition": 0})]
    assert list(partition_items(orders, 1)) == [("c", {"partition": 1})]
    assert list(partition_items(orders, 5)) == []  # not held
    every = {"a": 0, "c": 1}
    assert sorted(partition_items(every, 0)) == [("a", 0), ("c", 1)]  # one dict: every item


@pytest.mark.parametrize("key", ["q1", "k-ü", 'a "quoted" \\ key', "", "日本", "\x00\x1f"])
def test_a_str_key_is_encoded_as_faust_encodes_it(tmp_path: Path, key: str) -> None:
    """The short path for a str key gives the bytes of Faust's json key serializer, which its
    recovery and its reads outside an event use."""
    orders, _ = _orders(tmp_path)
    faust_bytes = orders.data.app.serializers.dumps_key(str, key, serializer="json")
    assert orders.data._encode_key(key) == faust_bytes
    with event_of(1):
        orders[key] = {"n": 1}
    assert read_any_partition(orders, key) == {"n": 1}
    assert orders.data._key_index[faust_bytes] == 1


class _Point(faust.Record, namespace="test.rocksstore.point"):
    x: int


@pytest.mark.parametrize(
    "stored",
    [
        b'{"quote_id": "q-1", "lines": [1, 2.5, null, true], "note": "\\u00fc \xc3\xbc"}',
        b"[1, 2, 3]",
        b'"just a string"',
        b"42",
        b"null",
        _Point(x=3).dumps(serializer="json"),  # a Faust model: Faust's own decoding
    ],
)
def test_a_stored_value_decodes_as_faust_decodes_it(tmp_path: Path, stored: bytes) -> None:
    orders, _ = _orders(tmp_path, cache_entries=0)
    store = orders.data
    assert store._decode(stored) == store._decode_value(stored)
    assert type(store._decode(stored)) is type(store._decode_value(stored))


def test_an_undecodable_stored_value_raises_faust_s_error(tmp_path: Path) -> None:
    from faust.exceptions import ValueDecodeError

    orders, _ = _orders(tmp_path, cache_entries=0)
    with pytest.raises(ValueDecodeError):
        orders.data._decode(b"\xff not json")


def test_the_key_index_keeps_the_last_written_keys_and_their_partition() -> None:
    index = KeyIndex(3)
    for n, key in enumerate((b"a", b"b", b"c")):
        index[key] = n
    index[b"a"] = 5  # written again: now the newest
    index[b"d"] = 0  # the oldest (b) goes
    assert index == {b"c": 2, b"a": 5, b"d": 0}
    assert list(index) == [b"c", b"a", b"d"]
    unbounded = KeyIndex(0)
    for n in range(10):
        unbounded[bytes([n])] = n
    assert len(unbounded) == 10


def test_a_key_written_in_one_partition_is_deleted_there_only(tmp_path: Path) -> None:
    """Faust deletes a key from the partition its index names; a key not in the index from
    every partition's database."""
    orders, _ = _orders(tmp_path)
    with event_of(0):
        orders["k"] = "zero"
    with event_of(1):
        orders["k"] = "one"
    with event_of(1):
        del orders["k"]
    assert list(partition_items(orders, 0)) == [("k", "zero")]
    assert list(partition_items(orders, 1)) == []
    orders.data._key_index.clear()
    with event_of(0):
        del orders["k"]
    assert list(partition_items(orders, 0)) == []


def _seen(tmp_path: Path) -> Any:
    """The ``seen`` table of a worker on ``rocksdb://``: its store keeps a time index."""
    app = faust.App("index-test", store="rocksdb://", datadir=str(tmp_path), broker="kafka://x:1")
    tables = make_tables(
        app, 2, changelog_emit=lambda *record: None, expiry_index=True, cache_entries=3
    )
    assert tables.orders.data.marked_at is None  # only the tables of marks that expire
    return tables.seen


def _index_of(store: CachedRocksDBStore, partition: int) -> list[bytes]:
    return list(store._time_index(partition, store._db_for_partition(partition)).keys())


def _index_in_files(store: CachedRocksDBStore, partition: int) -> list[bytes]:
    """The time index a partition's database holds in its files (read-only, beside the store)."""
    import rocksdict

    copy = rocksdict.Rdict(
        str(store.partition_path(partition)),
        rocksdict.Options(raw_mode=True),
        access_type=rocksdict.AccessType.read_only(),
    )
    try:
        index = copy.get_column_family(BY_TIME)
        entries = list(index.keys())
        del index
        return entries
    finally:
        copy.close()


def test_every_mark_written_is_indexed_by_its_time_in_its_partition(tmp_path: Path) -> None:
    seen = _seen(tmp_path)
    store = seen.data
    with event_of(0):
        seen["e1"] = [5.0, 0]
        seen["e2"] = [2.5, 0]
    with event_of(1):
        seen["e3"] = [1.0, 1]
    assert _index_of(store, 0) == [by_time_key(2.5, b'"e2"'), by_time_key(5.0, b'"e1"')]
    assert _index_of(store, 1) == [by_time_key(1.0, b'"e3"')]
    assert store.due(0, 4.0, 10) == [(by_time_key(2.5, b'"e2"'), 2500, "e2")]
    assert store.due(0, 5.0, 1) == [(by_time_key(2.5, b'"e2"'), 2500, "e2")]  # at most 1
    assert store.due(7, 9.0, 10) == []  # a partition not held
    store.forget(0, [by_time_key(2.5, b'"e2"')])
    assert _index_of(store, 0) == [by_time_key(5.0, b'"e1"')]
    assert read_any_partition(seen, "e2") == [2.5, 0]  # the mark is the sweep's to delete


def test_recovery_indexes_the_marks_it_applies(tmp_path: Path) -> None:
    """The index has no changelog: recovery (or a standby) indexes the marks' own records."""
    seen = _seen(tmp_path)
    batch = [
        _changelog_record(0, b'"e1"', b"[7.0,0]", 3),
        _changelog_record(0, b'"gone"', None, 4),
        _changelog_record(1, b'"e3"', b"[9.5,1]", 5),
    ]
    seen.data.apply_changelog_batch(iter(batch), None, None)
    assert _index_of(seen.data, 0) == [by_time_key(7.0, b'"e1"')]
    assert _index_of(seen.data, 1) == [by_time_key(9.5, b'"e3"')]
    assert read_any_partition(seen, "e3") == [9.5, 1]


def test_a_database_with_marks_and_no_index_gets_one_when_opened(tmp_path: Path) -> None:
    """A database written before the index was kept by the store (the marks, no index)."""
    import rocksdict

    store = _seen(tmp_path).data
    path = store.partition_path(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(True)
    old = rocksdict.Rdict(str(path), options)
    old[b'"a"'] = b"[3.0,0]"
    old[b'"b"'] = b"[1.0,0]"
    old[b'"not-a-mark"'] = b'{"n":1}'
    old[store.offset_key] = b"12"
    old.close()
    assert store.due(0, 10.0, 10) == []  # not open yet: not held
    assert _index_of(store, 0) == [by_time_key(1.0, b'"b"'), by_time_key(3.0, b'"a"')]
    assert [key for _, _, key in store.due(0, 10.0, 10)] == ["b", "a"]


def test_a_revoked_or_stopped_store_lets_go_of_its_index_and_keeps_it_in_its_files(
    tmp_path: Path,
) -> None:
    """A column family's handle keeps its database open and locked: the store lets go of it
    with the database, which opens again, index and all."""
    seen = _seen(tmp_path)
    store = seen.data
    with event_of(0):
        seen["e1"] = [5.0, 0]
    with event_of(1):
        seen["e9"] = [6.0, 1]
    store.revoke_partitions(seen, {TP(seen.changelog_topic.get_topic_name(), 0)})
    assert 0 not in store._by_time
    assert _index_in_files(store, 0) == [by_time_key(5.0, b'"e1"')]
    assert _index_of(store, 0) == [by_time_key(5.0, b'"e1"')]  # opened again
    asyncio.run(store.stop())
    assert store._by_time == {}
    assert _index_in_files(store, 1) == [by_time_key(6.0, b'"e9"')]
