"""The reconciliation tick on ``rocksdb://``: it reads the ledger's time index up to what is
due, not every entry, and finds, resolves and forgets exactly what the walk of ``memory://``
does (the pipeline on real RocksDB tables, a fake clock, ticks in their partition's event)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faust
import orjson
import pytest

import tests.processors.test_reconcile_flow as flow
from contracts.ownership import load_ownership
from processors.domain.housekeeping import DUE_AT
from processors.pipeline import PipelineConfig
from processors.rocksstore import by_time_key
from processors.state import Tables, make_tables, partition_items, read_any_partition
from processors.topic_names import ProcessorTopics
from tests.processors.events import account_event, erp_order_event, quote_event
from tests.processors.harness import PipelineHarness
from tests.processors.test_rocksstore import _changelog_record, _index_of, event_of

pytestmark = pytest.mark.unit

pytest.importorskip("rocksdict")

TTL = 3600.0
ORDER_SLA, INTERVAL = flow.ORDER_SLA, flow.INTERVAL
_apps = itertools.count()


def _rocks_tables(path: Path, emit: Callable[..., None], cache_entries: int = 16) -> Tables:
    """The worker's tables on ``rocksdb://``, as a worker makes them (with the time indexes)."""
    app = faust.App(f"recon-{next(_apps)}", store="rocksdb://", datadir=str(path),
                    broker="kafka://x:1")  # fmt: skip
    return make_tables(app, 1, changelog_emit=emit, expiry_index=True, cache_entries=cache_entries)


