"""Which options each table's store gets: RocksDB's memory bounds, nothing for memory://."""

from __future__ import annotations

import pytest

from interlock.settings import ProcessorSettings
from processors.state import store_options

pytestmark = pytest.mark.unit


def _proc(store: str) -> ProcessorSettings:
    return ProcessorSettings(
        store=store, rocksdb_write_buffer_mb=4, rocksdb_write_buffers=2, rocksdb_block_cache_mb=16
    )


def test_rocksdb_gets_its_memory_bounds_in_bytes() -> None:
    assert store_options(_proc("rocksdb://")) == {
        "write_buffer_size": 4 * 1024 * 1024,
        "max_write_buffer_number": 2,
        "block_cache_size": 16 * 1024 * 1024,
    }


def test_memory_store_gets_none() -> None:
    assert store_options(_proc("memory://")) is None
