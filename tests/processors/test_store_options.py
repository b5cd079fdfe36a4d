"""Which options each table's store gets: RocksDB's memory bounds, nothing for memory://."""

from __future__ import annotations

import pytest

from processors.state import store_options

pytestmark = pytest.mark.unit


def test_rocksdb_gets_its_memory_bounds_in_bytes() -> None:
    assert store_options("rocksdb://", 4, 2, 16) == {
        "write_buffer_size": 4 * 1024 * 1024,
        "max_write_buffer_number": 2,
        "block_cache_size": 16 * 1024 * 1024,
    }


def test_memory_store_gets_none() -> None:
    assert store_options("memory://", 4, 2, 16) is None