class RocksHarness(flow.Harness):
    """The reconciliation scenarios' harness (short SLAs) on ``rocksdb://`` tables: every
    record and tick is handled in its partition's event, as the worker's agents do."""

    def __init__(self, path: Path, cache_entries: int = 16) -> None:
        self.changelog: list[tuple[Any, ...]] = []
        """The ledger's changelog records: (topic, key, value, headers, partition)."""

        def emit(*record: Any) -> None:
            if "ledger" in record[0]:
                self.changelog.append(record)

        config = PipelineConfig(
            ProcessorTopics("t."), load_ownership(), 300.0, TTL, 0.85,
            reconcile_order_sla_s=flow.ORDER_SLA,
            reconcile_writeback_sla_s=flow.WRITEBACK_SLA,
            reconcile_interval_s=flow.INTERVAL,
        )  # fmt: skip
        PipelineHarness.__init__(self, config, tables=_rocks_tables(path, emit, cache_entries))
        self.ledger = self.tables.ledger
        self.reads = 0
        """Ledger values read from the database and decoded."""
        store = self.ledger.data
        for name in ("_decode", "_decode_value"):  # an event's read; a walk's
            setattr(store, name, self._counting(getattr(store, name)))

    def _counting(self, decode: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        def counted(raw: bytes) -> Any:
            self.reads += 1
            return decode(raw)

        return counted

    def send_raw(self, topic: str, key: bytes, value: bytes, read_back: bool = True) -> None:
        with event_of(self.partition):
            super().send_raw(topic, key, value, read_back)

    def read_back(self) -> None:
        with event_of(self.partition):
            super().read_back()

    def tick(self, after: float) -> None:
        with event_of(self.partition):
            super().tick(after)

    def reads_of_tick(self, after: float) -> int:
        """Let ``after`` seconds pass and tick; how many ledger values the tick decoded."""
        self.reads = 0
        self.tick(after)
        return self.reads

    def entries(self) -> dict[str, Any]:
        """What the ledger's database holds (its deals' quote ids left out)."""
        held = partition_items(self.ledger, self.partition)
        return {key: value for key, value in held if not key.startswith("d:")}

    def due(self) -> list[bytes]:
        """The ledger's time index."""
        return _index_of(self.ledger.data, self.partition)


@pytest.fixture
def rocks(tmp_path: Path) -> Callable[..., RocksHarness]:
    """Makes a harness on tables of their own (``cache_entries``: of each table partition)."""
    dirs = itertools.count()
    return lambda **kwargs: RocksHarness(tmp_path / str(next(dirs)), **kwargs)


_SCENARIOS = {name: test for name, test in vars(flow).items() if name.startswith("test_")}


@pytest.mark.parametrize("scenario", sorted(_SCENARIOS))
def test_the_reconciliation_scenarios_hold_on_rocksdb(
    scenario: str, rocks: Callable[..., RocksHarness], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every scenario of ``test_reconcile_flow`` (``memory://``'s walk), unchanged, on tables
    whose tick reads the time index."""
    monkeypatch.setattr(flow, "Harness", rocks)
    _SCENARIOS[scenario]()


def _orphan(n: int) -> Any:
    """An ERP order no quote claims (its own ledger entry, due at the order SLA)."""
    return erp_order_event(f"erp-{n}", "a", None, status="CONFIRMED", number=f"SO-{n}")


def test_a_tick_reads_only_the_entries_that_are_due(rocks: Callable[..., RocksHarness]) -> None:
    h = rocks(cache_entries=0)  # every read goes to the database
    h.send(h.topics.order, _orphan(0))
    assert h.reads_of_tick(1.0) == 1  # the first tick since assignment walks the partition
    h.now += 29.0
    for n in range(1, 201):
        h.send(h.topics.order, _orphan(n))
    h.send(h.topics.account, account_event("a"))
    h.send(h.topics.quote, quote_event("q1", "a"))
    h.send(h.topics.order, erp_order_event("o", "a", "q1", status="CONFIRMED", number="SO-q1"))
    quote_updated = h.now
    assert len(h.entries()) == 202
    assert h.reads_of_tick(INTERVAL) == 0  # nothing due yet: nothing read

    # the first orphan's SLA passes: its entry alone is read, and its finding opens
    assert h.reads_of_tick(ORDER_SLA - 30.0 - INTERVAL) == 1
    (found,) = h.findings()
    assert (found["kind"], found["subject"]) == ("RECON_ORDER_WITHOUT_QUOTE", "SO-0")
    assert h.drift("RECON_ORDER_WITHOUT_QUOTE") == 1
    assert h.reads_of_tick(INTERVAL) == 0  # open, and nothing else can open by time: not due

    # the others fall due together: a batch a tick, the rest at the next ticks
    h.pipeline.reconcile.batch = 80
    h.now += 30.0
    # (the last read is the quote's first due time, at the order SLA, left behind when its
    # order came: its entry is due later now, so that index entry is dropped)
    assert [h.reads_of_tick(0.0) for _ in range(4)] == [80, 80, 41, 0]
    assert len(h.findings()) == 201
    assert h.drift("RECON_ORDER_WITHOUT_QUOTE") == 201
    assert h.drift("RECON_ORDER_MISSING") == 0

    # the quote that agrees is forgotten once untouched for the TTL, read alone
    assert h.due() == [by_time_key(quote_updated + TTL, b'"q:q1"')]
    h.now = quote_updated + TTL - INTERVAL
    assert h.reads_of_tick(0.0) == 0
    assert "q:q1" in h.entries()
    assert read_any_partition(h.ledger, "d:deal-q1") == "q1"
    assert h.reads_of_tick(INTERVAL) == 2  # the entry, and its deal's quote id (forgotten too)
    assert "q:q1" not in h.entries()
    assert read_any_partition(h.ledger, "d:deal-q1") is None
    assert h.due() == []
    assert len(h.entries()) == 201
    assert [r["record"] for r in h.findings()] == ["finding"] * 201  # nothing resolved


def test_an_entry_written_again_before_it_was_due_is_compared_at_its_new_time(
    rocks: Callable[..., RocksHarness],
) -> None:
    h = rocks()
    h.send(h.topics.account, account_event("a"))
    h.send(h.topics.quote, quote_event("q1", "a"))
    h.tick(1.0)
    requested = h.now - 1.0
    assert h.due() == [by_time_key(requested + ORDER_SLA, b'"q:q1"')]
    h.tick(ORDER_SLA / 2)
    h.send(h.topics.order, erp_order_event("o", "a", "q1", status="CONFIRMED", number="SO-1"))
    answered = h.now
    # the entry now agrees: due when it may be forgotten; its first index entry is left behind
    assert h.due() == [by_time_key(requested + ORDER_SLA, b'"q:q1"'),
                       by_time_key(answered + TTL, b'"q:q1"')]  # fmt: skip
    h.tick(ORDER_SLA)  # the old index entry is read and dropped: the entry is not due
    assert h.findings() == []
    assert h.due() == [by_time_key(answered + TTL, b'"q:q1"')]
    assert h.entries()["q:q1"][DUE_AT] == answered + TTL


def test_entries_without_a_due_time_are_compared_at_the_first_tick_and_indexed(
    rocks: Callable[..., RocksHarness],
) -> None:
    """Entries written before due times were kept (a running deployment's): the first tick
    after the partition was assigned walks them, and gives each its due time."""
    h = rocks(cache_entries=0)
    old = {"number": "SO-7", "partition": 0, "account_id": "a", "updated_at": h.now - 600.0,
           "erp": {"number": "SO-7", "first_seen": h.now - 600.0, "learned": {}}}  # fmt: skip
    recent = {**old, "number": "SO-8", "erp": {**old["erp"], "number": "SO-8",
              "first_seen": h.now - 10.0}, "updated_at": h.now - 10.0}  # fmt: skip
    with event_of(0):
        h.ledger["n:SO-7"] = old
        h.ledger["n:SO-8"] = recent
    assert h.due() == []
    h.tick(1.0)
    assert [(r["kind"], r["subject"]) for r in h.findings()] == [("RECON_ORDER_WITHOUT_QUOTE",
                                                                 "SO-7")]  # fmt: skip
    assert DUE_AT not in h.entries()["n:SO-7"]  # found: nothing more is due by time
    due = h.now - 1.0 - 10.0 + ORDER_SLA
    assert h.entries()["n:SO-8"][DUE_AT] == due
    assert h.due() == [by_time_key(due, b'"n:SO-8"')]
    h.now = due - INTERVAL
    assert h.reads_of_tick(0.0) == 0
    assert len(h.findings()) == 1
    assert h.reads_of_tick(INTERVAL) == 1
    assert [r["subject"] for r in h.findings()] == ["SO-7", "SO-8"]
    assert h.drift("RECON_ORDER_WITHOUT_QUOTE") == 2


def test_the_open_findings_are_counted_anew_after_a_rebalance(
    rocks: Callable[..., RocksHarness],
) -> None:
    h = rocks()
    for n in range(3):
        h.send(h.topics.order, _orphan(n))
    h.tick(ORDER_SLA + INTERVAL)
    assert h.drift("RECON_ORDER_WITHOUT_QUOTE") == 3
    h.pipeline.reconcile.forget_partitions()  # revoked: counted by the next owner
    assert h.drift("RECON_ORDER_WITHOUT_QUOTE") == 0
    assert h.reads_of_tick(1.0) == 3  # assigned again: one walk, the counts exact again
    assert h.drift("RECON_ORDER_WITHOUT_QUOTE") == 3
    assert h.reads_of_tick(INTERVAL) == 0
    assert len(h.findings()) == 3  # nothing opened twice


def test_the_time_index_is_rebuilt_from_the_ledgers_changelog(
    rocks: Callable[..., RocksHarness],
) -> None:
    """Recovery (or a standby) writes the ledger's changelog into a new database: the index
    has no changelog of its own, and is made from the due times the entries hold."""
    h = rocks()
    h.send(h.topics.order, _orphan(1))
    h.send(h.topics.account, account_event("a"))
    h.send(h.topics.quote, quote_event("q1", "a"))
    h.tick(1.0)
    before = h.due()
    assert len(before) == 2
    records = [_changelog_record(p, key, value, offset)
               for offset, (_, key, value, _, p) in enumerate(h.changelog)]  # fmt: skip
    recovered = rocks()
    recovered.now = h.now
    recovered.ledger.data.apply_changelog_batch(iter(records), None, None)
    assert recovered.due() == before
    assert recovered.entries() == h.entries()
    recovered.tick(0.0)  # the walk after assignment
    recovered.tick(ORDER_SLA)  # read from the rebuilt index
    kinds = sorted((r["kind"], r["subject"]) for r in recovered.findings())
    assert kinds == [("RECON_ORDER_MISSING", "q1"), ("RECON_ORDER_WITHOUT_QUOTE", "SO-1")]


def test_a_deals_quote_id_gets_no_index_entry(rocks: Callable[..., RocksHarness]) -> None:
    h = rocks()
    record = _changelog_record(0, b'"d:deal-1"', orjson.dumps("q1"), 1)
    h.ledger.data.apply_changelog_batch(iter([record]), None, None)
    assert h.due() == []
    assert dict(partition_items(h.ledger, 0)) == {"d:deal-1": "q1"}
